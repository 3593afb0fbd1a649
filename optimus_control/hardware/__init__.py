"""Hardware layer: hardware descriptions and their checks, the CAN transport's Python side (driver), the
SLCAN adapter + MIT motor emulator (``hardware.emulator``, also a standalone process) and the optimus-hw
bring-up CLI (``hardware.cli``). Never imports rclpy."""

from optimus_control.hardware.checks import (
    BusLoad,
    JointFit,
    actuator_fit,
    bus_load,
    check_bus_load,
    check_fit,
    format_bus_load,
    format_fit,
    frame_bits,
)
from optimus_control.hardware.description import (
    BusConfig,
    HardwareDescription,
    ImuConfig,
    JointHardware,
    MotorModel,
    check_names,
    known_models,
    load_calibration,
    load_hardware,
    save_calibration,
)
from optimus_control.hardware.driver import CanDriver

__all__ = [
    "BusConfig",
    "BusLoad",
    "CanDriver",
    "HardwareDescription",
    "ImuConfig",
    "JointFit",
    "JointHardware",
    "MotorModel",
    "actuator_fit",
    "bus_load",
    "check_bus_load",
    "check_fit",
    "check_names",
    "format_bus_load",
    "format_fit",
    "frame_bits",
    "known_models",
    "load_calibration",
    "load_hardware",
    "save_calibration",
]
