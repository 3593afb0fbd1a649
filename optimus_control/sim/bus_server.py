"""The robot side of the joint bus: one state packet out and one command packet in per physics step.

lockstep  : publish the state of tick k, wait until the controller answered tick k, apply that command,
            step. Physics never advances without an answer, so runs are deterministic and a missing
            controller freezes the robot (safe).
realtime  : paced by the caller to the wall clock; publish, apply the latest command whatever tick it
            answers (zero-order hold), step. Until a controller has attached and answered, and again
            whenever it disappears, the support harness holds the robot (see support_harness.py).

The bus object is ``optimus_control.rt.bus.RobotBus`` (see the joint-bus contract); anything with the
same attributes works, e.g. a bus created in a test.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from optimus_control.sim.support_harness import SupportHarness
from optimus_control.sim.world import SimWorld

MODES = ("lockstep", "realtime")


class RealTimeFactor:
    """Sim seconds per wall second over a sliding window of recent steps."""

    def __init__(self, window: int = 1000):
        self._samples: deque[tuple[float, float]] = deque(maxlen=window)

    def add(self, sim_time_s: float, wall_time_s: float | None = None) -> None:
        self._samples.append((sim_time_s, time.perf_counter() if wall_time_s is None else wall_time_s))

    def reset(self) -> None:
        self._samples.clear()

    @property
    def value(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (s0, w0), (s1, w1) = self._samples[0], self._samples[-1]
        return (s1 - s0) / (w1 - w0) if w1 > w0 else 0.0


class BusServer:
    def __init__(self, world: SimWorld, bus, harness: SupportHarness | None = None):
        self.world, self.bus = world, bus
        self.harness = harness
        self.tick = -1                     # tick of the last published state
        self._published_at_time = None     # sim time of the last published state
        self.rtf = RealTimeFactor()
        self.steps_without_command = 0     # realtime: steps run under the harness or on a stale command

    # ---- state out -------------------------------------------------------------------------------
    def publish(self) -> int:
        """Write the current sensor sample into the bus and publish it; returns its tick."""
        s = self.world.read_sensors()
        b = self.bus
        b.q[:] = s.q
        b.v[:] = s.v
        b.tau_measured[:] = s.tau_measured
        b.imu_orientation_xyzw[:] = s.imu_orientation_xyzw
        b.imu_angular_velocity[:] = s.imu_angular_velocity
        b.imu_linear_acceleration[:] = s.imu_linear_acceleration
        b.foot_wrench[:, :] = s.foot_wrench
        self.tick = b.publish_state(s.time_s)
        self._published_at_time = s.time_s
        return self.tick

    def _step(self, tau: np.ndarray) -> None:
        self.world.step(tau)
        self.rtf.add(self.world.time_s)

    # ---- lockstep ----------------------------------------------------------------------------------
    def lockstep_tick(self, timeout_s: float) -> bool:
        """Publish (once per physics step), wait for the answer to this tick, apply it and step.

        Returns False (nothing stepped) if the controller did not answer within ``timeout_s``; call
        again to keep waiting for the same tick.
        """
        if self._published_at_time != self.world.time_s or self.tick < 0:
            self.publish()
        if not self.bus.wait_command(self.tick, timeout_s):
            return False
        self._step(self.bus.read_command())
        return True

    # ---- real time ---------------------------------------------------------------------------------
    def controller_active(self) -> bool:
        return bool(self.bus.controller_connected) and self.bus.command_tick >= 0

    def realtime_tick(self) -> None:
        """Publish, apply the latest command (zero-order hold) or the harness, step once."""
        self.publish()
        h = self.harness
        if self.controller_active():
            if h is not None and h.engaged:
                h.release()
            tau = self.bus.read_command()
            if self.bus.command_tick < self.tick - 1:
                self.steps_without_command += 1
        else:
            if h is not None:
                if not h.engaged:
                    h.engage()
                tau = h.torque()
            else:
                tau = -self.world.robot.config.damping_gain * self.world._joint_state()[1]
            self.steps_without_command += 1
        self._step(tau)

    def invalidate(self) -> None:
        """Forget the published state (after a reset): the next tick publishes again."""
        self._published_at_time = None
