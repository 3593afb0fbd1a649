"""Each side of a joint bus has one owner: a second robot side or controller on a bus that a live
process owns is refused with a clear error; a bus whose owner died is taken over."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys

import numpy as np
import pytest

from optimus_control.errors import BusInUseError, RealTimeError
from optimus_control.rt import Dynamics, Loop, LoopConfig, RobotBus, ShmTransport

N_JOINTS, N_FEET = 4, 1

# A robot side or a controller side that owns the bus, says so, then waits to be killed.
_OWNER = """
import sys, time
from optimus_control.rt import RobotBus, ShmTransport
name, side, n, nf = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if side == "robot":
    bus = RobotBus.create(name, n, nf)
    bus.publish_state(0.0)
else:
    transport = ShmTransport(name, n, nf)
print("owning", flush=True)
time.sleep(120)
"""


def bus_name(tag: str) -> str:
    return f"optimus_test_own_{tag}_{os.getpid()}"


def start_owner(name: str, side: str, n_joints: int = N_JOINTS, n_feet: int = N_FEET) -> subprocess.Popen:
    """A process that owns `side` of the bus; returns once it does."""
    proc = subprocess.Popen([sys.executable, "-c", _OWNER, name, side, str(n_joints), str(n_feet)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 60.0)
    line = proc.stdout.readline() if ready else ""
    if line.strip() != "owning":
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"the {side} owner process did not start: {err}")
    return proc


def kill_hard(proc: subprocess.Popen) -> None:
    """SIGKILL: the owner gets no chance to clean up; only the kernel releases what it held."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    proc.stderr.close()


def unlink(name: str) -> None:
    try:
        os.unlink(f"/dev/shm/{name}")
    except FileNotFoundError:
        pass


def test_second_robot_side_in_one_process_is_refused():
    name = bus_name("robot_local")
    bus = RobotBus.create(name, N_JOINTS, N_FEET)
    try:
        for second in (lambda: RobotBus.create(name, N_JOINTS, N_FEET), lambda: RobotBus.attach(name),
                       lambda: RobotBus.create(name, N_JOINTS + 1, N_FEET)):
            with pytest.raises(BusInUseError, match=rf"joint bus '{name}': the robot side is already owned by "
                                                    rf"process {os.getpid()}, which is alive.*another bus_name"):
                second()
        assert bus.publish_state(0.0) == 1  # the owner is untouched
    finally:
        bus.close()
    RobotBus.create(name, N_JOINTS, N_FEET).close()  # free again once closed


def test_second_controller_in_one_process_is_refused():
    name = bus_name("ctrl_local")
    bus = RobotBus.create(name, N_JOINTS, N_FEET)
    first = ShmTransport(name, N_JOINTS, N_FEET)
    try:
        with pytest.raises(BusInUseError, match=rf"joint bus '{name}': the controller side is already owned by "
                                                rf"process {os.getpid()}, which is alive"):
            ShmTransport(name, N_JOINTS, N_FEET)
        assert issubclass(BusInUseError, RealTimeError)
        first.close()
        ShmTransport(name, N_JOINTS, N_FEET).close()  # free again once closed
    finally:
        first.close()
        bus.close()


def test_replacing_a_bus_that_a_live_controller_uses_is_refused():
    """A stale robot side with another layout would be replaced, orphaning the controller: refused."""
    name = bus_name("replace")
    bus = RobotBus.create(name, N_JOINTS, N_FEET)
    transport = ShmTransport(name, N_JOINTS, N_FEET)
    bus.close(unlink=False)
    try:
        with pytest.raises(BusInUseError, match="controller side is already owned"):
            RobotBus.create(name, N_JOINTS + 2, N_FEET)
        transport.close()
        replaced = RobotBus.create(name, N_JOINTS + 2, N_FEET)
        assert replaced.n_joints == N_JOINTS + 2
        replaced.close()
    finally:
        transport.close()
        unlink(name)


@pytest.mark.realtime
def test_robot_side_of_a_live_process_is_refused_and_taken_over_after_it_dies():
    name = bus_name("robot_proc")
    owner = start_owner(name, "robot")
    try:
        with pytest.raises(BusInUseError, match=rf"joint bus '{name}': the robot side is already owned by process "
                                                rf"{owner.pid}, which is alive.*another bus_name \(or namespace\)"):
            RobotBus.create(name, N_JOINTS, N_FEET)
        with pytest.raises(BusInUseError, match=f"process {owner.pid}"):
            RobotBus.attach(name)
        kill_hard(owner)
        bus = RobotBus.create(name, N_JOINTS, N_FEET)  # the dead owner's bus, taken over as it is
        try:
            assert bus.publish_state(0.001) == 2  # the dead owner published tick 1
        finally:
            bus.close()
    finally:
        if owner.poll() is None:
            kill_hard(owner)
        unlink(name)


@pytest.mark.realtime
def test_controller_side_of_a_live_process_is_refused_and_taken_over_after_it_dies():
    name = bus_name("ctrl_proc")
    bus = RobotBus.create(name, N_JOINTS, N_FEET)
    owner = start_owner(name, "controller")
    try:
        with pytest.raises(BusInUseError, match=rf"joint bus '{name}': the controller side is already owned by "
                                                rf"process {owner.pid}, which is alive"):
            ShmTransport(name, N_JOINTS, N_FEET)
        kill_hard(owner)
        transport = ShmTransport(name, N_JOINTS, N_FEET)
        assert transport.is_open
        transport.close()
    finally:
        if owner.poll() is None:
            kill_hard(owner)
        bus.close()


@pytest.mark.realtime
def test_a_restarted_robot_side_keeps_a_live_controller(robot):
    """The robot process dies (SIGKILL) and a new one takes the bus over: the controller's loop, still
    attached to the same segment, answers the new robot side's states without a restart."""
    name = bus_name("restart")
    n, nf = robot.n_joints, len(robot.config.feet)
    owner = start_owner(name, "robot", n, nf)
    transport = ShmTransport(name, n, nf)
    loop = Loop(Dynamics.from_robot_model(robot), transport,
                LoopConfig.for_robot(robot, mode="lockstep", lock_memory=False))
    bus = None
    try:
        loop.start()
        kill_hard(owner)
        bus = RobotBus.create(name, n, nf)
        bus.q[:] = robot.standing_joint_positions()
        bus.v[:] = 0.5
        tick = bus.publish_state(0.001)
        assert tick == 2
        assert bus.wait_command(tick, 10.0), "the controller did not answer the restarted robot side"
        np.testing.assert_allclose(bus.read_command(), -robot.config.damping_gain * 0.5 * np.ones(n))
    finally:
        loop.close()
        transport.close()
        if bus is not None:
            bus.close()
        if owner.poll() is None:
            kill_hard(owner)
        unlink(name)
