"""The process around a node: rclpy up, the node made and spun, everything taken down in order whatever happens."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from optimus_control.errors import OptimusError


def spin_node(prog: str, make_node: Callable[[], Node], args: list[str] | None = None) -> Node | None:
    """Spin the node ``make_node()`` until Ctrl-C or an external shutdown; then its ``shutdown()`` (the node's own
    orderly stop), ``destroy_node()`` and rclpy's shutdown. A configuration error (OptimusError) is printed with the
    program's name and exits with status 1. Returns the node (None if it could not be made)."""
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except OptimusError as exc:
        print(f"{prog}: {exc}", flush=True)
        raise SystemExit(1) from None
    finally:
        if node is not None:
            node.shutdown()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return node
