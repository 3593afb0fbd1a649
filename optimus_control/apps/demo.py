"""`make demo`: the factory demo (sorting cell) end to end, with progress and a run report.

Checks the robot, scene and job files first (exit status 2 with the loader's message when one is
wrong), then runs ``launch/factory_demo.launch.xml`` through optimus-launch (headless, lockstep: sim,
whole-body controller, perception, task planner), watches it from a small rclpy node of its own in the
stack's namespace (``task/status``, ``/clock``, controller status, and ``sim/`` ground truth for scoring
only), reacting only to that namespace's nodes on the global ``/diagnostics``, prints progress, and
writes ``runs/<UTC timestamp>/`` (summary.json, report.md, plots, camera snapshots, launch.log). When a
launched process dies, the launch is stopped and that process's own error message is printed. Exit
status 0 only when the planner reports the job succeeded, the ground truth agrees (every box of the job
in its bin) and the robot never fell (:mod:`optimus_control.apps.evaluation`).

    python -m optimus_control.apps.demo [--job sort_by_colour] [--scene sorting_cell] [--seed 0] [--namespace r1]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from optimus_control.apps.evaluation import FallCriteria, base_tilt_rad
from optimus_control.apps.preflight import load_run_inputs
from optimus_control.apps.run_report import DemoRecording, write_run_report
from optimus_control.apps.user_errors import EXIT_FAILED, reported_as
from optimus_control.launch.process_errors import LaunchLogWatch, launch_failure_messages
from optimus_control.model import RobotModel, share_dir
from optimus_control.nodes.names import resolve_name
from optimus_control.nodes.ros_time import stamp_to_s
from optimus_control.nodes.scheduling import use_idle_scheduling

JOB_ENTRY = "task_planner: job"
SAMPLE_PERIOD_S = 0.1  # sim-time period of the CoM/CoP and hand-error samples
DEFAULT_DOMAIN_ID = 42
OBSERVER_NICE = 10  # the monitor's priority below the nodes (see DemoMonitor._spin)


class DemoMonitor:
    """Subscribes to what the demo shows and scores; all callbacks only record.

    The node lives in the stack's ``namespace`` and uses relative names, so it watches that robot only;
    on the global /diagnostics it keeps the statuses of that namespace's controller.
    """

    def __init__(self, domain_id: int, robot: RobotModel, job, namespace: str = "", clock_topic: str = "/clock"):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.robot, self.job = robot, job
        self.namespace = "/" + namespace.strip("/")
        self.clock_topic = clock_topic
        self.controller_name = resolve_name("whole_body_controller", self.namespace)
        self.rec = DemoRecording()
        self.job_values: dict[str, str] = {}
        self.sim_time_s = 0.0
        self.lock = threading.Lock()
        self._last_clock: tuple[float, float] | None = None
        self._last_sample_s = -1.0
        self._joint_q: np.ndarray | None = None
        self._odom: tuple[np.ndarray, np.ndarray] | None = None
        self._wrench: dict[str, np.ndarray] = {}
        self._image: np.ndarray | None = None
        self._shot_labels: set[str] = set()
        self._data = robot.model.createData()
        self.context = rclpy.Context()
        # No process-wide ROS logging for this observer: finalising it at close() can block forever
        # (rclpy_logging_fini waiting on the logging lock) once the launch has ended.
        self.context.init(domain_id=domain_id, initialize_logging=False)
        self.node = rclpy.create_node("factory_demo_monitor", namespace=self.namespace, context=self.context)
        self._subscribe()
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _subscribe(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseStamped, WrenchStamped
        from nav_msgs.msg import Odometry
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import Image, JointState
        from visualization_msgs.msg import MarkerArray

        best_effort = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
        n = self.node
        n.create_subscription(Clock, self.clock_topic, self._on_clock, best_effort)
        n.create_subscription(DiagnosticArray, "task/status", self._on_task_status, best_effort)
        n.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, best_effort)
        n.create_subscription(DiagnosticArray, "whole_body_controller/task_status", self._on_wbc_tasks, best_effort)
        n.create_subscription(JointState, "joint_states", self._on_joints, qos_profile_sensor_data)
        n.create_subscription(Odometry, "odom", self._on_odom, qos_profile_sensor_data)
        for foot in self.robot.config.feet:
            n.create_subscription(WrenchStamped, f"foot_wrench/{foot.name}",
                                  lambda m, f=foot.name: self._on_wrench(f, m), qos_profile_sensor_data)
        n.create_subscription(Image, "camera/color/image_raw", self._on_image, qos_profile_sensor_data)
        n.create_subscription(MarkerArray, "sim/objects", self._on_truth_objects, best_effort)
        n.create_subscription(PoseStamped, "sim/base_pose", self._on_truth_base, best_effort)

    def _spin(self) -> None:
        # This observer must not take CPU from the lockstep chain it watches (sim + controller): on Linux
        # a nice value applies to the calling thread only, so the launched nodes keep theirs.
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), OBSERVER_NICE)
        except (AttributeError, OSError):
            pass
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.2)
            except Exception:  # noqa: BLE001 - shutting down
                break

    # ---- callbacks --------------------------------------------------------------------------------
    def _on_clock(self, msg) -> None:
        t = stamp_to_s(msg.clock)
        wall = time.monotonic()
        with self.lock:
            if self._last_clock is not None and t > self._last_clock[0]:
                self.rec.clock_wall_ms_per_sim_ms.append((wall - self._last_clock[1]) / (t - self._last_clock[0]))
            self._last_clock = (t, wall)
            self.sim_time_s = t

    def _on_task_status(self, msg) -> None:
        for s in msg.status:
            if s.name == JOB_ENTRY:
                values = {kv.key: kv.value for kv in s.values}
                with self.lock:
                    changed = values.get("boxes_sorted") != self.job_values.get("boxes_sorted")
                    self.job_values = values
                if changed:
                    self.snapshot(f"sorted_{values.get('boxes_sorted', 0)}")

    def _on_diagnostics(self, msg) -> None:
        for s in msg.status:
            if s.name == f"{self.controller_name}: actuators":  # hardware / HIL: the CAN buses' counters
                with self.lock:
                    self.rec.actuators = {kv.key: kv.value for kv in s.values}
            if s.name == self.controller_name:  # its one status; another robot's never counts
                values = {kv.key: kv.value for kv in s.values}
                with self.lock:
                    self.rec.controller = values
                    try:
                        self.rec.update_time_ms.append(float(values["update_time_ms"]))
                    except (KeyError, ValueError):
                        pass

    def _on_wbc_tasks(self, msg) -> None:
        t = stamp_to_s(msg.header.stamp)
        with self.lock:
            for s in msg.status:
                if s.name.startswith("hand_"):
                    values = {kv.key: kv.value for kv in s.values}
                    try:
                        err = float(values["position_error_m"])
                    except (KeyError, ValueError):
                        continue
                    self.rec.hand_error.setdefault(s.name.removeprefix("hand_"), []).append((t, err))

    def _on_joints(self, msg) -> None:
        limits = self.robot.limits.effort
        tau = np.abs(np.asarray(msg.effort, dtype=float))
        with self.lock:
            self._joint_q = np.asarray(msg.position, dtype=float)
            if tau.shape == limits.shape:
                for k, name in enumerate(msg.name):
                    if tau[k] / limits[k] > self.rec.max_torque_ratio.get(name, 0.0):
                        self.rec.max_torque_ratio[name] = float(tau[k] / limits[k])
                        self.rec.max_torque_nm[name] = float(tau[k])
        self._sample(stamp_to_s(msg.header.stamp))

    def _on_odom(self, msg) -> None:
        p, o = msg.pose.pose.position, msg.pose.pose.orientation
        with self.lock:
            self._odom = (np.array([p.x, p.y, p.z]), np.array([o.x, o.y, o.z, o.w]))

    def _on_wrench(self, foot: str, msg) -> None:
        f, m = msg.wrench.force, msg.wrench.torque
        with self.lock:
            self._wrench[foot] = np.array([f.x, f.y, f.z, m.x, m.y, m.z])

    def _on_image(self, msg) -> None:
        if msg.encoding != "rgb8":
            return
        img = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.width, 3)
        with self.lock:
            first = self._image is None
            self._image = img.copy()
        if first:
            self.snapshot("start")

    def _on_truth_objects(self, msg) -> None:
        with self.lock:
            for m in msg.markers:
                self.rec.objects_truth[f"{m.ns}_{m.id}"] = (m.text, [m.pose.position.x, m.pose.position.y,
                                                                    m.pose.position.z])

    def _on_truth_base(self, msg) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        t = stamp_to_s(msg.header.stamp)
        tilt = base_tilt_rad((o.x, o.y, o.z, o.w))
        with self.lock:
            if not self.rec.base_truth or t - self.rec.base_truth[-1][0] >= SAMPLE_PERIOD_S:
                self.rec.base_truth.append((t, p.z, tilt))

    # ---- derived samples ----------------------------------------------------------------------------
    def _sample(self, t: float) -> None:
        """CoM ground projection and the feet's CoP in odom, every SAMPLE_PERIOD_S of sim time."""
        import pinocchio as pin

        with self.lock:
            if t - self._last_sample_s < SAMPLE_PERIOD_S or self._odom is None or self._joint_q is None:
                return
            self._last_sample_s = t
            pos, quat = self._odom
            q = np.concatenate([pos, quat, self._joint_q])
            wrenches = dict(self._wrench)
        model, data = self.robot.model, self._data
        if q.shape[0] != model.nq:
            return
        com = pin.centerOfMass(model, data, q)
        pin.framesForwardKinematics(model, data, q)
        total_f, cop_sum, polygons = 0.0, np.zeros(2), []
        sole = self.robot.config.sole
        for foot in self.robot.config.feet:
            placement = data.oMf[self.robot.frame_id(foot.frame)]
            corners = [placement.act(np.array([x, y, 0.0]))[:2] for x, y in
                       ((sole.x_min, sole.y_min), (sole.x_max, sole.y_min), (sole.x_max, sole.y_max), (sole.x_min, sole.y_max))]
            polygons.append(np.array(corners))
            w = wrenches.get(foot.name)
            if w is not None and w[2] > 1.0:
                local = np.array([-w[4] / w[2], w[3] / w[2], 0.0])  # CoP in the sole frame
                cop_sum += w[2] * placement.act(local)[:2]
                total_f += w[2]
        if total_f <= 1.0:
            return
        cop = cop_sum / total_f
        with self.lock:
            if not self.rec.support:
                self.rec.support = polygons
            self.rec.com_cop.append((t, com[0], com[1], cop[0], cop[1]))

    def snapshot(self, label: str) -> None:
        with self.lock:
            if self._image is None or label in self._shot_labels:
                return
            self._shot_labels.add(label)
            self.rec.snapshots.append((label, self._image.copy()))

    def progress(self) -> tuple[dict[str, str], float]:
        with self.lock:
            return dict(self.job_values), self.sim_time_s

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=2.0)


