"""The HIL actuator emulator (rt_emu.c via hardware.hil) in one process: a robot side publishing states on a
joint bus, the emulator on its controller side, and hosts on the emulated SLCAN ptys: python-can (as a user
would open any SLCAN adapter) and the stack's own CAN driver.

Checked: plain SLCAN and MIT frames (enter, command, reply, exit), the motor law on the joint side through gear,
direction and offset, quantised replies, the firmware timeout, a host calibration that disagrees with the
motors shows, frames logged in the can-utils format, and the bus state the sim's harness reads.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from optimus_control.hardware import load_hardware
from optimus_control.hardware.checks import joint_scale
from optimus_control.hardware.driver import CanDriver
from optimus_control.hardware.hil import DAMIAO_TIMEOUT_S, HilEmulator, motor_table
from optimus_control.rt import LoopState, _rtcore
from optimus_control.rt.bus import RobotBus

can = pytest.importorskip("can", reason="python-can is a test dependency (setup.py extras 'test')")


class RobotSide:
    """Publishes a fixed joint state at ~1 kHz, as the sim's bus server does, and keeps the answers."""

    def __init__(self, name: str, q: np.ndarray, n_feet: int):
        self.bus = RobotBus.create(name=name, n_joints=len(q), n_feet=n_feet)
        self.q = q.copy()
        self.v = np.zeros(len(q))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        t = 0.0
        while not self._stop.is_set():
            self.bus.q[:], self.bus.v[:] = self.q, self.v
            self.bus.imu_orientation_xyzw[:] = [0.0, 0.0, 0.0, 1.0]
            tick = self.bus.publish_state(t)
            t += 0.001
            self.bus.wait_command(tick, 0.002)
            time.sleep(0.0005)

    def torque(self) -> np.ndarray:
        return self.bus.read_command()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.bus.close(unlink=True)


@pytest.fixture
def rig(robot, tmp_path):
    desc = load_hardware("hardware/optimus.yaml")
    name = f"hil_emu_test_{id(tmp_path) & 0xFFFFFF}"
    side = RobotSide(name, robot.standing_joint_positions(), len(robot.config.feet))
    transport = _rtcore.ShmTransport(name, robot.n_joints, len(robot.config.feet))
    emulator = HilEmulator(desc, robot, transport, tmp_path / "pty")
    emulator.start()
    try:
        yield desc, side, emulator
    finally:
        emulator.stop()
        transport.close()
        side.close()


