"""The shipped launch files and parameter files: they parse, resolve, take their arguments, agree
with each other, and install where ROS 2 tools look for them (colcon layout)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from launch_fixtures.prefixes import make_prefix

from optimus_control.errors import LaunchError
from optimus_control.launch import LaunchContext
from optimus_control.launch.cli import find_launch_file, main, show_arguments, split_target
from optimus_control.launch.interpreter import Interpreter, declared_arguments
from optimus_control.launch.packages import resolve_executable

REPO = Path(__file__).resolve().parents[1]
LAUNCH_DIR = REPO / "launch"
CONFIG_DIR = REPO / "config"
NODES = ("sim", "whole_body_controller", "perception", "task_planner")
EXPECTED_NODES = {
    "sim_node.launch.xml": ["sim"],
    "whole_body_controller_node.launch.xml": ["whole_body_controller"],
    "perception_node.launch.xml": ["perception"],
    "task_planner_node.launch.xml": ["task_planner"],
    "sim.launch.xml": ["sim", "whole_body_controller"],
    "factory_demo.launch.xml": ["sim", "whole_body_controller", "perception", "task_planner"],
}
# Parameters each node must receive from its launch arguments, with the default values.
NODE_PARAMETERS = {
    "sim": {"robot_config": "optimus.yaml", "scene": "sorting_cell", "seed": 0, "mode": "lockstep", "gui": False,
            "bus_name": "", "camera_enabled": True, "harness_catches": True},
    "whole_body_controller": {"robot_config": "optimus.yaml", "bus_name": "", "mode": "lockstep",
                              "retake_after_stale": False, "transport_silent_timeout_s": 0.02},
    "perception": {"robot_config": "optimus.yaml"},
    "task_planner": {"job": "sort_by_colour", "autostart": False, "exit_when_done": False, "report_dir": "runs"},
}
# Values a launch file fixes for a node whatever its arguments: the factory demo starts the job by itself
# and ends the launch when the job ends.
# The simulated robot's controller may take the robot again after damping on late updates (the sim's
# harness holds a damped robot), and a silent sim is a paused world.
SIM_CONTROLLER = {"retake_after_stale": True, "transport_silent_timeout_s": 0.2}
FILE_FIXED_PARAMETERS = {"factory_demo.launch.xml": {"task_planner": {"autostart": True, "exit_when_done": True},
                                                     "whole_body_controller": SIM_CONTROLLER},
                         "sim.launch.xml": {"whole_body_controller": SIM_CONTROLLER}}


@pytest.fixture()
def stub_prefix(tmp_path, monkeypatch) -> Path:
    """Stub executables for optimus_control in a colcon-layout prefix, so resolution does not depend on
    whether this environment's console scripts are installed yet."""
    prefix = make_prefix(tmp_path, "optimus_control", list(NODES), with_share=False)
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(prefix))
    monkeypatch.delenv("OPTIMUS_CONTROL_SHARE", raising=False)
    return prefix


def resolve(name: str, **arguments: str) -> Interpreter:
    interpreter = Interpreter(LaunchContext(arguments))
    interpreter.run_file(LAUNCH_DIR / name)
    return interpreter


LAUNCH_PREFIXES = {"perception": ["nice", "-n", "10"], "task_planner": ["nice", "-n", "10"]}


def parameters(cmd: list[str]) -> dict[str, object]:
    """-p name:=value pairs (values read as YAML like rcl does) and the values of the parameter files
    the launcher generated (every file after the node's config file); later ones win."""
    out: dict[str, object] = {}
    for flag, value in zip(cmd, cmd[1:]):
        if flag == "-p":
            name, _, text = value.partition(":=")
            out[name] = yaml.safe_load(text)
        elif flag == "--params-file" and Path(value).parent != CONFIG_DIR and "/config/" not in value:
            for entry in yaml.safe_load(Path(value).read_text()).values():
                out.update(entry["ros__parameters"])
    return out


# The robot itself: the controller alone, in hardware mode, on the wall clock (checked on its own below).
HARDWARE_FILE = "hardware.launch.xml"
HARDWARE_PARAMETERS = {"robot_config": "optimus.yaml", "hardware_config": "hardware/optimus.yaml", "autostart": False,
                       "motor_pd": True, "imu_topic": "imu/data_raw", "foot_wrench_input": "", "hardware_bus_dir": "",
                       "transport_silent_timeout_s": 0.02}


