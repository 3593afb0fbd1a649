"""Hardware in the loop through launch/hil.launch.xml: the controller in hardware mode drives the simulated robot
only through the emulated CAN motors (SLCAN ptys, MIT frames, the motors' own law), with the IMU from the rig's
driver, all on the wall clock.

One launch (gantry_catches:=true, so the fault at the end is caught), in stages: the controller takes the robot
from the bring-up gantry; the robot stands 10 s on its motors (ground-truth base height and tilt, and the
gantry never catches it); a hand goal is reached; a motor injected silent faults the loop, naming joint and bus
at ERROR, the motors are damped and the gantry catches the robot; ~/reset is refused while the motor is silent
and takes the robot back once it answers again. Then, each followed by the same recovery: a motor reporting an
error code, an adapter unplugged and plugged back in, the IMU driver stopping.
"""

from __future__ import annotations

import re
import time

import pytest
from launch_fixtures.ros_stack import START_S, Probe, Stack, reach_goal, tilt_deg

pytestmark = [pytest.mark.launcher, pytest.mark.realtime]

STAND_S = 10.0
HEIGHT_TOLERANCE_M = 0.03
TILT_LIMIT_DEG = 3.0
REACH_TOLERANCE_M = 0.01


def test_hil_stands_reaches_and_a_silent_motor_is_a_named_fault(isolated, tmp_path, robot):
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from std_msgs.msg import String

    stack = Stack.launch("hil.launch.xml", isolated, tmp_path / "launch.log", "gantry_catches:=true")
    probe = Probe(isolated)
    try:
        pose = probe.latest(PoseStamped, "/sim/base_pose")
        tasks = probe.latest(DiagnosticArray, "/whole_body_controller/task_status")
        hand = robot.config.hands[0]
        goal_pub = probe.node.create_publisher(PoseStamped, f"/whole_body_controller/{hand.name}_hand/goal", 10)
        inject = probe.node.create_publisher(String, "/hil_emulator/inject", 10)

        stack.wait_log(r"the loop takes the robot", START_S, "hand-over to the controller")
        stack.wait_log(r"the controller controls the robot .*the support harness let go", 10, "the gantry letting go")
        time.sleep(2.0)  # the gains ramp in (gain_ramp_s)
        probe.wait(lambda: pose["msg"] is not None, 10, "/sim/base_pose", (stack,))
        with probe.lock:
            z0 = pose["msg"].pose.position.z
        mark = len(stack.output())
        heights, tilts = [], []
        t0 = time.monotonic()
        while time.monotonic() - t0 < STAND_S:
            with probe.lock:
                p = pose["msg"].pose
            heights.append(p.position.z)
            tilts.append(tilt_deg(p.orientation))
            time.sleep(0.1)
        assert "nobody controls the robot" not in stack.output()[mark:], stack.output()[mark:][-3000:]
        assert max(abs(h - z0) for h in heights) < HEIGHT_TOLERANCE_M, (z0, min(heights), max(heights))
        assert max(tilts) < TILT_LIMIT_DEG, max(tilts)

        # a hand goal 6 cm forward and 4 cm up from the start-up gripper pose, in base_link
        goal = reach_goal(robot)
        goal.header.stamp = probe.node.get_clock().now().to_msg()
        probe.wait(lambda: goal_pub.get_subscription_count() > 0, 30, "the goal subscription", (stack,))
        goal_pub.publish(goal)
        sent = time.monotonic()

        def hand_status():
            msg = tasks["msg"]
            if msg is None or time.monotonic() - sent < 1.0:
                return None
            st = next((s for s in msg.status if s.name == f"hand_{hand.name}"), None)
            return None if st is None else {kv.key: kv.value for kv in st.values}

        probe.wait(lambda: (s := hand_status()) is not None and s["goal_reached"] == "true", 60, "the hand goal", (stack,))
        with probe.lock:
            s = hand_status()
        assert float(s["position_error_m"]) <= REACH_TOLERANCE_M

        # a motor falls silent: the loop faults naming it at ERROR; every motor is damped; the gantry catches
        mark = len(stack.output())
        probe.wait(lambda: inject.get_subscription_count() > 0, 10, "the rig's injection topic", (stack,))
        inject.publish(String(data="silent l_knee"))
        stack.wait_log(r"\[ERROR\].*1 kHz loop FAULT.*l_knee.*leg_l_thigh", 10, "the loop fault naming joint and bus",
                  mark)
        stack.wait_log(r"nobody controls the robot any more", 10, "the sim seeing the robot uncontrolled", mark)

        # recovery as the README's fault table says: the motor answers again, then ~/reset takes the robot back
        from std_srvs.srv import Trigger

        reset = probe.node.create_client(Trigger, "/whole_body_controller/reset")
        assert reset.wait_for_service(timeout_sec=10)
        refused = reset.call_async(Trigger.Request())
        probe.wait(lambda: refused.done(), 10, "the ~/reset answer", (stack,))
        assert not refused.result().success and "l_knee" in refused.result().message  # still silent: refused
        mark = len(stack.output())
        inject.publish(String(data="resume l_knee"))
        time.sleep(0.5)
        accepted = reset.call_async(Trigger.Request())
        probe.wait(lambda: accepted.done(), 10, "the ~/reset answer", (stack,))
        assert accepted.result().success, accepted.result().message
        stack.wait_log(r"1 kHz loop RUNNING", 10, "the loop running again", mark)
        stack.wait_log(r"the controller controls the robot", 10, "the controller taking the robot back", mark)

        def fault_and_recover(inject_cmd: str, fault_pattern: str, undo_cmd: str) -> None:
            """Inject, see the named fault at ERROR and the robot no longer controlled, undo, ~/reset, control again."""
            time.sleep(1.0)
            mark = len(stack.output())
            inject.publish(String(data=inject_cmd))
            stack.wait_log(fault_pattern, 10, f"the fault after '{inject_cmd}'", mark)
            stack.wait_log(r"nobody controls the robot any more", 10, f"the robot uncontrolled after '{inject_cmd}'", mark)
            inject.publish(String(data=undo_cmd))
            time.sleep(0.5)
            mark = len(stack.output())
            deadline = time.monotonic() + 10.0
            while True:  # the driver clears the fault once the cause is gone (a reconnect takes up to 100 ms)
                answer = reset.call_async(Trigger.Request())
                probe.wait(lambda a=answer: a.done(), 10, "the ~/reset answer", (stack,))
                if answer.result().success or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            assert answer.result().success, answer.result().message
            stack.wait_log(r"the controller controls the robot", 15, f"control again after '{undo_cmd}'", mark)

        # a motor reporting an error code (Damiao MOSFET over-temperature) names the code, the joint and the bus
        fault_and_recover("error l_hip_pitch 0xB", r"\[ERROR\].*1 kHz loop FAULT.*motor error 0xB.*leg_l_thigh",
                          "error l_hip_pitch 0")
        # an adapter unplugged: fault naming the bus; plugged back in, the bus reconnects without replaying commands
        fault_and_recover("unplug arm_l", r"\[ERROR\].*1 kHz loop FAULT.*adapter gone on bus 'arm_l'", "plug arm_l")
        # the IMU driver stops: the controller damps, saying so
        fault_and_recover("imu stop", r"\[ERROR\].*IMU silent for [0-9.]+ s on /imu/data_raw", "imu start")
    finally:
        probe.close()
        code = stack.stop()
    assert code == 0, stack.output()[-3000:]


