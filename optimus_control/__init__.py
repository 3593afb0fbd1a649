"""optimus_control: a humanoid control stack on ROS 2 (perception, whole-body control, planning)."""

__version__ = "0.1.0"
