"""ROS 2 node `whole_body_controller`: joint bus + 1 kHz C loop + estimator + whole-body QP.

Thin adapter: a control thread follows the loop's state packets (sim ticks in lockstep mode), runs the
floating-base estimator and the whole-body QP (optimus_control.control) every 1000/rate_hz ticks and
hands the references and the base state to the C loop. ROS callbacks only translate messages into
controller calls. Topics, services and the task-status format are listed in the README
("whole_body_controller node"); in short (``~`` = the node, e.g. /r1/whole_body_controller; the other
names are relative to its namespace, /diagnostics is global with the node's full name as status name):

in   ~/<hand>_hand/goal (PoseStamped, any resolvable frame), ~/<hand>_gripper/command (JointState:
     position[0] = per-finger opening [m], effort[0] = force limit [N]), ~/gaze/target (PointStamped),
     ~/com_height (Float64 [m] in odom), ~/posture (String preset); services ~/start, ~/damp, ~/reset (Trigger)
out  joint_states, imu/data, foot_wrench/<foot> (WrenchStamped), odom, robot_description,
     /diagnostics, ~/task_status (DiagnosticArray: one status per task, values listed in the README)

A managed (lifecycle) node, as ros2_control's hardware is: configure connects the transport (sim: the
shared-memory joint bus; hardware: opens the CAN buses and reads every motor), activate starts the loop
and the control thread (hardware: after the driver's enable sequence), deactivate stops them (hardware:
damping, then every motor leaves motor mode), cleanup releases the transport. In the sim modes the node
takes configure and activate itself at start-up; on hardware it waits for them (or ``autostart``).
Hardware mode also reads the IMU vendor's driver (``imu_topic``) and, where fitted, foot force/torque
sensors (``foot_wrench_input``), and reports every motor's temperatures and error codes on /diagnostics.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import traceback

import numpy as np
import pinocchio as pin
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PointStamped, PoseStamped, WrenchStamped
from nav_msgs.msg import Odometry
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64, String
from std_srvs.srv import Trigger

from optimus_control.control import ControllerState, GoalFrameResolver, WholeBodyController
from optimus_control.control.control_step import ControlStep
from optimus_control.control.status_changes import Level, StatusChanges
from optimus_control.control.update_timing import UpdateTiming
from optimus_control.control.wbc_settings import WholeBodyControllerNodeSettings
from optimus_control.errors import ConfigError, OptimusError
from optimus_control.estimation import FloatingBaseEstimator
from optimus_control.model import RobotModel
from optimus_control.nodes.hardware_side import HardwareSide
from optimus_control.nodes.names import bus_name, check_time_mode
from optimus_control.nodes.node_main import spin_node
from optimus_control.nodes.parameters import declare_settings
from optimus_control.nodes.ros_time import s_to_stamp, stamp_to_s
from optimus_control.nodes.scheduling import pin_process
from optimus_control.rt import Dynamics, Loop, LoopConfig, LoopState, Reason, connect_transport

MODES = ("lockstep", "realtime", "hardware")

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)



class WholeBodyControllerNode(LifecycleNode):
    def __init__(self):
        super().__init__("whole_body_controller")
        self.settings = declare_settings(self, WholeBodyControllerNodeSettings)
        p = self.p = vars(self.settings)
        if p["mode"] not in MODES:
            raise ConfigError(f"{self.get_fully_qualified_name()}: parameter mode '{p['mode']}' must be one of {MODES}")
        self.hardware = p["mode"] == "hardware"
        self.use_sim_time = bool(self.get_parameter("use_sim_time").value)
        check_time_mode(self.get_fully_qualified_name(), p["mode"], self.use_sim_time)
        p["bus_name"] = bus_name(p["bus_name"], self.context.get_domain_id(), self.get_namespace())
        why = pin_process(int(p["cpu"]))
        if why:
            self.get_logger().warning(f"{why}; the controller runs unpinned")
        self.robot = RobotModel.load(p["robot_config"])
        self.controller = WholeBodyController(self.robot, self.settings)
        # Without foot force/torque sensors (hardware unless foot_wrench_input is set) the estimator takes
        # its contacts from the controller's plan; the simulator's bus carries measured foot wrenches.
        self.step = ControlStep(self.robot, self.controller, FloatingBaseEstimator(self.robot),
                                contacts_from_plan=self.hardware and not p["foot_wrench_input"])
        self.resolver = GoalFrameResolver(self.robot, p["odom_frame"])
        self.lock = threading.Lock()
        self.lockstep = p["mode"] == "lockstep"
        self.ticks_per_update = self.settings.ticks_per_update
        self.loop: Loop | None = None
        self.hw: HardwareSide | None = HardwareSide(self, self.robot, p) if self.hardware else None
        self._make_interfaces()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_report = ""
        self._sensor_report = ""  # what is wrong with the ROS sensors (hardware), "" when nothing
        self._status_changes = StatusChanges()
        self._hand_goal_info: dict[str, tuple[float, bool]] = {}  # hand -> (goal header stamp [s], clamped)
        self.failure: str | None = None  # why the control thread died (the node then shuts down, exit 1)
        self._transition_error: Exception | None = None
        if not self.hardware or p["autostart"]:
            for transition in (self.trigger_configure, self.trigger_activate):
                if transition() is not TransitionCallbackReturn.SUCCESS:
                    if not self.hardware:  # a sim stack without its controller is no stack: exit with the reason
                        raise self._transition_error or OptimusError("the controller failed to start")
                    break  # hardware: stay up, inactive, and say why (done by the transition)

    # ---- lifecycle ---------------------------------------------------------------------------------
    def _transition(self, name: str, fn) -> TransitionCallbackReturn:
        """Run a transition's work; a refusal or an error is logged with its reason and fails the transition
        (rclpy would swallow the exception)."""
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - every failure must be reported, none may escape into rclpy
            self._transition_error = exc
            detail = str(exc) if isinstance(exc, OptimusError) else traceback.format_exc()
            self.get_logger().error(f"{name} failed: {detail}")
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._transition("configure", self._configure)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._transition("activate", self._activate)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._transition("deactivate", self._deactivate)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._transition("cleanup", self._cleanup)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._transition("shutdown", self._release)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        p = self.p
        n, n_feet = self.robot.n_joints, len(self.robot.config.feet)
        silent_ticks = max(1, round(p["transport_silent_timeout_s"] * 1000.0))
        if self.hardware:
            transport = self.hw.configure()
            # Hardware buses have their own clocks: the loop ticks at its own deadlines and never waits.
            config = LoopConfig.for_robot(self.robot, mode="realtime", trigger="clock", motor_pd=bool(p["motor_pd"]),
                                          sync_period_ticks=self.ticks_per_update, silent_ticks=silent_ticks,
                                          stale_reference_timeout_s=float(p["stale_reference_timeout_s"]),
                                          cpu=p["cpu"] if p["cpu"] >= 0 else None)
        else:
            self.get_logger().info(f"connecting to joint bus '{p['bus_name']}' ({n} joints, {n_feet} feet)")
            transport = connect_transport(p["bus_name"], n, n_feet, timeout_s=float(p["connect_timeout_s"]))
            # The native loop thread hands this node's control thread one state per update period (it sleeps in
            # between). Lockstep: the loop also holds each such state until the control thread has set the
            # references computed from the previous one, so the simulator, the 1 kHz law and the QP advance
            # together (a slow QP slows the simulation instead of starving the loop), references from state s
            # apply from tick s + period exactly, and the QP runs while the simulator steps. Real time: the
            # loop never waits; a late update only makes the references older. The joint bus's robot side
            # (the sim) has its own clock: in real time the loop ticks on its states.
            config = LoopConfig.for_robot(self.robot, mode=p["mode"], sync_period_ticks=self.ticks_per_update,
                                          trigger="state", silent_ticks=silent_ticks,
                                          stale_reference_timeout_s=float(p["stale_reference_timeout_s"]),
                                          cpu=p["cpu"] if p["cpu"] >= 0 else None)
        try:
            self.loop = Loop(Dynamics.from_robot_model(self.robot), transport, config)
        except Exception:
            if self.hardware:  # a failed configure leaves no bus open behind it
                self.hw.close()
            raise
        # Real time: the loop gets references (and takes the robot) only once the updates keep time.
        self._update_timing = UpdateTiming(float(p["handover_steady_s"]), 0.5 * config.stale_reference_timeout_s)
        # Everything built so far lives as long as the node: out of the collector's sight, a full collection
        # scans only what the control thread makes (a full pass over the models and ROS objects takes tens of
        # ms on a loaded machine: enough for the references to go stale and the loop to damp the robot).
        gc.freeze()

    def _activate(self) -> None:
        if self.hardware:
            self.hw.enable()  # refuses naming every silent or out-of-range joint
        with self.lock:
            if self.controller.state is ControllerState.IDLE:
                if self.p["auto_start"] or self.hardware:
                    self.step.request_start()
            else:  # activated again: balance from the state the robot is in now
                self.step.request_reset()
        self._update_timing.reset()
        self._handed_over = self.lockstep
        self._handed_over_at: float | None = None
        self._retake_pending = False  # restart balancing before the next hand-over (after stale references)
        self._stop.clear()
        self.loop.start()
        self._thread = threading.Thread(target=self._control_thread_main, name="wbc", daemon=True)
        self._thread.start()

    def _deactivate(self) -> None:
        self._stop_control()
        if self.hardware:
            self.hw.disable()  # damping, then every motor leaves motor mode

    def _cleanup(self) -> None:
        if self.loop is not None:
            self.loop.close()  # releases the transport
            self.loop = None
        if self.hardware:
            self.hw.close()

    def _stop_control(self) -> None:
        """Stop the control thread, then the loop (its last command is a zero torque marked STOPPED; the CAN
        buses then damp every motor)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        with self.lock:
            if self.controller.state is not ControllerState.IDLE:
                self.controller.request_damping("the controller was deactivated")

    def _release(self) -> None:
        """Everything down, whatever the state (shutdown, error, process exit)."""
        self._stop_control()
        if self.hardware:
            self.hw.disable()
        self._cleanup()

    # ---- ROS interfaces ---------------------------------------------------------------------------
    def _make_interfaces(self) -> None:
        cfg = self.robot.config
        self.pub_joints = self.create_publisher(JointState, "joint_states", qos_profile_sensor_data)
        self.pub_imu = self.create_publisher(Imu, "imu/data", qos_profile_sensor_data)
        self.pub_wrench = {f.name: self.create_publisher(WrenchStamped, f"foot_wrench/{f.name}", qos_profile_sensor_data)
                           for f in cfg.feet}
        self.pub_odom = self.create_publisher(Odometry, "odom", qos_profile_sensor_data)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", RELIABLE)
        self.pub_tasks = self.create_publisher(DiagnosticArray, "~/task_status", RELIABLE)
        self.pub_description = self.create_publisher(String, "robot_description", LATCHED)
        self.pub_description.publish(String(data=self.robot.urdf_path.read_text()))
        for hand in self.controller.hand_names:
            self.create_subscription(PoseStamped, f"~/{hand}_hand/goal", lambda m, h=hand: self._on_hand_goal(h, m), RELIABLE)
            self.create_subscription(JointState, f"~/{hand}_gripper/command", lambda m, h=hand: self._on_gripper(h, m),
                                     RELIABLE)
        self.create_subscription(PointStamped, "~/gaze/target", self._on_gaze, RELIABLE)
        self.create_subscription(Float64, "~/com_height", self._on_com_height, RELIABLE)
        self.create_subscription(String, "~/posture", self._on_posture, RELIABLE)
        self.create_service(Trigger, "~/start", self._on_start)
        self.create_service(Trigger, "~/damp", self._on_damp)
        self.create_service(Trigger, "~/reset", self._on_reset)

    def _goal(self, what: str, fn):
        """Apply a goal under the lock; returns the controller's report (None if rejected or none)."""
        report = None
        try:
            with self.lock:
                report = fn()
            if report is not None and getattr(report, "clamped", False):
                self.get_logger().warning(f"{what}: {report.message}")
            elif report is not None:
                self.get_logger().info(f"{what} accepted ({report.duration_s:.2f} s move)")
        except OptimusError as exc:
            self.get_logger().error(f"{what} rejected: {exc}")
            self._last_report = f"{what} rejected: {exc}"
        return report

    def _on_hand_goal(self, hand: str, msg: PoseStamped) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        quat = np.array([o.x, o.y, o.z, o.w])
        norm = np.linalg.norm(quat)
        pose = pin.SE3(pin.Quaternion(quat / norm).toRotationMatrix() if norm > 1e-6 and np.isfinite(norm) else
                       np.full((3, 3), np.nan), np.array([p.x, p.y, p.z]))
        stamp_s = stamp_to_s(msg.header.stamp)
        report = self._goal(f"{hand} hand goal [{p.x:.3f}, {p.y:.3f}, {p.z:.3f}] m in '{msg.header.frame_id}' "
                            f"(stamp {stamp_s:.2f} s)",
                            lambda: self.controller.set_hand_target(hand, self.resolver.pose_to_world(pose, msg.header.frame_id)))
        if report is not None:  # echoed in ~/task_status so a client knows which goal a status refers to
            with self.lock:
                self._hand_goal_info[hand] = (stamp_s, bool(report.clamped))

    def _on_gripper(self, hand: str, msg: JointState) -> None:
        opening = msg.position[0] if msg.position else float("nan")
        force = msg.effort[0] if msg.effort else None
        self._goal(f"{hand} gripper command", lambda: self.controller.set_gripper(hand, opening, force))

    def _on_gaze(self, msg: PointStamped) -> None:
        point = np.array([msg.point.x, msg.point.y, msg.point.z])
        self._goal("gaze target",
                   lambda: self.controller.set_gaze_target(self.resolver.point_to_world(point, msg.header.frame_id)))

    def _on_com_height(self, msg: Float64) -> None:
        self._goal("CoM height", lambda: self.controller.set_com_height(msg.data))

    def _on_posture(self, msg: String) -> None:
        self._goal("posture preset", lambda: self.controller.set_posture(msg.data))

    def _on_start(self, _req, res):
        self.step.request_start()
        res.success, res.message = True, "balancing starts at the next state"
        return res

    def _on_damp(self, _req, res):
        with self.lock:
            self.controller.request_damping("damping requested through ~/damp")
        res.success, res.message = True, "switching the loop to damping"
        return res

    def _on_reset(self, _req, res):
        if self.hw is not None:  # a latched actuator fault clears only once its cause is gone
            problem = self.hw.clear_fault()
            if problem:
                res.success, res.message = False, f"reset refused: {problem}"
                self.get_logger().error(res.message)
                return res
        self.step.request_reset()
        res.success, res.message = True, "faults reset; balancing restarts from the current state"
        return res

    # ---- control thread -----------------------------------------------------------------------------
    def _control_thread_main(self) -> None:
        """A control thread that dies takes the node with it: the loop damps on the stale references, and a
        process that stays up without control would look healthy to the launcher."""
        try:
            self._control_thread()
        except Exception:
            self.failure = traceback.format_exc()
            self.get_logger().error(f"the control thread failed; the loop damps and the node stops:\n{self.failure}")
            self.context.try_shutdown()

    def _control_thread(self) -> None:
        ticks_per_update = self.ticks_per_update
        publish_every = max(1, int(round(1000.0 / self.p["publish_rate_hz"])))
        diag_every = max(1, int(round(1000.0 / self.p["diagnostics_rate_hz"])))
        tasks_every = max(1, int(round(1000.0 / self.p["task_status_rate_hz"])))
        last_update, last_pub, last_diag, last_tasks = -10**9, -10**9, -10**9, -10**9
        while not self._stop.is_set():
            state = self.loop.wait_update_state(0.1)  # lockstep: every update state, once, in order
            if state is None:
                self._log_status_changes()  # a silent robot side is a fault to report too
                continue
            sensor_problem = ""
            if self.hw is not None:  # the IMU (and foot force/torque) come over ROS on hardware
                state, sensor_problem = self.hw.sensor_state(state)
            if state.tick - last_update >= ticks_per_update:
                last_update = state.tick
                try:
                    if sensor_problem:
                        self._sensor_fault(sensor_problem)
                    else:
                        self._sensor_report = ""
                        self._control_step(state)
                except Exception as exc:  # never leave the loop with stale-but-fresh-looking references
                    self.get_logger().error(f"control step failed: {exc!r}; damping")
                    with self.lock:
                        self.controller.request_damping(f"control step raised {exc!r}")
            if self.lockstep:
                self.loop.mark_processed(state.tick)  # publishing below overlaps the simulator's steps
            self._log_status_changes()
            try:
                if state.tick - last_pub >= publish_every:
                    last_pub = state.tick
                    self._publish_state(state)
                if state.tick - last_diag >= diag_every:
                    last_diag = state.tick
                    self._publish_diagnostics(state)
                if state.tick - last_tasks >= tasks_every:
                    last_tasks = state.tick
                    self._publish_task_status(state)
            except Exception:
                if not self.context.ok():  # shutting down (Ctrl-C, launch ending): nothing left to publish to
                    return
                raise

    def _sensor_fault(self, problem: str) -> None:
        """No estimate without the sensors: before the first samples the loop stays in INIT (damping, no
        references); once running, the controller damps with the reason until ~/reset."""
        with self.lock:
            running = self.controller.state in (ControllerState.RUNNING, ControllerState.HOLDING)
            if running:
                self.controller.request_damping(problem)
        if running:
            self.get_logger().error(f"{problem}: damping (call ~/reset once the sensor is back)")
        elif problem.split(" for ")[0] != self._sensor_report.split(" for ")[0]:
            self.get_logger().warning(f"{problem}: the controller waits for it (the loop damps)")
        self._sensor_report = problem

    def _control_step(self, state) -> None:
        base = self.step.estimate(state)
        q, v = base.configuration(state.q), base.velocity(state.v)
        with self.lock:
            self.resolver.update(q)
            command = self.step.control(q, v, state.time_s, base.time_s)
            if command.reset:
                self.loop.reset()
                self._hand_goal_info.clear()  # the hands now hold where they are: no goal to echo
                if self._handed_over:
                    self._handed_over_at = time.monotonic()  # hardware: the gains ramp in again from the damped state
        if command.started:
            self.get_logger().info("balancing started")
        if not self._handed_over:
            steady = self._update_timing.tick(time.monotonic())
            if not (steady and self.controller.state is ControllerState.RUNNING) or self._retake_pending:
                if steady and self._retake_pending:  # restart from the state the robot is held in; hand over next
                    self._retake_pending = False
                    self.step.request_reset()
                self.loop.set_base_state(command.base_pose, command.base_twist)  # the loop keeps damping
                return
            self._handed_over, self._handed_over_at = True, time.monotonic()
            self.get_logger().info(f"the control updates kept time for {self._update_timing.steady_s:g} s (longest gap "
                                   f"{1e3 * self._update_timing.longest_gap_s:.1f} ms): the loop takes the robot")
        command.send(self.loop, self._gain_scale(), self.robot.config.damping_gain)

    def _gain_scale(self) -> float:
        """Hardware: the joint gains rise from 0 over gain_ramp_s after the loop took the robot (no torque step
        where the motors' positions and the first references disagree)."""
        if self.hw is None or self._handed_over_at is None or self.p["gain_ramp_s"] <= 0:
            return 1.0
        return min(1.0, (time.monotonic() - self._handed_over_at) / self.p["gain_ramp_s"])

    def _log_status_changes(self) -> None:
        """A fault or a recovery goes to the log at once, with its reason (diagnostics only come at 1 Hz)."""
        with self.lock:
            controller_state, fault = self.controller.state, self.controller.fault
        loop = self.loop.status()
        if (self._handed_over and not self.lockstep and self.p["retake_after_stale"]
                and loop.state is LoopState.DAMPING and loop.reason is Reason.STALE_REFERENCE):
            self._handed_over, self._retake_pending = False, True
            self._update_timing.reset()
            self.get_logger().warning("the updates were late and the loop damps; balancing restarts once they keep "
                                      f"time for {self._update_timing.steady_s:g} s (retake_after_stale)")
        log = self.get_logger()
        for event in self._status_changes.update(controller_state, fault, loop.state.name, loop.message):
            if event.level is Level.ERROR:  # one call site per severity (rclpy requires it)
                log.error(event.text)
            elif event.level is Level.WARN:
                log.warning(event.text)
            else:
                log.info(event.text)

    # ---- status out -------------------------------------------------------------------------------
    def _state_stamp(self, state) -> Time:
        """Stamp of a state sample on the node's clock: the sample's own sim time when following /clock
        (finer than /clock's period), else the node's wall clock at publication (real-time mode)."""
        return s_to_stamp(state.time_s) if self.use_sim_time else self.get_clock().now().to_msg()

    def _publish_state(self, state) -> None:
        stamp = self._state_stamp(state)
        js = JointState()
        js.header.stamp = stamp
        js.name = list(self.robot.joint_names)
        js.position, js.velocity, js.effort = state.q.tolist(), state.v.tolist(), state.tau_measured.tolist()
        self.pub_joints.publish(js)
        imu = Imu()
        imu.header.stamp, imu.header.frame_id = stamp, self.robot.config.imu_frame
        o = state.imu_orientation_xyzw
        imu.orientation.x, imu.orientation.y, imu.orientation.z, imu.orientation.w = map(float, o)
        imu.angular_velocity.x, imu.angular_velocity.y, imu.angular_velocity.z = map(float, state.imu_angular_velocity)
        a = state.imu_linear_acceleration
        imu.linear_acceleration.x, imu.linear_acceleration.y, imu.linear_acceleration.z = map(float, a)
        self.pub_imu.publish(imu)
        for foot, wrench in zip(self.robot.config.feet, state.foot_wrench):
            msg = WrenchStamped()
            msg.header.stamp, msg.header.frame_id = stamp, foot.frame
            msg.wrench.force.x, msg.wrench.force.y, msg.wrench.force.z = map(float, wrench[:3])
            msg.wrench.torque.x, msg.wrench.torque.y, msg.wrench.torque.z = map(float, wrench[3:])
            self.pub_wrench[foot.name].publish(msg)
        base = self.step.base
        if base is not None:
            odom = Odometry()
            odom.header.stamp, odom.header.frame_id = stamp, self.p["odom_frame"]
            odom.child_frame_id = self.robot.config.base_frame
            pp, qq = odom.pose.pose.position, odom.pose.pose.orientation
            pp.x, pp.y, pp.z = map(float, base.position_m)
            qq.x, qq.y, qq.z, qq.w = map(float, base.orientation_xyzw)
            R = base.rotation  # twist in the child (base) frame, per nav_msgs/Odometry
            lin, ang = R.T @ base.linear_velocity_mps, R.T @ base.angular_velocity_radps
            tw = odom.twist.twist
            tw.linear.x, tw.linear.y, tw.linear.z = map(float, lin)
            tw.angular.x, tw.angular.y, tw.angular.z = map(float, ang)
            self.pub_odom.publish(odom)

    def _publish_diagnostics(self, state) -> None:
        with self.lock:
            status = self.controller.status()
        loop_status, stats = self.loop.status(), self.loop.stats()
        stamp = self.get_clock().now().to_msg()
        level = {ControllerState.RUNNING: DiagnosticStatus.OK, ControllerState.IDLE: DiagnosticStatus.WARN,
                 ControllerState.HOLDING: DiagnosticStatus.WARN, ControllerState.DAMPING: DiagnosticStatus.ERROR}[status.state]
        values = {"controller_state": status.state.value, "fault": status.fault, "qp_status": status.qp_status,
                  "qp_solve_time_ms": f"{1e3 * status.qp_solve_time_s:.3f}",
                  "update_time_ms": f"{1e3 * status.update_time_s:.3f}", "qp_failures": str(status.qp_failures),
                  "qp_relaxed": str(self.controller.qp_relaxed),
                  "gain_factor_min": f"{self.controller.gain_factor_min:.3f}",
                  "loop_state": loop_status.state.name, "loop_message": loop_status.message,
                  "loop_ticks": str(stats.get("ticks", "")), "loop_deadline_misses": str(stats.get("deadline_misses", "")),
                  # lockstep: how often and how long [s, wall] the loop held the robot side for the QP update
                  "loop_sync_waits": str(stats.get("sync_waits", "")),
                  "loop_sync_wait_s": f"{stats.get('sync_wait_s', 0.0):.3f}",
                  "loop_states_received": str(stats.get("states_received", "")),
                  "loop_ticks_without_state": str(stats.get("ticks_without_state", "")),
                  # real time: wait beyond one period for a state (state-triggered) or past the deadline (clock)
                  "loop_latency_p50_us": f"{stats['wakeup_latency']['p50_us']:.1f}",
                  "loop_latency_p99_us": f"{stats['wakeup_latency']['p99_us']:.1f}",
                  "loop_latency_max_us": f"{stats['wakeup_latency']['max_us']:.1f}",
                  "loop_compute_p99_us": f"{stats['compute']['p99_us']:.1f}",
                  "last_goal_error": self._last_report,
                  "contacts": ", ".join(f"{k}={v:.2f}" for k, v in status.contacts.items())}
        diag = DiagnosticArray()
        diag.header.stamp = stamp
        diag.status.append(DiagnosticStatus(level=level, name=self.get_fully_qualified_name(), hardware_id=self.robot.config.name,
                                            message=status.fault or status.state.value,
                                            values=[KeyValue(key=k, value=v) for k, v in values.items()]))
        if self.hw is not None:
            actuators = self.hw.diagnostic_status(self.get_fully_qualified_name())
            if actuators is not None:
                diag.status.append(actuators)
        self.pub_diag.publish(diag)

    def _publish_task_status(self, state) -> None:
        with self.lock:
            status = self.controller.status()
            goal_info = dict(self._hand_goal_info)
        tasks = DiagnosticArray()
        tasks.header.stamp = self._state_stamp(state)
        for name, t in status.tasks.items():
            kv = {"weight": f"{t.weight:g}", "error_norm": f"{t.error_norm:.5f}", "goal_reached": str(t.goal_reached).lower(),
                  "moving": str(t.moving).lower(), "position_error_m": f"{t.position_error_m:.5f}",
                  "orientation_error_rad": f"{t.orientation_error_rad:.5f}"}
            hand = name.removeprefix("hand_") if name.startswith("hand_") else None
            if hand in goal_info:  # the hand goal this status refers to, and whether it was clamped
                kv["goal_stamp"] = f"{goal_info[hand][0]:.9f}"
                kv["clamped"] = str(goal_info[hand][1]).lower()
            tasks.status.append(DiagnosticStatus(
                level=DiagnosticStatus.OK if t.goal_reached else DiagnosticStatus.WARN, name=name,
                message="goal reached" if t.goal_reached else ("moving" if t.moving else "not reached"),
                values=[KeyValue(key=k, value=v) for k, v in kv.items()]))
        self.pub_tasks.publish(tasks)

    def shutdown(self) -> None:
        """Process exit: whatever the lifecycle state, the loop stops and the motors are damped and released."""
        self._release()


def main(args=None) -> None:
    # The control thread must get the interpreter within ~1 ms of its state arriving, not after the default
    # 5 ms switch interval another thread (the executor, a publisher) may hold it for.
    sys.setswitchinterval(0.001)
    node = spin_node("whole_body_controller", WholeBodyControllerNode, args)
    if node is not None and node.failure is not None:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