def run_demo(job: str, scene: str, seed: int, runs_dir: Path, timeout_s: float, domain_id: int,
             quiet: bool = False, namespace: str = "", robot_config: str = "optimus.yaml",
             mode: str = "lockstep") -> tuple[int, Path, dict]:
    """Run one episode (the stack under ``namespace``, empty = the root) in ``mode`` (lockstep, realtime or hil);
    returns (exit status, run folder, summary).

    Raises ConfigError (before anything starts) when the robot, scene or job file is wrong.
    """
    inputs = load_run_inputs(robot_config, scene, job, seeds=[seed])
    robot, job_spec = inputs.robot, inputs.job
    folder = _new_run_folder(Path(runs_dir))
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
           "RMW_IMPLEMENTATION": os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp"),
           "ROS_LOG_DIR": str(folder / "ros_log")}
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "RMW_IMPLEMENTATION")})
    common = [f"robot_config:={robot_config}", f"job:={job}", f"scene:={scene}", f"seed:={seed}",
              f"report_dir:={folder / 'planner'}", f"namespace:={namespace}"]
    if mode == "hil":  # the controller in hardware mode on the rig's emulated motors, all on the wall clock
        cmd = [sys.executable, "-m", "optimus_control.launch.cli", str(share_dir() / "launch" / "hil.launch.xml"),
               *common, "with_job:=true", "camera_enabled:=true"]
    else:
        cmd = [sys.executable, "-m", "optimus_control.launch.cli", str(share_dir() / "launch" / "factory_demo.launch.xml"),
               *common, f"bus_name:=optimus_demo_{os.getpid()}", f"mode:={mode}"]
    print(f"factory demo: job '{job_spec.name}', scene '{inputs.scene.name}', seed {seed}, {mode}; ROS_DOMAIN_ID={domain_id}; "
          f"run folder {folder}")
    # HIL runs on the wall clock; the sim's own clock (sim time, for wall/sim) is remapped to sim/clock there
    clock_topic = "sim/clock" if mode == "hil" else "/clock"  # relative: the monitor lives in the stack's namespace
    monitor = DemoMonitor(domain_id, robot, job_spec, namespace, clock_topic=clock_topic)
    wall0 = time.monotonic()
    log_path = folder / "launch.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    if mode in ("realtime", "hil"):  # this observer must not take CPU time from the stack it observes
        use_idle_scheduling()
    sim_start = None
    watch = LaunchLogWatch(log_path)
    try:
        while proc.poll() is None:
            time.sleep(1.0)
            values, sim_t = monitor.progress()
            wall = time.monotonic() - wall0
            if values.get("state") == "running" and sim_start is None:
                sim_start = sim_t
            if watch.someone_died():
                print("\na launched process died: stopping the launch", flush=True)
                proc.send_signal(signal.SIGINT)
                break
            if wall > timeout_s:
                print(f"\nwall-time limit of {timeout_s:.0f} s reached: stopping the launch")
                proc.send_signal(signal.SIGINT)
                break
            if not quiet:
                ratio = f"{wall / sim_t:4.1f}x" if sim_t > 0 else "  -  "
                line = (f"\rboxes {values.get('boxes_sorted', '0')}/{values.get('boxes_total', '?')} sorted "
                        f"| {values.get('state', 'starting'):9s} {values.get('step', ''):18s} "
                        f"| sim {sim_t:7.1f} s | wall {wall:7.1f} s | wall/sim {ratio}")
                print(line, end="", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the launch")
        proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=60.0)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait()
    log.close()
    wall_total = time.monotonic() - wall0
    monitor.snapshot("end")
    time.sleep(0.2)
    values, sim_t = monitor.progress()
    closer = threading.Thread(target=monitor.close, daemon=True)  # never let tearing down the observer hang a run
    closer.start()
    closer.join(timeout=10.0)
    failure = launch_failure_messages(log_path, code)
    planner = _planner_summary(folder / "planner")
    elapsed = (planner or {}).get("times", {}).get("elapsed_s") or sim_t - (sim_start or 0.0)
    run = {"job": job, "scene": scene, "seed": seed, "mode": mode, "robot_config": robot_config, "launch_exit_code": code,
           "sim_time_s": sim_t, "job_sim_time_s": elapsed, "wall_time_s": wall_total, "domain_id": domain_id,
           "process_failures": failure}
    if mode == "hil":  # hil.launch.xml's default: the sim's harness as a bring-up gantry, let go at the hand-over
        run["gantry"] = ("the sim's support harness held the robot until the controller took it and was then let go "
                         "(gantry_catches false: it catches nothing after that; a fall would count)")
    summary = write_run_report(folder, job_spec, planner, monitor.rec, run, FallCriteria.for_robot(robot),
                               failure=" / ".join(failure))
    m = summary["metrics"]
    if failure:
        print(f"\nFAILED; the launched processes' whole output is in {log_path}", flush=True)
        for line in failure:
            print(f"factory demo: error: {line}", file=sys.stderr, flush=True)
        return EXIT_FAILED, folder, summary
    print(f"\n{summary['result']['state']}: {summary['result']['reason']}")
    print(f"ground truth: {m['boxes_in_right_bin_truth']}/{m['boxes_total_truth']} boxes in the right bin, "
          f"{m['falls']} falls; sim {sim_t:.1f} s, wall {wall_total:.1f} s; report {folder / 'report.md'}")
    ok = code == 0 and summary["demo_succeeded"]
    return (0 if ok else EXIT_FAILED), folder, summary


