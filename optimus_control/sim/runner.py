"""The simulated robot as a running process: world + scene + camera + joint bus, stepped in one thread.

Everything that touches PyBullet runs in the thread that calls ``run()`` (PyBullet clients are not
thread safe); other threads (ROS service callbacks) hand work over with ``call()``, which runs a
function between two physics steps and returns its result. Outputs (clock, camera frames, ground
truth) go to an ``outputs`` object whose methods the ROS node implements; the library itself never
imports rclpy.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from optimus_control.errors import ConfigError, SimulationError
from optimus_control.model import RobotModel
from optimus_control.model.settings_schema import section, setting
from optimus_control.sim.actuators import ActuatorParams
from optimus_control.sim.bus_server import MODES, BusServer, ControlChange, RealTimeFactor
from optimus_control.sim.camera import HeadCamera
from optimus_control.sim.render_process import RenderJob, RenderProcess
from optimus_control.sim.scene_builder import BuiltScene, build_scene, clear_scene
from optimus_control.sim.scene_spec import load_scene
from optimus_control.sim.support_harness import SupportHarness
from optimus_control.sim.world import GroundTruth, SimParams, SimWorld

CAMERA_RENDER = ("auto", "process", "thread")
LOCKSTEP_WAIT_SLICE_S = 0.02   # wait for the controller in slices, serving requests in between
REALTIME_RESYNC_S = 0.05       # further behind the wall clock than this: drop the backlog


@dataclass
class SimSettings:
    """The sim node's parameters, the schema of ``config/sim.yaml`` (defaults are the shipped values)."""

    robot_config: str = setting("optimus.yaml", "", "config/<name> or a path: the robot facts (URDF, joints, gains)")
    scene: str = setting("sorting_cell", "", "config/scenes/<name>.yaml or a path ('' or 'none': empty floor)")
    seed: int = setting(0, "", "random seed of the scene (object poses, sensor noise)")
    mode: str = setting("lockstep", "", "lockstep: physics waits for the controller; realtime: wall-clock paced")
    gui: bool = setting(False, "", "open the PyBullet GUI window (needs a display)")
    bus_name: str = setting("", "", "shared-memory joint bus shared with whole_body_controller; \"\" = derived from "
                             "the ROS domain and namespace")
    world_frame: str = setting("odom", "", "frame of the sim/ ground truth (base pose and twist, objects)")
    camera_enabled: bool = setting(True, "", "render the head RGB-D camera")
    camera_render: str = setting("process", "", "process: a render process, the physics never waits for a frame "
                                 "(in lockstep the render runs beside the physics instead of stalling it and the "
                                 "controller); thread: in the physics thread (least total CPU); auto: process in "
                                 "realtime, thread in lockstep")
    cpu: int = setting(-1, "", "pin the sim process (physics and ROS threads) to this CPU (-1: no pinning; realtime "
                       "overlay: 0, the controller on 1)")
    objects_sleep: bool = setting(False, "", "let resting objects sleep (Bullet deactivation; woken by contact): a "
                                  "cheaper step for the real-time overlay")
    camera_render_idle_scheduling: bool = setting(False, "", "run the render process at SCHED_IDLE (only on CPU "
                                                  "time the physics and the controller leave; realtime overlay)")
    camera_rate_hz: float = setting(0.0, "Hz", "camera frame rate in sim time (0: camera.rate_hz of the robot config)")
    camera_width: int = setting(0, "px", "image size (0: camera.width/height of the robot config; others rescale "
                                "fx, fy, cx, cy)")
    camera_height: int = setting(0, "px", "see camera_width")
    clock_rate_hz: float = setting(50.0, "Hz", "/clock rate in sim time (physics runs at 1 kHz); every node wakes "
                                   "for each one")
    ground_truth_rate_hz: float = setting(50.0, "Hz", "sim/base_pose, sim/base_twist, sim/joint_states; "
                                          "sim/objects at 1/10 of it")
    harness_catches: bool = setting(True, "", "realtime: the support harness catches the robot again whenever its "
                                    "controller stops controlling it (damping, fault, gone); false: only the start-up "
                                    "hold, after that the robot gets the controller's damping and may fall")
    start_paused: bool = setting(False, "", "start with physics and /clock paused")
    solver_iterations: int = setting(50, "", "PyBullet constraint-solver iterations per 1 ms step")
    friction_model: str = setting("actuator", "", "joint Coulomb friction: actuator | hybrid | motor (see sim/world.py)")
    push_force_n: list[float] = setting([0.0, 60.0, 0.0], "N", "sim/push: world-frame force ...")
    push_link: str = setting("torso", "", "... applied at this URDF link's origin ...")
    push_duration_s: float = setting(0.2, "s", "... for this long (sim time)")
    step_ticks: int = setting(1, "", "sim/step: physics steps per call (while paused)")
    actuator: ActuatorParams = section(ActuatorParams, "actuator and sensor model; all zero: ideal, deterministic")

    def physics(self) -> SimParams:
        """The world's physics settings from these parameters (the rest keep SimParams' defaults)."""
        return SimParams(solver_iterations=self.solver_iterations, friction_model=self.friction_model, gui=self.gui)

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"sim parameter mode: '{self.mode}' is not one of {list(MODES)}")
        if self.camera_render not in CAMERA_RENDER:
            raise ConfigError(f"sim parameter camera_render: '{self.camera_render}' is not one of {list(CAMERA_RENDER)}")
        for name in ("camera_rate_hz", "clock_rate_hz", "ground_truth_rate_hz"):
            if getattr(self, name) < 0:
                raise ConfigError(f"sim parameter {name}: must be >= 0, got {getattr(self, name)}")


