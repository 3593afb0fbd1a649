"""Declare a node's ROS parameters from its settings schema and read them back, strictly.

The node's parameter overrides (parameter files, ``-p``, launch ``<param>``) are converted with the
same rules as a parameter file read without ROS (:mod:`optimus_control.model.settings_schema`): an
unknown name fails start-up with a "did you mean", a wrong type names the parameter. Every leaf is then
declared with its value, type and description, so ``ros2 param list/describe`` shows the schema.
"""

from __future__ import annotations

from typing import TypeVar

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter

from optimus_control.model.settings_schema import Kind, build, flat_values, leaves

T = TypeVar("T")

_SCALAR_TYPES = {bool: Parameter.Type.BOOL, int: Parameter.Type.INTEGER, float: Parameter.Type.DOUBLE,
                 str: Parameter.Type.STRING}
_ARRAY_TYPES = {bool: Parameter.Type.BOOL_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
                float: Parameter.Type.DOUBLE_ARRAY, str: Parameter.Type.STRING_ARRAY}


def _parameter_type(kind: Kind) -> Parameter.Type:
    return (_ARRAY_TYPES if kind.sequence is not None else _SCALAR_TYPES)[kind.scalar]


def declare_settings(node: Node, cls: type[T], base: T | None = None) -> T:
    """The node's settings: ``base`` (default ``cls()``) with its parameter overrides applied; declares them all."""
    overrides = {name: param.value for name, param in node._parameter_overrides.items()}
    settings = build(cls, overrides, f"{node.get_fully_qualified_name()} parameters", base)
    by_name = {leaf.name: leaf for leaf in leaves(settings)}
    for name, value in flat_values(settings).items():
        leaf = by_name.get(name) or next(lf for lf in by_name.values() if name.startswith(lf.name + "."))
        kind = leaf.kind  # an open mapping's entries are scalars of the mapping's kind
        ptype = _parameter_type(kind)
        unit = f" [{leaf.unit}]" if leaf.unit else ""
        descriptor = ParameterDescriptor(name=name, description=f"{leaf.doc}{unit}")
        value = list(value) if kind.sequence is not None else value
        if value == []:  # rclpy cannot infer an empty array's type: declare the type, then set the value
            node.declare_parameter(name, ptype, descriptor, ignore_override=True)
            node.set_parameters([Parameter(name, ptype, value)])
        else:
            node.declare_parameter(name, value, descriptor, ignore_override=True)
    return settings

