"""Node settings schemas: defaults are the shipped config files, and every way in is strict.

Also the shared YAML reader of robot configs, scenes and jobs (file:line in messages) and the single
definition of the colour classes.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from optimus_control.control.wbc_settings import WbcSettings, WholeBodyControllerNodeSettings, load_wbc_settings
from optimus_control.errors import ConfigError
from optimus_control.model import load_robot_config
from optimus_control.model.colours import BIN_CLASS, BOX_COLOUR_CLASSES, NAMED_COLOURS, rgb8
from optimus_control.model.settings_schema import build, flat_values, leaves, load_parameter_file
from optimus_control.node_settings import node_schemas
from optimus_control.perception import PerceptionParams
from optimus_control.planning import load_job
from optimus_control.planning.node_settings import TaskPlannerSettings
from optimus_control.sim.runner import SimSettings
from optimus_control.sim.scene_spec import COLOURS, load_scene

REPO = Path(__file__).resolve().parents[1]

# Defaults allowed to differ from config/<node>.yaml, as {node: {parameter: why}}. Keep it empty: a value
# that differs means tests, benchmarks and demos run a configuration no user runs.
ALLOWED_DIFFERENCES: dict[str, dict[str, str]] = {}


@pytest.mark.parametrize("node", sorted(node_schemas()))
def test_defaults_are_the_shipped_parameter_files(node):
    cls = node_schemas()[node]
    shipped = flat_values(load_parameter_file(cls, REPO / "config" / f"{node}.yaml", node))
    defaults = flat_values(cls())
    allowed = ALLOWED_DIFFERENCES.get(node, {})
    differ = {name: (defaults.get(name), shipped.get(name)) for name in set(shipped) | set(defaults)
              if defaults.get(name) != shipped.get(name) and name not in allowed}
    assert not differ, f"config/{node}.yaml and the defaults of {cls.__name__} differ (default, file): {differ}"


@pytest.mark.parametrize("overlay", sorted((REPO / "config" / "modes").glob("*/*.yaml")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_mode_overlays_are_valid_parameter_files_of_their_node(overlay):
    """config/modes/<mode>/<node>.yaml (loaded by the launch files after config/<node>.yaml) hold only real,
    well-typed parameters of that node, and every mode has a file for every node that has one."""
    node = overlay.stem
    load_parameter_file(node_schemas()[node], overlay, node)
    for mode in ("lockstep", "realtime"):
        assert (REPO / "config" / "modes" / mode / overlay.name).is_file(), f"config/modes/{mode}/{overlay.name} is missing"


def test_every_parameter_has_a_description():
    for node, cls in node_schemas().items():
        for leaf in leaves(cls):
            assert leaf.doc, f"{node}: parameter {leaf.name} has no description"


def _param_file(tmp_path: Path, node: str, body: str, key: str | None = None) -> Path:
    path = tmp_path / f"{node}.yaml"
    indented = "".join(f"    {line}\n" for line in body.strip("\n").split("\n"))
    path.write_text(f"{key or '/**/' + node}:\n  ros__parameters:\n{indented}")
    return path


@pytest.mark.parametrize("node, line, wrong, right", [
    ("whole_body_controller", "tasks:\n  hnads: {weight: 1.0}", "tasks.hnads.weight", "tasks.hands.weight"),
    ("whole_body_controller", "publish_rate: 10.0", "publish_rate", "publish_rate_hz"),
    ("perception", "track_gate: 0.1", "track_gate", "track_gate_m"),
    ("sim", "actuator:\n  encoder_noise_std: 0.1", "actuator.encoder_noise_std", "actuator.encoder_noise_std_rad"),
    ("task_planner", "grasp.lift_hieght_m: 0.2", "grasp.lift_hieght_m", "grasp.lift_height_m"),
])
def test_unknown_parameters_are_errors_with_a_suggestion_and_line(tmp_path, node, line, wrong, right):
    path = _param_file(tmp_path, node, "robot_config: optimus.yaml\n" + line)
    with pytest.raises(ConfigError) as info:
        load_parameter_file(node_schemas()[node], path, node)
    at = 3 + line.count("\n") + 1  # the line of the innermost key
    message = str(info.value)
    assert f"{path}:{at}: unknown parameter '{wrong}'" in message and f"did you mean '{right}'" in message


@pytest.mark.parametrize("node, line, key, what", [
    ("whole_body_controller", "rate_hz: fast", "rate_hz", "expected a number, got 'fast'"),
    ("whole_body_controller", "auto_start: 1", "auto_start", "expected a boolean, got 1"),
    ("sim", "seed: 1.5", "seed", "expected an integer, got 1.5"),
    ("sim", "push_force_n: [1.0, 2.0, x]", r"push_force_n\[2\]", "expected a number, got 'x'"),
    ("sim", "actuator: {imu_gyro_bias_rps: [0.0, 0.0]}", "actuator.imu_gyro_bias_rps", "expected 3 values"),
    ("perception", "colour_class_names: red", "colour_class_names", "expected a list of str"),
    ("task_planner", "tick_rate_hz: '10'", "tick_rate_hz", "expected a number, got '10'"),
])
def test_wrong_types_name_the_file_and_key(tmp_path, node, line, key, what):
    path = _param_file(tmp_path, node, line)
    with pytest.raises(ConfigError, match=re.escape(str(path)) + r":3: " + key + ": " + re.escape(what)):
        load_parameter_file(node_schemas()[node], path, node)


def test_parameter_file_sections_wildcards_and_order(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("/**:\n  ros__parameters:\n    publish_rate_hz: 20.0\n    use_sim_time: true\n"
                    "other_node:\n  ros__parameters:\n    anything: 1\n"
                    "/robot1/whole_body_controller:\n  ros__parameters:\n    rate_hz: 500.0\n"
                    "    joint_limit_margins_rad: {l_elbow: 0.3}\n")
    s = load_wbc_settings(path)
    assert (s.publish_rate_hz, s.rate_hz, s.ticks_per_update) == (20.0, 500.0, 2)
    assert s.joint_limit_margins_rad["l_elbow"] == 0.3 and s.joint_limit_margins_rad["r_elbow"] == 0.25
    with pytest.raises(ConfigError, match="no 'sim:' or '/\\*\\*:' section"):
        load_parameter_file(SimSettings, _param_file(tmp_path, "perception", "seed: 1"), "sim")
    with pytest.raises(ConfigError, match="unknown key 'ros_parameters'"):
        path.write_text("sim:\n  ros_parameters: {seed: 1}\n")
        load_parameter_file(SimSettings, path, "sim")


def test_build_converts_like_ros_and_keeps_the_base():
    s = build(WbcSettings, {"tasks.com.kp": 70, "posture_presets": {"up": {"l_elbow": -1}}}, "test")
    assert s.tasks.com.kp == 70.0 and isinstance(s.tasks.com.kp, float) and s.tasks.hands.kp == 150.0
    assert s.posture_presets == {"up": {"l_elbow": -1.0}}
    with pytest.raises(ConfigError, match="'posture_presets.up' does not name a value"):
        build(WbcSettings, {"posture_presets.up": 1.0}, "test")
    node = build(WholeBodyControllerNodeSettings, {"mode": "realtime", "use_sim_time": True}, "test")
    assert node.mode == "realtime" and node.rate_hz == WbcSettings().rate_hz
    with pytest.raises(ConfigError, match="perception parameter 'track_smoothing' must be in"):
        build(PerceptionParams, {"track_smoothing": 0.0}, "test")


def test_the_runners_run_the_shipped_configuration():
    assert WbcSettings().rate_hz == load_wbc_settings().rate_hz == 250.0
    assert SimSettings().camera_render == "process" and SimSettings().ground_truth_rate_hz == 50.0


# ---- the YAML reader shared by robot config, scene and job files ---------------------------------------
@pytest.mark.parametrize("load, name", [(load_robot_config, "robot.yaml"), (load_scene, "scene.yaml"),
                                        (load_job, "job.yaml"), (load_wbc_settings, "wbc.yaml")])
def test_yaml_syntax_errors_name_the_file_and_line(tmp_path, load, name):
    path = tmp_path / name
    path.write_text("a: 1\nb: [1, 2\nc: {\n")
    with pytest.raises(ConfigError, match=re.escape(str(path)) + r":\d+: not valid YAML: .*line \d+"):
        load(path)


def test_robot_config_and_scene_errors_carry_the_line(tmp_path):
    text = (REPO / "config" / "optimus.yaml").read_text().replace("  width: 320", "  width: 320\n  fov: 58")
    (tmp_path / "robot.yaml").write_text(text)
    line = next(i for i, t in enumerate(text.split("\n"), 1) if t.strip().startswith("fov:"))
    with pytest.raises(ConfigError, match=rf"robot\.yaml:{line}: camera: unknown key 'fov'"):
        load_robot_config(tmp_path / "robot.yaml")
    scene = (REPO / "config" / "scenes" / "sorting_cell.yaml").read_text()
    lines = scene.split("\n")
    first_mass = next(i for i, t in enumerate(lines) if "mass:" in t)
    lines[first_mass] = re.sub(r"mass: [0-9.]+", "mass: -1", lines[first_mass])
    (tmp_path / "scene.yaml").write_text("\n".join(lines))
    with pytest.raises(ConfigError, match=rf"scene\.yaml:{first_mass + 1}: boxes\[0\] '\w+'\.mass: must be > 0"):
        load_scene(tmp_path / "scene.yaml")


# ---- colour classes -------------------------------------------------------------------------------------------
def test_colour_classes_have_one_definition():
    p = PerceptionParams()
    assert p.colour_class_names == BOX_COLOUR_CLASSES and p.bin_class == BIN_CLASS
    assert {c.name: c.rgb for c in p.colour_classes} == {n: rgb8(n) for n in BOX_COLOUR_CLASSES}
    assert rgb8("green") == (26, 179, 51) and rgb8("purple") == (140, 51, 179)
    assert COLOURS is NAMED_COLOURS and set(BOX_COLOUR_CLASSES) <= set(NAMED_COLOURS)
    assert TaskPlannerSettings().object_classes == [*p.colour_class_names, p.bin_class]
    custom = PerceptionParams(colour_class_names=("red", "teal"), colour_class_rgb=(200, 0, 0, 0, 128, 128))
    assert custom.colour_classes[1].rgb == (0, 128, 128)
    with pytest.raises(ConfigError, match=r"colour classes \['teal'\] are not named colours"):
        PerceptionParams(colour_class_names=("red", "teal"))


def test_frozen_and_mutable_schemas_copy_on_build():
    base = SimSettings()
    changed = build(SimSettings, {"push_force_n": [1, 2, 3]}, "test", base)
    assert base.push_force_n == [0.0, 60.0, 0.0] and changed.push_force_n == [1.0, 2.0, 3.0]
    assert dataclasses.replace(PerceptionParams(), track_gate_m=0.2).track_gate_m == 0.2
