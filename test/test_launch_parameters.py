"""Effective parameter values of launched nodes, read from a real rclpy node (rcl does the merging).

rcl keeps one entry per node-name key in the order keys first appear, and a later entry wins; launch_ros
emits `<set_parameter>` globals first, then the node's `<param>` tags in document order. The node's own
`<param>` (file or value) must override the globals, and launch arguments must reach the node even when
its config file is keyed `/**/<node>` (the bug: `-p` after such a file lost once a global existed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import free_ros_domain

from optimus_control.launch import LaunchContext
from optimus_control.launch.interpreter import Interpreter

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).resolve().parent / "launch_fixtures" / "param_probe_node.py"
DOMAIN_ID = str(free_ros_domain())


@pytest.fixture()
def ros_env(tmp_path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=DOMAIN_ID, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               RMW_IMPLEMENTATION="rmw_fastrtps_cpp", ROS_LOG_DIR=str(tmp_path / "ros_log"))
    return env


def resolve(path: Path, **arguments: str) -> Interpreter:
    interpreter = Interpreter(LaunchContext(arguments), resolve_executables=False)
    interpreter.run_file(path)
    return interpreter


def effective(ros_args: list[str], env: dict[str, str]) -> dict[str, object]:
    """Parameter values a real rclpy node gets from these launcher-made --ros-args."""
    run = subprocess.run([sys.executable, str(PROBE), "--ros-args", *ros_args], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    line = next(x for x in run.stdout.splitlines() if x.startswith("PARAMS "))
    return json.loads(line[len("PARAMS "):])["values"]


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "params.launch.xml"
    path.write_text("<launch>\n" + textwrap.dedent(body) + "</launch>\n")
    return path


def test_value_param_after_file_wins_over_the_file_despite_a_global(tmp_path, ros_env):
    config = tmp_path / "probe.yaml"
    config.write_text("/**/probe:\n  ros__parameters:\n    scene: from_file\n    seed: 1\n    rate_hz: 50.0\n")
    path = write(tmp_path, f"""\
        <arg name="scene" default="default_scene"/>
        <set_parameter name="use_sim_time" value="true"/>
        <node exec="probe" name="probe">
          <param from="{config}"/>
          <param name="scene" value="$(var scene)" type="str"/>
          <param name="seed" value="7"/>
        </node>
    """)
    values = effective(resolve(path, scene="from_argument").processes[0].ros_args, ros_env)
    assert values["scene"] == "from_argument" and values["seed"] == 7
    assert values["rate_hz"] == 50.0 and values["use_sim_time"] is True


def test_parameter_file_wins_over_set_parameter_global(tmp_path, ros_env):
    config = tmp_path / "probe.yaml"
    config.write_text("/**/probe:\n  ros__parameters:\n    use_sim_time: false\n    bus_name: file_bus\n")
    path = write(tmp_path, f"""\
        <set_parameter name="use_sim_time" value="true"/>
        <set_parameter name="bus_name" value="global_bus"/>
        <set_parameter name="only_global" value="3"/>
        <node exec="probe" name="probe" namespace="robot1">
          <param from="{config}"/>
        </node>
    """)
    values = effective(resolve(path).processes[0].ros_args, ros_env)
    assert values["use_sim_time"] is False and values["bus_name"] == "file_bus" and values["only_global"] == 3


def test_value_params_override_globals_in_document_order(tmp_path, ros_env):
    path = write(tmp_path, """\
        <set_parameter name="use_sim_time" value="true"/>
        <node exec="probe" name="probe">
          <param name="use_sim_time" value="false"/>
          <param name="gains"><param name="kp" value="10.5"/></param>
          <param name="label" value="1000" type="str"/>
          <param name="label" value="last" type="str"/>
        </node>
    """)
    values = effective(resolve(path).processes[0].ros_args, ros_env)
    assert values["use_sim_time"] is False and values["gains.kp"] == 10.5 and values["label"] == "last"


def test_shipped_sim_launch_passes_launch_arguments_to_the_nodes(ros_env):
    interpreter = resolve(REPO / "launch" / "sim.launch.xml", scene="stack_scene", bus_name="bus_66", seed="42")
    by_label = {p.label: p for p in interpreter.processes}
    # the node's ros_args, with its name remapped to the probe's: rcl resolves them for "/sim" etc.
    sim = effective(by_label["sim"].ros_args, ros_env)
    assert sim["scene"] == "stack_scene" and sim["bus_name"] == "bus_66" and sim["seed"] == 42
    assert sim["use_sim_time"] is True and sim["camera_enabled"] is True  # globals and config file still apply
    wbc = effective(by_label["whole_body_controller"].ros_args, ros_env)
    assert wbc["bus_name"] == "bus_66" and wbc["use_sim_time"] is True
