"""Turns the controller's and the loop's state into log events, once per change.

The node polls both every control period; an operator needs a fault in the log the moment it happens
(with its reason), not in the next 1 Hz /diagnostics message. Events carry a level so the adapter maps
them onto its logger: ERROR when the robot is no longer controlled (loop DAMPING/FAULT/STOPPED,
controller DAMPING), WARN while the controller holds its last references, INFO when control resumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from optimus_control.control.controller_status import ControllerState


class Level(str, Enum):
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True)
class StatusEvent:
    level: Level
    text: str


_CONTROLLER_LEVEL = {ControllerState.IDLE: Level.INFO, ControllerState.RUNNING: Level.INFO,
                     ControllerState.HOLDING: Level.WARN, ControllerState.DAMPING: Level.ERROR}
_LOOP_LEVEL = {"INIT": Level.INFO, "RUNNING": Level.INFO, "DAMPING": Level.ERROR, "FAULT": Level.ERROR,
               "STOPPED": Level.ERROR}


class StatusChanges:
    """Remembers the last controller (state, fault) and loop (state, message) it saw."""

    def __init__(self) -> None:
        self._controller: tuple[ControllerState, str] | None = None
        self._loop: tuple[str, str] | None = None

    def update(self, controller_state: ControllerState, controller_fault: str, loop_state: str,
               loop_message: str) -> list[StatusEvent]:
        """Events for what changed since the last call (none on the first call unless it is a fault)."""
        events: list[StatusEvent] = []
        controller = (controller_state, controller_fault)
        if controller != self._controller:
            level = _CONTROLLER_LEVEL[controller_state]
            if self._controller is not None or level is not Level.INFO:
                why = f": {controller_fault}" if controller_fault else ""
                events.append(StatusEvent(level, f"controller {controller_state.value}{why}"))
            self._controller = controller
        loop = (loop_state, loop_message)
        if loop != self._loop:
            level = _LOOP_LEVEL.get(loop_state, Level.ERROR)
            if self._loop is not None or level is not Level.INFO:
                why = f": {loop_message}" if loop_message else ""
                action = " (the robot is damped, not controlled)" if level is Level.ERROR else ""
                events.append(StatusEvent(level, f"1 kHz loop {loop_state}{why}{action}"))
            self._loop = loop
        return events
