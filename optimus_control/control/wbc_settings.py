"""Controller settings (weights, gains, rates, limits) from ``config/whole_body_controller.yaml``.

The file is a ROS 2 parameter file (``whole_body_controller: ros__parameters:``); the node passes its
parameters as a nested mapping, tests and benchmarks load the file directly. Robot facts (frames,
joint names, limits) are NOT here: they come from the robot config through :class:`RobotModel`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from optimus_control.errors import ConfigError, suggest
from optimus_control.model.parameter_file import node_parameters

NODE_NAME = "whole_body_controller"
# The ROS adapter's own parameters (bus, start-up, topic rates) with their defaults: they share the node's
# parameter file with the controller's settings, so the settings loader must skip them.
NODE_ADAPTER_DEFAULTS = {"robot_config": "optimus.yaml", "bus_name": "optimus_bus", "mode": "lockstep",
                         "auto_start": True, "publish_rate_hz": 50.0, "diagnostics_rate_hz": 1.0,
                         "task_status_rate_hz": 10.0, "connect_timeout_s": 30.0, "odom_frame": "odom"}
ROS_ONLY_KEYS = {"use_sim_time", "qos_overrides", "start_type_description_service"} | set(NODE_ADAPTER_DEFAULTS)


@dataclass
class TaskGains:
    weight: float
    kp: float
    kd: float = -1.0  # < 0: critical damping 2 sqrt(kp)

    @property
    def kd_or_none(self) -> float | None:
        return None if self.kd < 0 else self.kd


@dataclass
class TaskSettings:
    com: TaskGains = field(default_factory=lambda: TaskGains(1000.0, 60.0))
    base_orientation: TaskGains = field(default_factory=lambda: TaskGains(100.0, 100.0))
    torso_orientation: TaskGains = field(default_factory=lambda: TaskGains(30.0, 100.0))
    feet: TaskGains = field(default_factory=lambda: TaskGains(100.0, 100.0))
    hands: TaskGains = field(default_factory=lambda: TaskGains(500.0, 150.0))
    gaze: TaskGains = field(default_factory=lambda: TaskGains(5.0, 40.0))
    posture: TaskGains = field(default_factory=lambda: TaskGains(0.2, 20.0))


@dataclass
class WbcSettings:
    """Every tunable of the whole-body controller, with units.

    Attributes:
        rate_hz: QP update rate (the loop runs at 1 kHz and holds the latest references).
        qp_backend: solver (see QpSolver); chosen by benchmarks/bench_wbc.py.
        force_regularisation_weight: [cost / N^2].
        min_normal_force_n: per foot while fully loaded [N].
        contact_ramp_duration_s: default force-ramp time when adding/removing a contact [s].
        hand_max_linear_speed_mps / hand_max_angular_speed_radps / hand_min_move_duration_s: target
            trajectory limits.
        com_max_speed_mps: CoM/base-height target trajectory speed limit.
        gripper_speed_mps: finger opening speed of the reference [m/s].
        hand_position_tolerance_m / hand_orientation_tolerance_rad: "goal reached" thresholds.
        joint_gain_scale: factor on the robot config's joint kp/kd sent to the loop.
        loop_period_s: period of the torque loop (1 kHz); joint gains are capped for its stability.
        integrated_reference_groups: joint groups whose q_ref/v_ref are integrated from the QP
            accelerations (others: one-period prediction from the measurement).
        max_reference_deviation_rad / max_velocity_deviation_radps: bounds of the integrated
            references around the measurement.
        hold_time_s: how long the last feasible references are held after a QP failure or stale
            input before the loop is switched to damping [s].
        stale_state_timeout_s: state older than this (in controller time) counts as stale [s].
        com_support_offset_m: CoM target = support-polygon centre + this (x, y in the base yaw frame).
        posture_presets: name -> {joint: position}; ``standing`` always exists (robot config posture).
        joint_limit_margins_rad: joint -> margin [rad] the QP keeps inside both of its position limits. An
            elbow at its straight limit aligns the shoulder and wrist yaw axes (a singular arm that the
            acceleration-level QP does not leave once a hand goal asks for a turn there).
    """

    rate_hz: float = 250.0
    qp_backend: str = "proxsuite"
    tasks: TaskSettings = field(default_factory=TaskSettings)
    force_regularisation_weight: float = 1e-4
    min_normal_force_n: float = 20.0
    contact_ramp_duration_s: float = 0.5
    max_joint_acceleration: float = 300.0
    torque_margin: float = 0.9
    hand_max_linear_speed_mps: float = 0.4
    hand_max_angular_speed_radps: float = 1.2
    hand_min_move_duration_s: float = 0.6
    com_max_speed_mps: float = 0.1
    gripper_speed_mps: float = 0.15
    hand_position_tolerance_m: float = 0.01
    hand_orientation_tolerance_rad: float = 0.0524
    joint_gain_scale: float = 1.0
    loop_period_s: float = 0.001
    integrated_reference_groups: list = field(default_factory=lambda: ["left_arm", "right_arm", "neck", "waist"])
    max_reference_deviation_rad: float = 0.05
    max_velocity_deviation_radps: float = 0.5
    hold_time_s: float = 0.1
    stale_state_timeout_s: float = 0.02
    com_support_offset_m: list = field(default_factory=lambda: [0.0, 0.0])
    posture_presets: dict = field(default_factory=dict)
    joint_limit_margins_rad: dict = field(default_factory=lambda: {"l_elbow": 0.25, "r_elbow": 0.25,
                                                                   "l_shoulder_yaw": 0.15, "r_shoulder_yaw": 0.15})

    @property
    def ticks_per_update(self) -> int:
        """Loop ticks per QP update: the node's lockstep sync period and the in-process runner's update step."""
        return max(1, int(round(1.0 / (self.rate_hz * self.loop_period_s))))

    @classmethod
    def from_mapping(cls, values: dict[str, Any], where: str = "whole_body_controller") -> WbcSettings:
        """Build from a nested mapping; unknown keys are errors (with a suggestion)."""
        return _fill(cls(), values, where)


def _fill(obj, values: dict[str, Any], where: str):
    """Override the defaults in ``obj`` (a dataclass instance) with ``values``, checking names and types."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {values!r}")
    kind = type(obj)
    known = {f.name: f for f in fields(kind)}
    for key, value in values.items():
        if key in ROS_ONLY_KEYS and kind is WbcSettings:
            continue
        if key not in known:
            raise ConfigError(f"{where}: unknown key '{key}'{suggest(key, known)}; valid keys: {sorted(known)}")
        current = getattr(obj, key)
        if is_dataclass(current):
            setattr(obj, key, _fill(current, value, f"{where}.{key}"))
        elif isinstance(current, (int, float)) and not isinstance(current, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where}.{key}: expected a number, got {value!r}")
            setattr(obj, key, float(value))
        elif isinstance(current, str):
            if not isinstance(value, str):
                raise ConfigError(f"{where}.{key}: expected a string, got {value!r}")
            setattr(obj, key, value)
        else:
            setattr(obj, key, value)
    return obj


def load_wbc_settings(path: str | os.PathLike = "whole_body_controller.yaml") -> WbcSettings:
    """Read ``whole_body_controller: ros__parameters:`` from a parameter file (relative paths: config/)."""
    params, where = node_parameters(path, NODE_NAME)
    return WbcSettings.from_mapping(params, where)