HIL_FILE = "hil.launch.xml"


def test_every_shipped_launch_file_is_covered():
    assert sorted(p.name for p in LAUNCH_DIR.glob("*.launch.xml")) == sorted([*EXPECTED_NODES, HARDWARE_FILE, HIL_FILE])


def test_hil_file_runs_plant_rig_and_controller_on_the_wall_clock_through_one_pty_dir(stub_prefix):
    """The sim in real time with the gantry only at start-up, the rig on its joint bus, the controller in hardware
    mode (its overlays in order) opening the rig's adapters; one pty directory for both."""
    interpreter = resolve(HIL_FILE)
    by_node = {p.node_name: p for p in interpreter.processes}
    assert sorted(by_node) == ["hil_emulator", "sim", "whole_body_controller"]
    sim, rig, wbc = (parameters(by_node[n].cmd) for n in ("sim", "hil_emulator", "whole_body_controller"))
    assert sim["mode"] == "realtime" and sim["use_sim_time"] is False and sim["harness_catches"] is False
    assert sim["camera_enabled"] is False
    assert rig["pty_dir"] == wbc["hardware_bus_dir"] and rig["pty_dir"].startswith("/tmp/optimus_hil/")
    assert wbc["use_sim_time"] is False and wbc["hardware_config"] == rig["hardware_config"]
    ros_args = by_node["whole_body_controller"].ros_args
    files = [Path(ros_args[i + 1]).relative_to(CONFIG_DIR).as_posix() for i, a in enumerate(ros_args)
             if a == "--params-file" and Path(ros_args[i + 1]).is_relative_to(CONFIG_DIR)]
    assert files == ["whole_body_controller.yaml", "modes/realtime/whole_body_controller.yaml",
                     "modes/hardware/whole_body_controller.yaml", "modes/hil/whole_body_controller.yaml"]
    caught = {p.node_name: parameters(p.cmd) for p in resolve(HIL_FILE, gantry_catches="true").processes}
    assert caught["sim"]["harness_catches"] is True


def test_hardware_file_runs_the_controller_in_hardware_mode_on_the_wall_clock(stub_prefix):
    """Defaults are the node's own (config/whole_body_controller.yaml), the hardware overlay sets the mode, and
    every argument reaches the node."""
    interpreter = resolve(HARDWARE_FILE)
    [process] = interpreter.processes
    assert process.node_name == "whole_body_controller" and process.on_exit_shutdown
    ros_args = process.ros_args
    files = [Path(ros_args[i + 1]) for i, a in enumerate(ros_args) if a == "--params-file"]
    assert files[0] == CONFIG_DIR / "whole_body_controller.yaml"
    assert files[1] == CONFIG_DIR / "modes" / "hardware" / "whole_body_controller.yaml"
    assert yaml.safe_load(files[1].read_text())["/**/whole_body_controller"]["ros__parameters"]["mode"] == "hardware"
    assert parameters(process.cmd) == {"use_sim_time": False, **HARDWARE_PARAMETERS}
    shipped = yaml.safe_load((CONFIG_DIR / "whole_body_controller.yaml").read_text())
    for key, default in HARDWARE_PARAMETERS.items():  # the launch defaults are the node's defaults
        assert shipped["/**/whole_body_controller"]["ros__parameters"][key] == default, key
    overridden = resolve(HARDWARE_FILE, hardware_config="/tmp/hw.yaml", autostart="true", motor_pd="false",
                         imu_topic="xsens/imu", foot_wrench_input="ft", namespace="r1")
    [process] = overridden.processes
    assert process.namespace == "/r1"
    assert parameters(process.cmd) == {"use_sim_time": False, **HARDWARE_PARAMETERS, "hardware_config": "/tmp/hw.yaml",
                                       "autostart": True, "motor_pd": False, "imu_topic": "xsens/imu",
                                       "foot_wrench_input": "ft"}
    with pytest.raises(LaunchError, match="'autostart' is 'yes'"):
        resolve(HARDWARE_FILE, autostart="yes")