def _wait(predicate, timeout_s: float = 3.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (value := predicate()):
            return value
        time.sleep(0.005)
    raise AssertionError("timed out")


def test_python_can_drives_an_emulated_motor_over_plain_slcan(rig, robot, tmp_path):
    desc, side, emulator = rig
    joint = "l_knee"
    jh, j = desc.joints[joint], robot.joint_index(joint)
    model = desc.models[jh.model]
    scale = joint_scale(jh.gear_ratio, False)
    log_path = tmp_path / "frames.log"
    bus = can.Bus(interface="slcan", channel=emulator.paths[jh.bus], bitrate=1_000_000)
    logger = can.CanutilsLogWriter(str(log_path), channel=jh.bus)
    try:
        def exchange(data: bytes) -> can.Message:
            bus.send(can.Message(arbitration_id=jh.motor_id, data=data, is_extended_id=False))
            while True:
                reply = bus.recv(timeout=2.0)
                assert reply is not None, "the motor did not answer"
                if reply.arbitration_id == 0:
                    logger(reply)
                    return reply

        reply = exchange(_rtcore.mit_special(0xFC))                # enter motor mode
        state = _rtcore.mit_unpack(model.range10(), bytes(reply.data), True)
        assert state["id"] == jh.motor_id and state["error"] == 1      # Damiao: state 1 = enabled
        expected_p = jh.direction * scale * (side.q[j] - jh.zero_offset)
        assert abs(state["p"] - expected_p) < 25.0 / 65535 + 1e-9      # one position quantum
        assert emulator.motor_status()[joint]["enabled"] == 1

        kp_m, dp = 20.0, 0.05                                          # motor side: 1 N m at 0.05 rad
        data, _ = _rtcore.mit_pack(model.range10(), state["p"] + dp, 0.0, kp_m, 0.0, 0.0)
        exchange(data)
        tau = _wait(lambda: (t := side.torque()[j]) != 0.0 and t)
        t_quantum = (model.torque[1] - model.torque[0]) / 4095    # a zero feed-forward decodes within one
        assert abs(tau - jh.direction * scale * kp_m * dp) <= scale * t_quantum + 0.02 * scale * kp_m * dp, \
            "joint torque = gear x motor law"
        # no more commands: after the firmware timeout the motor damps (at rest: no torque)
        _wait(lambda: emulator.motor_status()[joint]["timed_out"], DAMIAO_TIMEOUT_S + 2.0)
        assert abs(side.torque()[j]) < 1e-9
        exchange(_rtcore.mit_special(0xFD))                            # exit motor mode
        assert emulator.motor_status()[joint]["enabled"] == 0 and emulator.motor_status()[joint]["exits"] == 1
    finally:
        logger.stop()
        bus.shutdown()
    lines = log_path.read_text().splitlines()
    assert lines and all(line.startswith("(") and f" {jh.bus} 000#" in line for line in lines), lines[:3]


def test_the_stack_driver_reads_enables_and_commands_the_emulated_motors(rig, robot):
    desc, side, emulator = rig
    driver = CanDriver(desc, robot, bus_urls={b: f"slcan:{p}" for b, p in emulator.paths.items()},
                       bus_rates={b: 200.0 for b in desc.buses})
    driver.open(open_timeout_s=2.0)
    try:
        q, problems = driver.read_check()
        assert not problems and np.allclose(q, side.q, atol=2e-3)
        driver.enable()
        assert all(s["enabled"] for s in emulator.motor_status().values())
        ref = side.q + 0.02
        driver.hold(ref, robot.kp, robot.kd)
        _wait(lambda: np.all(np.abs(side.torque()) > 0))
        time.sleep(0.05)
        expected = robot.kp * 0.02
        # quantised gains and positions: a few per cent, plus the fingers' clamp at their motors' torque
        ok = np.abs(side.torque() - expected) <= 0.05 * np.abs(expected) + 0.5
        assert ok.all(), [n for n, good in zip(robot.joint_names, ok) if not good]
        # the plant sees the motors drive it: the harness may let go
        assert side.bus.controller()[2] == LoopState.RUNNING
        driver.disable()
        assert not any(s["enabled"] for s in emulator.motor_status().values())
        _wait(lambda: side.bus.controller()[2] == LoopState.DAMPING)
    finally:
        driver.close()


def test_a_host_calibration_that_disagrees_with_the_motors_shows(rig, robot, tmp_path):
    """The emulated motors keep the description's offsets; a host whose calibration file says otherwise
    reads the joints shifted by the difference, as on the robot after an offset is lost."""
    desc, side, emulator = rig
    import dataclasses

    wrong = dataclasses.replace(desc, calibration={"r_elbow": desc.joints["r_elbow"].zero_offset + 1.2})
    driver = CanDriver(wrong, robot, bus_urls={b: f"slcan:{p}" for b, p in emulator.paths.items()},
                       bus_rates={b: 200.0 for b in desc.buses})
    driver.open(open_timeout_s=2.0)
    try:
        q, problems = driver.read_check()
        k = robot.joint_index("r_elbow")
        assert q[k] == pytest.approx(side.q[k] + 1.2, abs=2e-3)
        assert any("'r_elbow'" in p and "outside its limits" in p for p in problems), problems
    finally:
        driver.close()


def test_motor_table_follows_the_description(robot):
    desc = load_hardware("hardware/optimus.yaml")
    rows = motor_table(desc, robot)
    assert len(rows) == robot.n_joints
    k = robot.joint_index("r_finger_right")
    bus, mid, _, damiao, scale, direction, offset, timeout_s, _ = rows[k]
    jh = desc.joints["r_finger_right"]
    assert (list(desc.buses)[bus], mid, direction, offset) == (jh.bus, jh.motor_id, jh.direction, jh.zero_offset)
    assert scale == pytest.approx(1 / jh.gear_ratio) and not damiao and timeout_s > 0


def _driver(desc, robot, emulator, rate_hz: float = 200.0, missed: int = 0) -> CanDriver:
    driver = CanDriver(desc, robot, bus_urls={b: f"slcan:{p}" for b, p in emulator.paths.items()},
                       bus_rates={b: rate_hz for b in desc.buses}, missed_cycles=missed)
    driver.open(open_timeout_s=2.0)
    return driver


def test_replies_dropped_or_garbled_on_the_wire_are_missing_to_the_host_never_misread(rig, robot):
    desc, side, emulator = rig
    emulator.inject("drop leg_l_hip 0.3")
    emulator.inject("corrupt arm_r 0.3")
    driver = _driver(desc, robot, emulator, missed=1000)  # the subject here is the counting, not the fault
    try:
        driver.wait_cycles(100, timeout_s=10.0)
        stats = dict(zip(driver.bus_names, driver.transport.bus_stats()))
        rig_stats = dict(zip(emulator.bus_names, emulator.stats()["buses"]))
        hip, arm = stats["leg_l_hip"], stats["arm_r"]
        assert rig_stats["leg_l_hip"]["dropped"] > 0 and hip["missing"] >= rig_stats["leg_l_hip"]["dropped"] // 2
        assert 0.15 < hip["missing"] / (2 * hip["cycles"]) < 0.45, hip      # 2 motors, 30 % of replies lost
        assert rig_stats["arm_r"]["corrupted"] > 0 and arm["missing"] > 0
        assert stats["leg_r_hip"]["missing"] <= 2                           # the other buses untouched
        q = np.asarray(driver.transport.monitor()[0])
        assert np.allclose(q, side.q, atol=2e-3), "a garbled line must be dropped, not read as a state"
    finally:
        driver.close()


def test_a_cut_bus_is_every_motor_on_it_silent(rig, robot):
    desc, side, emulator = rig
    emulator.inject("cut torso")
    driver = _driver(desc, robot, emulator)
    try:
        _, problems = driver.read_check()
        torso = [n for n, jh in desc.joints.items() if jh.bus == "torso"]
        assert sorted(p.split("'")[1] for p in problems) == sorted(torso), problems
        emulator.inject("mend torso")
        assert not driver.read_check()[1]
    finally:
        driver.close()


def test_the_wire_delays_the_answers_by_their_frame_time_and_latency(rig, robot):
    desc, side, emulator = rig
    driver = _driver(desc, robot, emulator, rate_hz=100.0)
    try:
        driver.wait_cycles(50, timeout_s=10.0)
        base = dict(zip(driver.bus_names, driver.transport.bus_stats()))["torso"]["rtt_p50_us"]
        emulator.inject("latency torso 3000")
        driver.close()
        driver = _driver(desc, robot, emulator, rate_hz=100.0)  # fresh round-trip histograms
        driver.wait_cycles(50, timeout_s=10.0)
        delayed = dict(zip(driver.bus_names, driver.transport.bus_stats()))["torso"]
        assert delayed["rtt_p50_us"] >= base + 2500, (base, delayed["rtt_p50_us"])
        # 4 motors: 8 frames of 135 bits at 1 Mbit/s = 1.08 ms on the wire before any latency
        assert base >= 1000, base
    finally:
        driver.close()
