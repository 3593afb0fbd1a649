"""ROS names shared by the nodes: who owns a diagnostic status, the joint-bus name, the time-mode rule.

Pure functions (no rclpy), so the rules are unit-tested without a ROS graph. Every topic and service
of the stack is relative to the node's namespace, so a stack launched under ``namespace:=r1`` is
self-contained; only these stay global: ``/clock`` (one clock per ROS graph by convention; remap it
per stack when several simulators share a domain), ``/diagnostics`` (diagnostic aggregators and
monitors read that one topic, so status names carry the node's full name instead), ``/rosout`` and
``/parameter_events`` (rcl's own).
"""

from __future__ import annotations

import hashlib
import re

from optimus_control.errors import ConfigError

GLOBAL_TOPICS = frozenset({"/clock", "/diagnostics", "/rosout", "/parameter_events"})
BUS_PREFIX = "optimus_bus"
_BUS_NAME_MAX = 200  # optimus_control.rt.bus accepts 1-200 characters from [A-Za-z0-9_.-]


def resolve_name(name: str, namespace: str) -> str:
    """A relative node or topic name resolved in ``namespace`` ('whole_body_controller', '/r1' -> '/r1/whole_body_controller')."""
    if name.startswith("/"):
        return name
    ns = namespace.rstrip("/")
    return f"{ns}/{name}"


def is_own_status(status_name: str, node_fqn: str) -> bool:
    """True when a /diagnostics status name belongs to the node ``node_fqn`` (e.g. '/r1/whole_body_controller').

    Statuses are named '<fully qualified node name>' or '<fully qualified node name>: <item>'. An
    unqualified name ('whole_body_controller') or another namespace's node ('/r2/whole_body_controller')
    is not ours: on a domain shared by several robots only the full name tells them apart.
    """
    if not node_fqn.startswith("/"):
        return False
    return status_name == node_fqn or status_name.startswith(node_fqn + ":")


def default_bus_name(domain_id: int, namespace: str) -> str:
    """The joint-bus name sim and controller of one stack both derive: prefix, ROS domain, namespace.

    Shared memory is per host, not per ROS domain, so the domain is part of the name; namespace levels
    are joined with '.', which ROS names cannot contain, so two namespaces never map to one bus
    ('/r1' -> 'optimus_bus_d0.r1', '/' -> 'optimus_bus_d0').
    """
    ns = namespace.strip("/")
    name = f"{BUS_PREFIX}_d{int(domain_id)}" + (("." + ns.replace("/", ".")) if ns else "")
    if len(name) > _BUS_NAME_MAX or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        name = f"{BUS_PREFIX}_d{int(domain_id)}.{hashlib.sha1(ns.encode()).hexdigest()}"
    return name


def bus_name(configured: str, domain_id: int, namespace: str) -> str:
    """An explicit ``bus_name`` parameter wins; empty means the derived default."""
    return configured.strip() or default_bus_name(domain_id, namespace)


def check_time_mode(node: str, mode: str, use_sim_time: bool) -> None:
    """Refuse the one combination whose stamps cannot be consistent: lockstep on the wall clock.

    In lockstep the simulator's ticks drive time (faster or slower than the wall clock, frozen
    without a controller), so messages stamped on the wall clock would not line up with the state
    they describe or with the other nodes following /clock.
    """
    if mode == "hardware" and use_sim_time:
        raise ConfigError(f"{node}: mode 'hardware' runs on the wall clock: set use_sim_time:=false (a robot has no "
                          "/clock to follow)")
    if mode == "lockstep" and not use_sim_time:
        raise ConfigError(f"{node}: mode 'lockstep' needs use_sim_time:=true (time is the simulator's ticks, "
                          "not the wall clock); use mode:=realtime to run on the wall clock")