def _new_run_folder(runs_dir: Path) -> Path:
    """runs/<UTC timestamp>[_n]/, created."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder, n = runs_dir / stamp, 1
    while folder.exists():
        n += 1
        folder = runs_dir / f"{stamp}_{n}"
    folder.mkdir(parents=True)
    return folder


def _planner_summary(folder: Path) -> dict | None:
    files = sorted(folder.glob("*/summary.json"))
    return json.loads(files[-1].read_text()) if files else None


def main(argv: list[str] | None = None) -> None:
    prog = "python -m optimus_control.apps.demo"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--job", default="sort_by_colour", help="job name under config/jobs/ or a path")
    parser.add_argument("--scene", default="sorting_cell", help="scene name under config/scenes/ or a path")
    parser.add_argument("--robot-config", default="optimus.yaml", help="robot config under config/ or a path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs-dir", default="runs", type=Path)
    parser.add_argument("--timeout", type=float, default=3600.0, help="wall-time limit [s]")
    parser.add_argument("--domain-id", type=int, default=int(os.environ.get("ROS_DOMAIN_ID", DEFAULT_DOMAIN_ID)))
    parser.add_argument("--namespace", default="", help="ROS namespace of the stack (empty: the root namespace)")
    parser.add_argument("--mode", default="lockstep", choices=("lockstep", "realtime", "hil"),
                        help="lockstep: the sim waits for the controller (deterministic); realtime: the sim runs on "
                             "the wall clock, the controller keeps up (config/realtime/ overlays apply); hil: the "
                             "controller in hardware mode drives the rig's emulated CAN motors (launch/hil.launch.xml)")
    a = parser.parse_args(argv)
    with reported_as(prog):
        code, _, _ = run_demo(a.job, a.scene, a.seed, a.runs_dir, a.timeout, a.domain_id, namespace=a.namespace,
                              robot_config=a.robot_config, mode=a.mode)
    sys.exit(code)


if __name__ == "__main__":
    main()