class SimOutputs(Protocol):
    def on_clock(self, time_s: float) -> None: ...
    def on_camera(self, time_s: float, rgb: np.ndarray, depth_m: np.ndarray) -> None: ...
    def on_ground_truth(self, time_s: float, truth: GroundTruth, joint_q: np.ndarray, joint_v: np.ndarray) -> None: ...
    def on_control_change(self, change: ControlChange, harness_engaged: bool) -> None: ...


class _Every:
    """Fires every ``period`` physics steps (rate in sim time; first at step 0); never if rate is 0."""

    def __init__(self, rate_hz: float, time_step_s: float):
        self.period = max(1, int(round(1.0 / (rate_hz * time_step_s)))) if rate_hz > 0 else None

    def due(self, step: int) -> bool:
        return self.period is not None and step % self.period == 0


class SimRunner:
    def __init__(self, settings: SimSettings, bus: Any = None, outputs: SimOutputs | None = None):
        settings.validate()
        self.settings, self.bus, self.outputs = settings, bus, outputs
        self.robot = RobotModel.load(settings.robot_config)
        actuators = dataclasses.replace(settings.actuator, seed=settings.seed)
        self.world = SimWorld(self.robot, settings.physics(), actuators)
        self.scene_spec = None if settings.scene in ("", "none") else load_scene(settings.scene)
        self.scene: BuiltScene | None = None
        self.harness = SupportHarness(self.world)
        self.server = BusServer(self.world, bus, self.harness, settings.harness_catches) if bus is not None else None
        cam = self.robot.config.camera
        self.intrinsics = cam.intrinsics.scaled(settings.camera_width or None, settings.camera_height or None)
        self.camera = None
        if settings.camera_enabled:
            self.camera = HeadCamera.on_robot(self.world, self.intrinsics)
        self.camera_rate_hz = settings.camera_rate_hz or cam.rate_hz
        self.renderer: RenderProcess | None = None
        dt = self.world.params.time_step_s
        self._camera_timer = _Every(self.camera_rate_hz if settings.camera_enabled else 0.0, dt)
        self._clock_timer = _Every(settings.clock_rate_hz, dt)
        self._truth_timer = _Every(settings.ground_truth_rate_hz, dt)
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], Future]] = queue.SimpleQueue()
        self.paused = settings.start_paused
        self._pending_steps = 0
        self._steps_done = threading.Condition()
        self.stop_event = threading.Event()
        self.rtf = RealTimeFactor()
        self.camera_render_s = 0.0         # duration of the last render [s] (diagnostics)
        self.waiting_since: float | None = None  # lockstep: monotonic time since which no command came
        self.camera_error: str | None = None     # why the camera stopped, if it did
        try:
            self.reset(settings.seed)  # builds the scene here first: a bad scene fails with its ConfigError
            in_process = settings.camera_render == "process" or (
                settings.camera_render == "auto" and (settings.mode == "realtime" or bus is None))
            if settings.camera_enabled and in_process:
                self.renderer = RenderProcess(RenderJob(settings.robot_config, settings.scene, settings.seed,
                                                        self.intrinsics.width, self.intrinsics.height),
                                              idle_scheduling=settings.camera_render_idle_scheduling)
        except BaseException:
            self.world.close()
            raise

    # ---- requests from other threads ---------------------------------------------------------------
    def call(self, fn: Callable[[], Any], timeout_s: float = 10.0) -> Any:
        """Run ``fn`` in the sim thread between two steps and return its result (re-raises its error)."""
        if threading.current_thread() is getattr(self, "_thread", None):
            return fn()
        fut: Future = Future()
        self._requests.put((fn, fut))
        return fut.result(timeout=timeout_s)

    def _serve_requests(self) -> None:
        while True:
            try:
                fn, fut = self._requests.get_nowait()
            except queue.Empty:
                return
            try:
                fut.set_result(fn())
            except Exception as exc:  # handed back to the caller's thread
                fut.set_exception(exc)

    # ---- operations (sim thread) ----------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> BuiltScene | None:
        """Rebuild the scene with ``seed`` and put the robot back at its start pose (sim time keeps going)."""
        seed = self.settings.seed if seed is None else int(seed)
        self.settings.seed = seed
        self.harness.release()
        if self.scene_spec is not None:
            self.scene = build_scene(self.world, self.scene_spec, seed)
            if self.settings.objects_sleep:
                self.world.let_objects_sleep()
        else:
            clear_scene(self.world)
            self.world.reset_robot(self.robot.standing_configuration())
        self.world.actuators.params.seed = seed
        self.world.actuators.reset()
        self.world._external.clear()
        if self.renderer is not None:
            try:
                self.renderer.rebuild(seed)
            except SimulationError as exc:
                self.camera_error = str(exc)
                self.renderer.close()
                self.renderer = None
                self.camera = None
        if self.server is not None:
            self.server.invalidate()
        return self.scene

    def push(self, link: str, force_world_n, duration_s: float) -> None:
        self.world.push(link, force_world_n, duration_s)

    def set_paused(self, paused: bool) -> None:
        self.paused = bool(paused)

    def request_steps(self, n: int, timeout_s: float = 10.0) -> int:
        """While paused: run ``n`` more ticks; blocks until done (or timeout); returns the ticks still pending."""
        if n <= 0:
            raise SimulationError(f"step count must be >= 1, got {n}")
        with self._steps_done:
            self._pending_steps += n
            self._steps_done.wait_for(lambda: self._pending_steps == 0 or self.stop_event.is_set(), timeout=timeout_s)
            return self._pending_steps

    # ---- the loop -----------------------------------------------------------------------------------------
    def tick(self) -> bool:
        """One physics step in the configured mode; False if lockstep is still waiting for the controller."""
        if self.server is None:
            # No bus: the harness holds the robot (scene viewing, camera-only use).
            if not self.harness.engaged:
                self.harness.engage()
            self.world.step(self.harness.torque())
            self.rtf.add(self.world.time_s)
        elif self.settings.mode == "lockstep":
            if not self.server.lockstep_tick(LOCKSTEP_WAIT_SLICE_S):
                if self.waiting_since is None:
                    self.waiting_since = time.monotonic()
                return False
            self.waiting_since = None
            self.rtf.add(self.world.time_s)
        else:
            self.server.realtime_tick()
            self.rtf.add(self.world.time_s)
        self._emit()
        return True

    def _emit(self) -> None:
        t, k, out = self.world.time_s, self.world.step_count, self.outputs
        if self.renderer is not None:
            try:
                self._camera_async(k, t)
            except SimulationError as exc:
                # The physics must not stop because the camera did: go on without images, say why.
                self.camera_error = str(exc)
                self.renderer.close()
                self.renderer = None
                self.camera = None
        elif self._camera_timer.due(k) and self.camera is not None:
            t0 = time.perf_counter()
            rgb, depth = self.camera.render()
            self.camera_render_s = time.perf_counter() - t0
            if out is not None:
                out.on_camera(t, rgb, depth)
        if out is None:
            return
        if self.server is not None:
            while self.server.control_changes:
                out.on_control_change(self.server.control_changes.popleft(), self.harness.engaged)
        if self._clock_timer.due(k):
            out.on_clock(t)
        if self._truth_timer.due(k):
            q, v = self.world._joint_state()
            out.on_ground_truth(t, self.world.ground_truth(), q, v)

    def _camera_async(self, step: int, time_s: float) -> None:
        """Hand due frames to the render process; publish finished ones. Lockstep waits for the previous
        frame before starting the next (every frame is delivered); real time drops a frame instead."""
        r = self.renderer
        done = r.poll()
        if done is not None and self.outputs is not None:
            self.outputs.on_camera(*done)
        if not self._camera_timer.due(step):
            return
        if r.busy:
            if self.settings.mode == "lockstep" and self.server is not None:
                done = r.poll(timeout_s=5.0)
                if done is not None and self.outputs is not None:
                    self.outputs.on_camera(*done)
            if r.busy:
                r.frames_dropped += 1
                return
        w = self.world
        truth = w.ground_truth()
        q_full = np.concatenate([truth.base_position, truth.base_orientation_xyzw, w._joint_state()[0]])
        objects = {oid: (pos.tolist(), quat.tolist()) for oid, (pos, quat) in truth.objects.items()}
        r.submit(time_s, q_full, objects)

    def run(self) -> None:
        """Step until ``stop_event`` is set: lockstep as fast as the controller answers, realtime paced."""
        self._thread = threading.current_thread()
        realtime = self.settings.mode == "realtime" or self.server is None
        dt = self.world.params.time_step_s
        deadline = time.perf_counter()
        if self.outputs is not None:
            self.outputs.on_clock(self.world.time_s)
        while not self.stop_event.is_set():
            self._serve_requests()
            if self.paused and self._pending_steps == 0:
                time.sleep(0.005)
                deadline = time.perf_counter()
                continue
            if realtime:
                now = time.perf_counter()
                if deadline - now > 0:
                    time.sleep(deadline - now)
                elif now - deadline > REALTIME_RESYNC_S:
                    deadline = now  # too far behind (e.g. a slow render): drop the backlog, RTF shows it
                deadline += dt
            if self.tick() and self._pending_steps > 0:
                with self._steps_done:
                    self._pending_steps -= 1
                    if self._pending_steps == 0:
                        self._steps_done.notify_all()
        with self._steps_done:
            self._steps_done.notify_all()

    def close(self) -> None:
        self.stop_event.set()
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None
        self.world.close()