def test_a_killed_rig_is_an_adapter_fault_and_the_launch_ends_without_a_hang(isolated, tmp_path):
    """kill -9 of the emulator process: every adapter goes at once (as the robot's CAN adapters would with their
    power). The controller faults naming it and damps; the launch, whose rig has on_exit="shutdown", ends and
    every process exits."""
    import os
    import signal

    stack = Stack.launch("hil.launch.xml", isolated, tmp_path / "launch.log", "gantry_catches:=true")
    try:
        stack.wait_log(r"the loop takes the robot", START_S, "hand-over to the controller")
        time.sleep(1.0)
        rig_pid = stack.child_pids()["hil_emulator"]
        mark = len(stack.output())
        os.kill(rig_pid, signal.SIGKILL)
        stack.wait_log(r"\[ERROR\].*1 kHz loop FAULT.*adapter gone", 10, "the adapter fault at ERROR", mark)
        deadline = time.monotonic() + 40.0
        while stack.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert stack.proc.poll() is not None, "the launch did not end after its rig died"
        out = stack.output()[mark:]
        assert "Traceback" not in out, out[-3000:]
        for node in ("sim", "whole_body_controller"):
            assert re.search(rf"process \[{node}\] has finished", out), out[-3000:]
    finally:
        stack.stop()


def test_a_wrong_encoder_offset_at_start_up_is_refused_naming_the_joint(isolated, tmp_path):
    """The rig's r_elbow encoder reads 1.2 rad off from the start (a zero offset lost at a power cycle): the enable
    sequence refuses, naming the joint and what to do; nothing is enabled and the gantry keeps holding the robot."""
    stack = Stack.launch("hil.launch.xml", isolated, tmp_path / "launch.log", "encoder_errors:=r_elbow=1.2")
    try:
        stack.wait_log(r"\[ERROR\].*activate failed: enable refused:", START_S, "the refused activation")
        stack.wait_log(r"joint 'r_elbow' \(motor 4 on bus 'arm_r'\) reads .*outside its limits.*recalibrate", 5,
                  "the refusal naming the joint")
        time.sleep(2.0)
        out = stack.output()
        assert "motors enabled" not in out and "the loop takes the robot" not in out, out[-3000:]
        assert "the controller controls the robot" not in out, out[-3000:]
    finally:
        code = stack.stop()
    assert code == 0, stack.output()[-3000:]
