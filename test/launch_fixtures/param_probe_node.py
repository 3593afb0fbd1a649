#!/usr/bin/env python3
"""A real rclpy node that prints, as JSON on one line, the parameter values rcl resolved for it from
its --ros-args (every override declared), then exits. Lets tests check effective launch parameters."""

import json
import sys

import rclpy
from rclpy.node import Node


def main() -> int:
    rclpy.init(args=sys.argv)
    try:
        node = Node("param_probe", automatically_declare_parameters_from_overrides=True)
        names = node.list_parameters([], 0).names
        values = {p.name: (list(p.value) if not isinstance(p.value, (bool, int, float, str)) else p.value)
                  for p in node.get_parameters(names)}
        print("PARAMS " + json.dumps({"node": node.get_fully_qualified_name(), "values": values}), flush=True)
        node.destroy_node()
    finally:
        rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
