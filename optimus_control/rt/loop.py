"""The 1 kHz inverse-dynamics loop, driven from Python.

The loop itself is native (a pthread that never takes the GIL and allocates nothing after start);
this module configures it, feeds it references through its lock-free channel and reads its state,
status and statistics. See rt/README.md for the control law, the safety state machine and the modes.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from optimus_control.errors import ConfigError, RealTimeError
from optimus_control.rt import _rtcore
from optimus_control.rt.dynamics import Dynamics

if TYPE_CHECKING:
    from optimus_control.model import RobotModel

_warned_realtime = False


class LoopState(enum.IntEnum):
    """The loop's state machine; DAMPING and FAULT are left only through Loop.reset()."""

    INIT = _rtcore.INIT          # no (fresh) references or no state yet: damping torques
    RUNNING = _rtcore.RUNNING    # the full control law
    DAMPING = _rtcore.DAMPING    # references went stale: tau = -Kd_damp v
    FAULT = _rtcore.FAULT        # latched fault: damping (only the limp joints for a joint-limit fault)
    STOPPED = _rtcore.STOPPED    # thread stopped; a zero command marked STOPPED was sent


class Reason(enum.IntEnum):
    """Why the loop is not RUNNING (codes shared with the C loop and the bus header)."""

    NONE = 0
    STALE_REFERENCE = 1
    NONFINITE_STATE = 2
    NONFINITE_REFERENCE = 3
    JOINT_LIMIT = 4
    TRANSPORT_SILENT = 5
    NONFINITE_TORQUE = 6
    BAD_BASE_QUATERNION = 7
    TRANSPORT_FAULT = 8          # the transport reported a fault (CAN: silent motor, bus-off, adapter gone)


@dataclass(frozen=True)
class LoopConfig:
    """How the loop runs. Arrays are per actuated joint in bus order; None means "from the model"."""

    rate_hz: float = 1000.0
    mode: str = "realtime"                     # "realtime" (own clock) or "lockstep" (transport ticks)
    stale_reference_timeout_s: float = 0.05    # references older than this -> DAMPING (age in the states' time
                                               # when lockstep or trigger="state", else on the wall clock)
    damping_kd: float | Sequence[float] = 4.0  # [N m s/rad | N s/m] of the damping mode
    silent_ticks: int = 20                     # real-time: ticks without a new state -> FAULT
    lockstep_timeout_s: float = 1.0            # lockstep: wall time without a new state -> FAULT (0: never)
    contact_frames: tuple[int | str, ...] = () # frames where f_ref applies (ids or names), in f_ref order
    contact_wrench_reference: str = "LOCAL"    # f_ref axes: "LOCAL" (contact frame) or "LOCAL_WORLD_ALIGNED"
    joint_limit_margin: float = 0.01           # [rad | m] tolerated beyond the URDF limits
    effort_limit: Sequence[float] | None = None  # [N m | N] clamp; None: the URDF effort limits
    rt_priority: int = 80                      # SCHED_FIFO priority (<= 0: do not ask)
    cpu: int | None = None                     # pin the loop thread to this CPU
    lock_memory: bool = True                   # mlockall while running
    # Lockstep with the thread: the Python update runs on every state whose tick is a multiple of this, and
    # the loop answers such a state only once the previous one was marked processed. References computed
    # from state s then apply from tick s + sync_period_ticks exactly (deterministic), and the update runs
    # while the robot side steps instead of between its steps. Real time: a state at least this many ticks
    # after the previous one is handed to wait_update_state (the loop never waits), so the update thread
    # sleeps until there is work. 0: no update states (poll read_state).
    sync_period_ticks: int = 0
    # Real time: "clock" ticks at the loop's own deadlines (hardware buses); "state" ticks when the robot
    # side publishes a state, for a robot side with its own clock (the simulator over the shm joint bus):
    # every state is answered before its next step whatever the two clocks' phases (see rt_loop.c).
    trigger: str = "clock"
    # The PD runs in the motors (CAN transport): the command carries tau_ff = ID - J^T f with each joint's
    # q_ref (inside the joint limits and within the effort limit's reach), v_ref, kp, kd. Transports
    # without motor-side PD (shm, loopback) ignore it and keep torque mode: one control law either way.
    motor_pd: bool = False

    @classmethod
    def for_robot(cls, robot_model: RobotModel, **overrides) -> LoopConfig:
        """Defaults from the robot config: the feet as contacts, its damping gain."""
        values = {"contact_frames": tuple(f.frame for f in robot_model.config.feet),
                  "damping_kd": float(robot_model.config.damping_gain)}
        values.update(overrides)
        return cls(**values)