@pytest.mark.parametrize("name", sorted(EXPECTED_NODES))
def test_shipped_file_resolves_with_defaults(name, stub_prefix):
    interpreter = resolve(name)
    assert [p.label for p in interpreter.processes] == EXPECTED_NODES[name]
    for process in interpreter.processes:
        node = process.node_name
        prefix = LAUNCH_PREFIXES.get(node, [])  # perception and planner run below the control path
        assert process.cmd[:len(prefix)] == prefix
        cmd = process.cmd[len(prefix):]
        assert cmd[0] == str(stub_prefix / "lib" / "optimus_control" / node)
        assert process.output == "screen" and process.on_exit_shutdown
        assert process.namespace == "/"
        ros_args = process.ros_args
        assert ros_args[:4] == ["-r", f"__node:={node}", "-r", "__ns:=/"]
        params_file = Path(ros_args[ros_args.index("--params-file") + 1])
        assert params_file.name == f"{node}.yaml" and params_file.is_file()
        assert ["--ros-args", "--log-level", "info"] == cmd[1:4]
        fixed = FILE_FIXED_PARAMETERS.get(name, {}).get(node, {})
        assert parameters(cmd) == {"use_sim_time": True, **NODE_PARAMETERS[node], **fixed}


@pytest.mark.parametrize("name", sorted(EXPECTED_NODES))
def test_shipped_file_takes_overrides(name, stub_prefix):
    overrides = {"scene": "/tmp/my_scene.yaml", "job": "stack_boxes", "seed": "42", "gui": "true",
                 "mode": "realtime", "robot_config": "other.yaml", "log_level": "debug", "namespace": "robot1",
                 "bus_name": "bus2", "use_sim_time": "false", "report_dir": "/tmp/reports", "camera_enabled": "false"}
    interpreter = resolve(name, **overrides)
    expected_values = {"scene": "/tmp/my_scene.yaml", "job": "stack_boxes", "seed": 42, "gui": True,
                       "mode": "realtime", "robot_config": "other.yaml", "bus_name": "bus2", "report_dir": "/tmp/reports",
                       "autostart": False, "exit_when_done": False, "camera_enabled": False,
                       "retake_after_stale": False, "transport_silent_timeout_s": 0.02, "harness_catches": True}
    for process in interpreter.processes:
        node = process.node_name
        assert process.namespace == "/robot1"
        cmd = process.cmd[len(LAUNCH_PREFIXES.get(node, [])):]
        assert ["--log-level", "debug"] == cmd[2:4]
        want = {k: expected_values[k] for k in NODE_PARAMETERS[node]}
        want.update(FILE_FIXED_PARAMETERS.get(name, {}).get(node, {}))
        assert parameters(cmd) == {"use_sim_time": False, **want}


def test_invalid_choice_is_rejected_before_anything_starts(stub_prefix):
    with pytest.raises(LaunchError, match="'mode' is 'fast'"):
        resolve("sim.launch.xml", mode="fast")
    with pytest.raises(LaunchError, match="'gui' is 'yes'"):
        resolve("factory_demo.launch.xml", gui="yes")


def test_factory_demo_ends_with_the_planner():
    interpreter = Interpreter(LaunchContext({}), resolve_executables=False)
    interpreter.run_file(LAUNCH_DIR / "factory_demo.launch.xml")
    planner = next(p for p in interpreter.processes if p.label == "task_planner")
    assert planner.on_exit_shutdown


@pytest.mark.parametrize("node", NODES)
def test_parameter_files_declare_the_node_parameters_with_the_launch_defaults(node):
    data = yaml.safe_load((CONFIG_DIR / f"{node}.yaml").read_text())
    values = data[f"/**/{node}"]["ros__parameters"]
    for key, default in NODE_PARAMETERS[node].items():
        assert values[key] == default, f"config/{node}.yaml: {key}"
    for launch_file, nodes in EXPECTED_NODES.items():
        if node not in nodes:
            continue
        defaults = {a.name: a.default for a in declared_arguments(LAUNCH_DIR / launch_file)}
        fixed = FILE_FIXED_PARAMETERS.get(launch_file, {}).get(node, {})
        for key, default in NODE_PARAMETERS[node].items():
            if key in fixed:
                continue
            value = yaml.safe_load(defaults[key]) if defaults[key] != "" else ""
            assert value == default, f"{launch_file}: argument {key}"


def test_show_args_lists_arguments_of_the_file_and_its_includes():
    text = show_arguments(LAUNCH_DIR / "factory_demo.launch.xml", {})
    for name in ("scene", "job", "seed", "gui", "mode", "robot_config", "log_level", "namespace"):
        assert f"'{name}':" in text
    assert "(default: 'sorting_cell')" in text and "Valid choices are: ['lockstep', 'realtime']" in text
    assert "Job: a name under config/jobs/" in text


