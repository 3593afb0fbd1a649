"""The package's exception tree: one root, one subclass per kind of mistake.

Messages say what is wrong and where (file, entry, joint or frame), and what would be valid.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class OptimusError(Exception):
    """Root of every error raised on purpose by optimus_control."""


class ModelError(OptimusError):
    """The robot description (URDF) cannot be used: missing, unparsable or non-physical."""


class ConfigError(OptimusError):
    """A YAML file (robot config, scene, job, parameters) is malformed or names unknown things."""


class FrameError(OptimusError):
    """A frame or joint name that the model does not have."""


class RealTimeError(OptimusError):
    """The real-time core refused an operation (bad sizes, not started, transport failure)."""


class BusInUseError(RealTimeError):
    """A side (robot or controller) of a shared-memory joint bus is already owned by another live process."""


class SimulationError(OptimusError):
    """The simulator cannot build or run the requested scene."""


class LaunchError(OptimusError):
    """A launch file uses something outside the supported ROS 2 launch XML vocabulary."""


def suggest(name: str, candidates: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a close candidate exists, else ''."""
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class SensorDataError(OptimusError):
    """A sensor message cannot be used: wrong encoding, size mismatch, missing or invalid calibration."""


class GoalError(OptimusError):
    """A goal the controller cannot accept (non-finite values, unknown hand or preset); it is rejected."""


class HardwareError(OptimusError):
    """Real actuators refused an operation: a motor silent or out of range at enable, a bus that cannot open."""
