"""optimus-launch: runs ROS 2 launch XML files in a pip-only install (no ROS 2 launch system).

`interpreter` turns a file into resolved processes with ROS 2 launch semantics, `supervisor` runs
them, `cli` is the `optimus-launch` command. Libraries here never import rclpy.
"""

from optimus_control.launch.context import LaunchContext
from optimus_control.launch.interpreter import Interpreter, declared_arguments, load_launch_file
from optimus_control.launch.process_spec import ProcessSpec
from optimus_control.launch.supervisor import Supervisor

__all__ = ["Interpreter", "LaunchContext", "ProcessSpec", "Supervisor", "declared_arguments", "load_launch_file"]