@dataclass
class RobotState:
    """The loop's latest view of the robot (what the bus delivered) and its answer."""

    tick: int
    time_s: float
    q: np.ndarray                        # (n,) [rad | m]
    v: np.ndarray                        # (n,) [rad/s | m/s]
    tau_measured: np.ndarray             # (n,) [N m | N]
    imu_orientation_xyzw: np.ndarray     # (4,)
    imu_angular_velocity: np.ndarray     # (3,) [rad/s], IMU frame
    imu_linear_acceleration: np.ndarray  # (3,) [m/s^2] specific force, IMU frame
    foot_wrench: np.ndarray              # (n_feet, 6) [N, N m] in each sole frame
    tau_command: np.ndarray              # (n,) the torques the loop sent for this state
    loop_state: LoopState
    reference_age_s: float


@dataclass(frozen=True)
class LoopStatus:
    state: LoopState
    reason: Reason
    message: str                          # human-readable reason ("" when RUNNING and clean)
    fault_flags: frozenset[Reason] = field(default_factory=frozenset)
    reference_age_s: float = float("inf")


_REFERENCES = ("qdd", "q", "v", "kp", "kd", "contact_wrenches", "contacts_active", "base_pose", "base_twist")


class Loop:
    """The real-time loop over a transport (ShmTransport or LoopbackTransport).

    ``set_references`` may be called from any one Python thread at a time (250-500 Hz is typical);
    fields not given keep their last value. ``read_state``, ``status`` and ``stats`` read live.
    """

    def __init__(self, dynamics: Dynamics, transport, config: LoopConfig | None = None):
        config = config or LoopConfig()
        if config.mode not in ("realtime", "lockstep"):
            raise ConfigError(f"LoopConfig.mode '{config.mode}' must be 'realtime' or 'lockstep'")
        if not isinstance(dynamics, Dynamics):
            raise RealTimeError("Loop: dynamics must be an optimus_control.rt.Dynamics")
        n = dynamics.n_joints
        if transport.n_joints != n:
            raise RealTimeError(f"Loop: the transport carries {transport.n_joints} joints, the model actuates {n}")
        reference = config.contact_wrench_reference.upper()
        if reference not in ("LOCAL", "LOCAL_WORLD_ALIGNED"):
            raise ConfigError(f"LoopConfig.contact_wrench_reference '{config.contact_wrench_reference}' must be "
                              "'LOCAL' or 'LOCAL_WORLD_ALIGNED'")
        self.dynamics = dynamics
        self.transport = transport
        self.config = config
        self.n_joints = n
        self.n_feet = transport.n_feet
        self.contact_frames = tuple(dynamics.frame_id(f) if isinstance(f, str) else int(f) for f in config.contact_frames)
        for name, value in (("rate_hz", config.rate_hz), ("stale_reference_timeout_s", config.stale_reference_timeout_s)):
            if not value > 0:
                raise ConfigError(f"LoopConfig.{name} must be > 0, got {value}")
        if config.trigger not in ("clock", "state"):
            raise ConfigError(f"LoopConfig.trigger '{config.trigger}' must be 'clock' or 'state'")
        if config.sync_period_ticks < 0:
            raise ConfigError(f"LoopConfig.sync_period_ticks must be >= 0 (got {config.sync_period_ticks})")
        if config.silent_ticks < 0 or config.lockstep_timeout_s < 0:
            raise ConfigError("LoopConfig.silent_ticks and lockstep_timeout_s must be >= 0 (0 disables the watchdog)")
        try:
            damping = np.broadcast_to(np.asarray(config.damping_kd, dtype=float), (n,)).copy()
        except ValueError:
            raise ConfigError(f"LoopConfig.damping_kd must be a scalar or {n} values") from None
        if np.any(~(damping >= 0)):
            raise ConfigError("LoopConfig.damping_kd must be >= 0 (a negative gain would pump energy in)")
        effort = dynamics.effort_limits if config.effort_limit is None else np.asarray(config.effort_limit, dtype=float)
        if effort.shape != (n,) or np.any(~(effort >= 0)):
            raise ConfigError(f"LoopConfig.effort_limit must be {n} non-negative values")
        self._core = _rtcore.LoopCore(
            dynamics, transport, damping, np.ascontiguousarray(effort, dtype=float),
            np.ascontiguousarray(dynamics.lower_limits, dtype=float),
            np.ascontiguousarray(dynamics.upper_limits, dtype=float), self.contact_frames,
            rate_hz=float(config.rate_hz), lockstep=config.mode == "lockstep",
            stale_timeout_s=float(config.stale_reference_timeout_s), silent_ticks=int(config.silent_ticks),
            lockstep_timeout_s=float(config.lockstep_timeout_s), joint_limit_margin=float(config.joint_limit_margin),
            contact_reference=getattr(_rtcore, reference), rt_priority=int(config.rt_priority),
            cpu=-1 if config.cpu is None else int(config.cpu), lock_memory=bool(config.lock_memory),
            sync_period_ticks=int(config.sync_period_ticks), motor_pd=bool(config.motor_pd),
            state_triggered=config.trigger == "state")
        layout = self._core.layout()
        self._snapshot = np.zeros(layout["snapshot_words"])
        self._update_snapshot = np.zeros(layout["snapshot_words"])  # its own buffer: read_state may run elsewhere
        self._update_seq = 0
        self._state_words = _rtcore.bus_layout(n, self.n_feet)
        self._ref_words = layout

    # ---- lifetime -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the loop thread (INIT, statistics cleared). Warns once per process if real-time settings are refused."""
        global _warned_realtime
        result = self._core.start()
        refused = {k: v for k, v in result.items() if v > 0}
        if refused and not _warned_realtime:
            _warned_realtime = True
            import os
            detail = ", ".join(f"{k}: {os.strerror(v)}" for k, v in refused.items())
            warnings.warn(f"optimus_control.rt.Loop runs without full real-time settings ({detail}); timing is best "
                          "effort. Grant CAP_SYS_NICE/CAP_IPC_LOCK (or rtprio/memlock limits) for SCHED_FIFO and "
                          "mlockall.", RuntimeWarning, stacklevel=2)

    def stop(self) -> None:
        """Stop and join the thread; the robot gets a zero command marked STOPPED."""
        self._core.stop()

    def close(self) -> None:
        """Stop and free the native loop (also releases the transport for another Loop)."""
        self._core.close()

    @property
    def running(self) -> bool:
        return self._core.running

    def __enter__(self) -> Loop:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def tick_once(self, timeout_s: float = 1.0) -> bool:
        """Lockstep without the thread: wait up to timeout_s for a new state, then tick. True if a state came."""
        return self._core.tick_once(timeout_s)

    # ---- references ----------------------------------------------------------------------------------
    def set_references(self, *, qdd=None, q=None, v=None, kp=None, kd=None, contact_wrenches=None,
                       contacts_active=None, base_pose=None, base_twist=None) -> None:
        """Update references (any subset). Sizes: qdd (nv, base first), q/v/kp/kd (n), contact_wrenches
        (n_contacts, 6) [force; torque] at each contact frame origin in the configured axes, contacts_active
        (n_contacts,) bools, base_pose (7: x y z qx qy qz qw), base_twist (6: linear; angular, base frame).
        The base fields are the estimator's output; the loop stays in INIT until both groups were given once."""
        given = {}
        for key, value in (("qdd", qdd), ("q", q), ("v", v), ("kp", kp), ("kd", kd),
                           ("contact_wrenches", contact_wrenches), ("contacts_active", contacts_active),
                           ("base_pose", base_pose), ("base_twist", base_twist)):
            if value is not None:
                given[key] = np.ascontiguousarray(value, dtype=float).reshape(-1)
        self._core.set_references(**given)

    def set_base_state(self, base_pose, base_twist) -> None:
        """The estimator's floating-base pose (x y z qx qy qz qw) and twist (linear; angular, base frame)."""
        self.set_references(base_pose=base_pose, base_twist=base_twist)

    def reset(self) -> None:
        """Leave DAMPING/FAULT at the next tick (to INIT, RUNNING again once references are fresh)."""
        self._core.reset()

    # ---- lockstep synchronisation (sync_period_ticks > 0) ----------------------------------------------
    def wait_update_state(self, timeout_s: float = 0.1) -> RobotState | None:
        """The next sync state to update the references from (waits, GIL released); None on timeout.

        Every sync state is delivered once and in order: the loop does not answer the next one before
        ``mark_processed`` was called for this one (or the Python side timed out, see LoopConfig).
        """
        seq = self._core.wait_update(self._update_seq, float(timeout_s))
        if seq == self._update_seq:
            return None
        self._update_seq = seq
        return self._state_from(self._core.update_snapshot(self._update_snapshot))

    def mark_processed(self, tick: int) -> None:
        """The update for sync state ``tick`` is done (its references are set): the loop may go on."""
        self._core.mark_processed(int(tick))

    # ---- reading -------------------------------------------------------------------------------------
    def read_state(self) -> RobotState:
        """The latest state the loop received (joints, IMU, foot wrenches) and the torques it answered."""
        return self._state_from(self._core.snapshot(self._snapshot))

    def _state_from(self, s: np.ndarray) -> RobotState:
        n, nf, lay = self.n_joints, self.n_feet, self._state_words

        def words(key: str, count: int) -> np.ndarray:
            start = lay[key]  # packet word index: tick is word 0, as in the snapshot
            return s[start:start + count].copy()

        tau_start = 1 + lay["state_words"] - 1
        return RobotState(
            tick=int(s[0]), time_s=float(s[lay["word_time"]]), q=words("word_q", n), v=words("word_v", n),
            tau_measured=words("word_tau_measured", n), imu_orientation_xyzw=words("word_imu_orientation", 4),
            imu_angular_velocity=words("word_imu_angular_velocity", 3),
            imu_linear_acceleration=words("word_imu_linear_acceleration", 3),
            foot_wrench=words("word_foot_wrench", 6 * nf).reshape(nf, 6),
            tau_command=s[tau_start:tau_start + n].copy(), loop_state=LoopState(int(s[tau_start + n])),
            reference_age_s=float(s[tau_start + n + 1]))

    def status(self) -> LoopStatus:
        state, reason, index, value, flags, age = self._core.status()
        reason = Reason(reason)
        return LoopStatus(state=LoopState(state), reason=reason, message=self._message(reason, index, value),
                          fault_flags=frozenset(r for r in Reason if r and flags & (1 << r)), reference_age_s=age)

    def stats(self) -> dict:
        """Live counters: ticks, deadline_misses, skipped_periods, states_received, ticks_without_state,
        sync_waits / sync_wait_s / sync_timeouts (lockstep: answers held for the Python update), and
        wakeup_latency / compute histograms (count, p50_us, p99_us, p999_us, max_us, mean_us)."""
        return self._core.stats()

    def _message(self, reason: Reason, index: int, value: float) -> str:
        names = self.dynamics.joint_names
        if reason == Reason.NONE:
            return ""
        if reason == Reason.STALE_REFERENCE:
            return (f"references are {value:.3f} s old (timeout {self.config.stale_reference_timeout_s} s): "
                    "damping until reset()")
        if reason == Reason.NONFINITE_STATE:
            return f"state packet {self._state_word_name(index)} is {value}"
        if reason == Reason.NONFINITE_REFERENCE:
            return f"reference {self._ref_word_name(index)} is {value}"
        if reason == Reason.JOINT_LIMIT:
            j = index
            return (f"joint '{names[j]}' at {value:.4f} is outside its limits [{self.dynamics.lower_limits[j]:.4f}, "
                    f"{self.dynamics.upper_limits[j]:.4f}] (margin {self.config.joint_limit_margin}): joint damped")
        if reason == Reason.TRANSPORT_SILENT:
            return f"no state from the transport for {value:.3f} s"
        if reason == Reason.NONFINITE_TORQUE:
            return f"computed torque of joint '{names[index]}' is not finite"
        if reason == Reason.BAD_BASE_QUATERNION:
            return f"base_pose quaternion has norm {value:.3g}, not ~1"
        if reason == Reason.TRANSPORT_FAULT:
            detail = getattr(self.transport, "fault_message", None)
            where = f"joint '{names[index]}'" if 0 <= index < len(names) else "the transport"
            text = detail() if callable(detail) else ""
            return f"transport fault ({where}, bus {int(value)}){': ' + text if text else ''}: damping"
        return reason.name

    def _state_word_name(self, index: int) -> str:
        lay, n, names = self._state_words, self.n_joints, self.dynamics.joint_names
        word = index + 1
        for key, count, label in (("word_time", 1, "time"), ("word_q", n, "q"), ("word_v", n, "v"),
                                  ("word_tau_measured", n, "tau_measured"), ("word_imu_orientation", 4, "imu_orientation_xyzw"),
                                  ("word_imu_angular_velocity", 3, "imu_angular_velocity"),
                                  ("word_imu_linear_acceleration", 3, "imu_linear_acceleration"),
                                  ("word_foot_wrench", 6 * self.n_feet, "foot_wrench")):
            if lay[key] <= word < lay[key] + count:
                k = word - lay[key]
                return f"{label}[{names[k]}]" if count == n and label != "time" else f"{label}[{k}]"
        return f"word {index}"

    def _ref_word_name(self, index: int) -> str:
        lay, n = self._ref_words, self.n_joints
        spans = [("qdd", self.dynamics.nv), ("q", n), ("v", n), ("kp", n), ("kd", n),
                 ("contact_wrenches", 6 * len(self.contact_frames)), ("contacts_active", len(self.contact_frames)),
                 ("base_pose", 7), ("base_twist", 6)]
        for key, count in spans:
            if lay[key] <= index < lay[key] + count:
                k = index - lay[key]
                if count == n and key in ("q", "v", "kp", "kd"):
                    return f"{key}[{self.dynamics.joint_names[k]}]"
                return f"{key}[{k}]"
        return f"word {index}"
