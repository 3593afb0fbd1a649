"""Settings of the whole-body controller and of its node, the schema of ``config/whole_body_controller.yaml``.

Defaults are the shipped configuration (a test holds them equal to the file). Robot facts (frames, joint
names, limits, joint gains) are NOT here: they come from the robot config through :class:`RobotModel`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from optimus_control.model.settings_schema import build, load_parameter_file, section, setting

NODE_NAME = "whole_body_controller"


@dataclass
class TaskGains:
    weight: float = setting(1.0, "cost/(m/s²)²", "task weight in the QP cost (per (rad/s²)² for orientations)")
    kp: float = setting(0.0, "1/s²", "stiffness of the task's reference acceleration")
    kd: float = setting(-1.0, "1/s", "damping; < 0: critical damping 2 sqrt(kp)")

    @property
    def kd_or_none(self) -> float | None:
        return None if self.kd < 0 else self.kd


@dataclass
class TaskSettings:
    com: TaskGains = section(lambda: TaskGains(1000.0, 60.0), "centre of mass")
    base_orientation: TaskGains = section(lambda: TaskGains(100.0, 100.0), "pelvis orientation")
    torso_orientation: TaskGains = section(lambda: TaskGains(30.0, 100.0), "torso orientation")
    feet: TaskGains = section(lambda: TaskGains(100.0, 100.0), "each foot's pose while not in contact")
    hands: TaskGains = section(lambda: TaskGains(500.0, 150.0), "each hand's pose")
    gaze: TaskGains = section(lambda: TaskGains(5.0, 40.0), "camera pointing")
    posture: TaskGains = section(lambda: TaskGains(0.2, 20.0), "joint posture (null space)")


@dataclass
class WbcSettings:
    """Every tunable of the whole-body controller, with units (see each field's description)."""

    rate_hz: float = setting(250.0, "Hz", "QP update rate; the 1 kHz loop holds the latest references. One "
                             "update fits in the sim's 4 steps, so lockstep runs at the sim's pace")
    qp_backend: str = setting("proxsuite", "", "QP solver (chosen by benchmarks/bench_wbc.py)")
    tasks: TaskSettings = section(TaskSettings, "task weights and gains")
    force_regularisation_weight: float = setting(1e-4, "cost/N²", "contact force regularisation")
    min_normal_force_n: float = setting(20.0, "N", "normal force per fully loaded foot")
    contact_ramp_duration_s: float = setting(0.5, "s", "force ramp when adding or removing a contact")
    max_joint_acceleration: float = setting(300.0, "rad/s²", "bound on every joint acceleration")
    torque_margin: float = setting(0.9, "", "fraction of the effort limit the QP may plan with")
    hand_max_linear_speed_mps: float = setting(0.4, "m/s", "hand reference trajectory speed limit")
    hand_max_angular_speed_radps: float = setting(1.2, "rad/s", "hand reference trajectory turn rate limit")
    hand_min_move_duration_s: float = setting(0.6, "s", "shortest hand move")
    com_max_speed_mps: float = setting(0.1, "m/s", "CoM / base height reference speed limit")
    gripper_speed_mps: float = setting(0.15, "m/s", "finger opening speed of the reference")
    hand_position_tolerance_m: float = setting(0.01, "m", "hand goal reached below this position error")
    hand_orientation_tolerance_rad: float = setting(0.0524, "rad", "hand goal reached below this orientation error")
    joint_gain_scale: float = setting(1.0, "", "factor on the robot config's joint kp/kd (then capped for 1 kHz "
                                      "stability)")
    loop_period_s: float = setting(0.001, "s", "period of the torque loop")
    integrated_reference_groups: list[str] = setting(
        ["left_arm", "right_arm", "neck", "waist"], "",
        "joint groups whose q_ref/v_ref integrate the QP accelerations (others: one-period prediction)")
    max_reference_deviation_rad: float = setting(0.05, "rad", "bound of integrated position references around "
                                                 "the measurement")
    max_velocity_deviation_radps: float = setting(0.5, "rad/s", "bound of integrated velocity references around "
                                                  "the measurement")
    hold_time_s: float = setting(0.1, "s", "keep the last feasible references this long after a QP failure or "
                                 "stale state, then damp")
    stale_state_timeout_s: float = setting(0.02, "s", "estimator state older than this is stale")
    com_support_offset_m: list[float] = setting([0.0, 0.0], "m", "CoM target = support polygon centre + this "
                                                "(x, y in the base yaw frame)")
    posture_presets: dict[str, dict[str, float]] = setting(
        {}, "rad", "preset name -> {joint: position}; 'standing' (the robot config's posture) always exists")
    joint_limit_margins_rad: dict[str, float] = setting(
        {"l_elbow": 0.25, "r_elbow": 0.25, "l_shoulder_yaw": 0.15, "r_shoulder_yaw": 0.15}, "rad",
        "joint -> margin the QP keeps inside both position limits: elbows stay bent (a straight arm is "
        "singular), shoulder yaw off its stop")

    @property
    def ticks_per_update(self) -> int:
        """Loop ticks per QP update: the node's lockstep sync period and the in-process runner's update step."""
        return max(1, int(round(1.0 / (self.rate_hz * self.loop_period_s))))

    @classmethod
    def from_mapping(cls, values: dict[str, Any], where: str = NODE_NAME) -> WbcSettings:
        """Build from a nested or dotted mapping; unknown keys and wrong types are errors."""
        return build(cls, values, where)


@dataclass
class WholeBodyControllerNodeSettings(WbcSettings):
    """The node's parameters: the controller's settings plus the adapter's own (bus, start-up, topics)."""

    robot_config: str = setting("optimus.yaml", "", "config/<name> or a path: the robot facts (URDF, joints, gains)")
    bus_name: str = setting("", "", "joint bus: the sim's bus_name, or a real actuator bus; \"\" = derived from the "
                             "ROS domain and namespace")
    mode: str = setting("lockstep", "", "lockstep: ticks driven by the sim; realtime: native thread ticked by the "
                        "sim's states on the wall clock; hardware: MIT-mode CAN motors of hardware_config, loop paced by "
                        "its own clock, a managed (lifecycle) node")
    auto_start: bool = setting(True, "", "start balancing at the first state (else call ~/start)")
    handover_steady_s: float = setting(0.5, "s", "realtime: references go to the loop (which then takes the robot "
                                       "from the harness) once the updates have kept time this long, each at most "
                                       "half the loop's stale-reference timeout after the previous one")
    cpu: int = setting(-1, "", "pin the controller process (1 kHz loop, QP and ROS threads) to this CPU (-1: no "
                       "pinning; realtime overlay: 1, the sim on 0)")
    transport_silent_timeout_s: float = setting(0.02, "s", "realtime: no state from the robot side for this long "
                                                "faults the loop (damping); a simulator's physics stands still while "
                                                "it is silent, so sim.launch.xml allows 0.2 s")
    stale_reference_timeout_s: float = setting(0.05, "s", "the 1 kHz loop damps when the references (or the base "
                                               "state) are older than this: a stalled control update")
    retake_after_stale: bool = setting(False, "", "realtime: when late updates made the loop damp (stale "
                                       "references), restart balancing from the current state and hand over again "
                                       "once the updates keep time; only where something holds a damped robot (the "
                                       "sim's support harness, a gantry): sim.launch.xml sets it")
    publish_rate_hz: float = setting(50.0, "Hz", "joint_states, imu/data, foot_wrench/*, odom (sim time); "
                                     "every message wakes each subscriber")
    diagnostics_rate_hz: float = setting(1.0, "Hz", "/diagnostics")
    task_status_rate_hz: float = setting(10.0, "Hz", "~/task_status")
    connect_timeout_s: float = setting(30.0, "s", "wait this long for the joint bus at start-up")
    odom_frame: str = setting("odom", "", "frame of odom and of goals given in the world")
    # ---- hardware mode (mode: hardware) ----
    hardware_config: str = setting("hardware/optimus.yaml", "", "hardware: the hardware description (buses, motors, "
                                   "IMU mounting) under config/ or a path; its robot must be robot_config")
    hardware_bus_dir: str = setting("", "", "hardware: \"\" = the description's bus urls; else every bus is the SLCAN "
                                    "adapter at <dir>/<bus name> (a HIL rig's emulated adapters), waited for up to "
                                    "connect_timeout_s")
    missed_cycles_limit: int = setting(0, "", "hardware: 0 = each bus's fault_after_missed_cycles from the description; "
                                       "> 0 overrides it on every bus (a HIL rig: the kernel's pty layer can hold "
                                       "a burst for tens of ms on a loaded machine, a USB adapter does not)")
    autostart: bool = setting(False, "", "hardware: configure and activate (enable the motors) at start-up; false "
                              "waits for the lifecycle transitions (sim modes always start)")
    motor_pd: bool = setting(True, "", "hardware: the joint PD runs in the motors (the command carries tau_ff with "
                             "q_ref, v_ref, kp, kd); false: torque mode (tau only)")
    gain_ramp_s: float = setting(0.2, "s", "hardware: kp and kd rise from 0 (kd from the damping gain) to the "
                                 "controller's over this time once the loop takes the robot")
    bus_rt_priority: int = setting(80, "", "hardware: SCHED_FIFO priority of the CAN bus threads (<= 0: do not ask)")
    imu_topic: str = setting("imu/data_raw", "", "hardware: sensor_msgs/Imu input from the IMU vendor's driver "
                             "(relative; distinct from this node's own imu/data output)")
    imu_timeout_s: float = setting(0.05, "s", "hardware: an IMU silent this long makes the controller damp")
    foot_wrench_input: str = setting("", "", "hardware: topic prefix of the foot force/torque sensors "
                                     "(<prefix>/<foot>, WrenchStamped in the sole frame); \"\": none, the estimator "
                                     "takes contacts from the controller's contact plan")
    foot_wrench_timeout_s: float = setting(0.05, "s", "hardware: a foot force/torque sensor silent this long makes "
                                           "the controller damp")


def load_wbc_settings(path: str | os.PathLike = "whole_body_controller.yaml") -> WholeBodyControllerNodeSettings:
    """The node's settings from a parameter file (relative paths: config/); strict like the node."""
    return load_parameter_file(WholeBodyControllerNodeSettings, path, NODE_NAME)
