"""Real-time core: C dynamics kernels, the 1 kHz loop and the joint-bus transports (see rt/README.md)."""

from optimus_control.rt._rtcore import CanTransport, LoopbackTransport, ShmTransport, TripleBuffer
from optimus_control.rt.bus import RobotBus, connect_transport
from optimus_control.rt.dynamics import Dynamics
from optimus_control.rt.loop import Loop, LoopConfig, LoopState, LoopStatus, Reason, RobotState

__all__ = [
    "CanTransport",
    "Dynamics",
    "Loop",
    "LoopConfig",
    "LoopState",
    "LoopStatus",
    "LoopbackTransport",
    "Reason",
    "RobotBus",
    "RobotState",
    "ShmTransport",
    "TripleBuffer",
    "connect_transport",
]