def test_cli_finds_files_like_ros2_launch(stub_prefix):
    assert find_launch_file(["sim.launch.xml"]) == LAUNCH_DIR / "sim.launch.xml"
    assert find_launch_file(["optimus_control", "sim.launch.xml"]) == LAUNCH_DIR / "sim.launch.xml"
    assert find_launch_file([str(LAUNCH_DIR / "sim.launch.xml")]) == LAUNCH_DIR / "sim.launch.xml"
    with pytest.raises(LaunchError, match="did you mean 'sim.launch.xml'"):
        find_launch_file(["sim.lanch.xml"])
    words, overrides = split_target(["optimus_control", "sim.launch.xml", "gui:=true", "scene:=a:=b"])
    assert words == ["optimus_control", "sim.launch.xml"] and overrides == {"gui": "true", "scene": "a:=b"}


def test_cli_print_and_error_exit_status(stub_prefix, capsys):
    assert main(["optimus_control", "sim.launch.xml", "--print", "seed:=7"]) == 0
    out = capsys.readouterr().out
    assert "[sim]" in out and "[whole_body_controller]" in out and '"seed": 7' in out
    assert main(["sim.launch.xml", "--print", "mode:=fast"]) == 2
    assert "optimus-launch: error:" in capsys.readouterr().err


def test_own_executables_resolve_in_this_python_environment(monkeypatch):
    """pip layout: the console scripts of the installed optimus_control distribution (needs
    `make setup` / `pip install -e .` after the entry points were added to setup.py)."""
    monkeypatch.setenv("AMENT_PREFIX_PATH", "")
    for node in NODES:
        try:
            argv = resolve_executable("optimus_control", node)
        except LaunchError as exc:
            pytest.fail(f"{exc}\n(re-install the package: make setup, or .venv/bin/pip install -e .)")
        assert argv[0] in (str(Path(sys.prefix) / "bin" / node), sys.executable)


# --- colcon layout ----------------------------------------------------------------------------


COLCON = Path(sys.prefix) / "bin" / "colcon"


@pytest.mark.launcher
def test_colcon_build_installs_launch_files_and_executables_where_ros2_looks(tmp_path):
    build = subprocess.run(
        [str(COLCON), "--log-base", str(tmp_path / "log"), "build", "--paths", str(REPO),
         "--build-base", str(tmp_path / "build"), "--install-base", str(tmp_path / "install"),
         "--event-handlers", "console_direct-"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    prefix = tmp_path / "install" / "optimus_control"
    share = prefix / "share" / "optimus_control"
    for name in [*EXPECTED_NODES, HARDWARE_FILE]:
        assert (share / "launch" / name).is_file(), name
    assert (share / "config" / "modes" / "hardware" / "whole_body_controller.yaml").is_file()
    assert (prefix / "lib" / "optimus_control" / "optimus-lifecycle").is_file()
    for node in NODES:
        assert (share / "config" / f"{node}.yaml").is_file()
        exe = prefix / "lib" / "optimus_control" / node
        assert exe.is_file() and os.access(exe, os.X_OK), exe
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "optimus_control").is_file()

    # The installed launcher, in the environment `source install/setup.bash` gives, resolves everything
    # to the install space: the launch file, the parameter files and the executables.
    site = next((prefix / "lib").glob("python3*/site-packages"))
    env = {k: v for k, v in os.environ.items() if k not in ("OPTIMUS_CONTROL_SHARE", "PYTHONPATH")}
    env.update(AMENT_PREFIX_PATH=str(prefix), PYTHONPATH=str(site))
    launcher = prefix / "lib" / "optimus_control" / "optimus-launch"
    assert launcher.is_file()
    run = subprocess.run([str(launcher), "optimus_control", "factory_demo.launch.xml", "--print"], env=env,
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    for node in NODES:
        assert f"{prefix}/lib/optimus_control/{node} " in run.stdout
        assert f"--params-file {share}/config/{node}.yaml" in run.stdout
    assert f"{share}/launch/sim_node.launch.xml" in run.stdout
    assert str(REPO / "config") not in run.stdout
    shutil.rmtree(tmp_path / "build", ignore_errors=True)


def test_cli_warns_about_undeclared_arguments(stub_prefix, capsys):
    assert main(["sim.launch.xml", "--print", "secne:=x"]) == 0
    assert "argument 'secne' is not declared" in capsys.readouterr().err
