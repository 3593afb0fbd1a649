"""optimus-launch supervising real processes: output prefixes, on_exit="shutdown", signals, escalation
to SIGTERM/SIGKILL, exit status, and no process left behind (checked by pid).

The launched processes are test/launch_fixtures/fixture_process.py behind colcon-layout stubs; the
launcher runs as its own process so that signals reach it as they would from a terminal.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import free_ros_domain
from launch_fixtures.launcher import Launcher, assert_gone
from launch_fixtures.prefixes import make_prefix, with_prefix

pytestmark = pytest.mark.launcher

DOMAIN_ID = free_ros_domain()


@pytest.fixture()
def env(tmp_path) -> dict[str, str]:
    prefix = make_prefix(tmp_path, "fixture_pkg", ["worker"])
    out = with_prefix(os.environ, prefix)
    out.update(ROS_LOG_DIR=str(tmp_path / "ros_log"), ROS_DOMAIN_ID=str(DOMAIN_ID), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    return out


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "test.launch.xml"
    path.write_text("<launch>\n" + textwrap.dedent(body) + "</launch>\n")
    return path


def test_crash_of_on_exit_shutdown_process_stops_the_others_and_fails(tmp_path, env):
    ready = tmp_path / "steady_ready"
    path = write(tmp_path, f"""\
        <node pkg="fixture_pkg" exec="worker" name="steady" output="screen"
              args="--touch-when-ready {ready} --spawn-helper"/>
        <node pkg="fixture_pkg" exec="worker" name="crasher" output="screen" on_exit="shutdown"
              args="--wait-for-file {ready} --exit-after 0.1 --code 3"/>
    """)
    launcher = Launcher(path, env)
    code = launcher.finish()
    out = launcher.transcript()
    assert code == 1, out
    assert "[crasher] EXITING 3" in out and "[steady] GOT SIGINT" in out, out
    assert "process [crasher] has died" in out and "exit code 3" in out
    assert_gone(launcher.pids("steady") + launcher.pids("crasher") + launcher.pids("steady", "HELPER"))


def test_clean_exit_of_on_exit_shutdown_process_ends_launch_with_success(tmp_path, env):
    path = write(tmp_path, """\
        <node pkg="fixture_pkg" exec="worker" name="steady" output="screen"/>
        <node pkg="fixture_pkg" exec="worker" name="job" output="screen" on_exit="shutdown"
              args="--exit-after 0.2 --code 0"/>
    """)
    launcher = Launcher(path, env)
    assert launcher.finish() == 0, launcher.transcript()
    assert "process [job] has finished cleanly" in launcher.transcript()
    assert_gone(launcher.pids("steady") + launcher.pids("job"))


def test_crash_without_on_exit_does_not_stop_the_launch_but_fails_it(tmp_path, env):
    path = write(tmp_path, """\
        <node pkg="fixture_pkg" exec="worker" name="flaky" output="screen" args="--exit-after 0 --code 5"/>
        <node pkg="fixture_pkg" exec="worker" name="steady" output="screen"/>
    """)
    launcher = Launcher(path, env)
    launcher.wait_for("process [flaky] has died")
    launcher.wait_for("[steady] READY")
    assert launcher.proc.poll() is None, launcher.transcript()
    launcher.proc.send_signal(signal.SIGINT)
    assert launcher.finish() == 1, launcher.transcript()
    assert launcher.stderr[-1] == "optimus-launch: error: [flaky] exited with code 5: EXITING 5", launcher.transcript()
    assert_gone(launcher.pids("steady"))


def test_a_dead_process_s_own_error_is_repeated_without_its_traceback(tmp_path, env):
    path = write(tmp_path, """\
        <node pkg="fixture_pkg" exec="worker" name="steady" output="screen"/>
        <node pkg="fixture_pkg" exec="worker" name="broken" output="screen" on_exit="shutdown"
              args="--fail-with 'scene.yaml: boxes[0]: unknown key min_gapp'"/>
    """)
    launcher = Launcher(path, env)
    assert launcher.finish() == 1, launcher.transcript()
    message = "RuntimeError: scene.yaml: boxes[0]: unknown key min_gapp"
    assert f"[ERROR] [optimus-launch]: [broken] said: {message}" in launcher.stderr, launcher.transcript()
    assert launcher.stderr[-1] == f"optimus-launch: error: [broken] exited with code 1: {message}", launcher.transcript()
    assert_gone(launcher.pids("steady") + launcher.pids("broken"))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_to_launcher_stops_everything_without_strays(tmp_path, env, signum):
    path = write(tmp_path, """\
        <node pkg="fixture_pkg" exec="worker" name="a" output="screen" args="--spawn-helper"/>
        <node pkg="fixture_pkg" exec="worker" name="b" output="log"/>
    """)
    launcher = Launcher(path, env)
    launcher.wait_for("[a] READY")
    launcher.wait_for("process started [b]")
    launcher.proc.send_signal(signum)
    assert launcher.finish() == 0, launcher.transcript()
    out = launcher.transcript()
    assert "[a] GOT SIGINT" in out and f"{signal.Signals(signum).name} received" in out
    started = list(launcher.started_pids().values())
    assert len(started) == 2
    assert_gone(started + launcher.pids("a", "HELPER"))


def test_shutdown_escalates_to_sigterm_and_sigkill_after_the_timeouts(tmp_path, env):
    path = write(tmp_path, """\
        <node pkg="fixture_pkg" exec="worker" name="stubborn" output="screen"
              args="--ignore-sigint --ignore-sigterm" sigterm_timeout="0.5" sigkill_timeout="0.5"/>
        <node pkg="fixture_pkg" exec="worker" name="deaf" output="screen" args="--ignore-sigint"/>
    """)
    # `deaf` has no timeout attributes: the sigterm_timeout launch configuration sets its default.
    launcher = Launcher(path, env, "sigterm_timeout:=0.5")
    launcher.wait_for("READY", count=2)
    launcher.proc.send_signal(signal.SIGINT)
    assert launcher.finish() == 0, launcher.transcript()
    out = launcher.transcript()
    assert "[stubborn] GOT SIGINT" in out and "[stubborn] GOT SIGTERM" in out
    assert "process [stubborn] still running 0.5 s after SIGTERM; sending SIGKILL" in out
    assert "[deaf] GOT SIGINT" in out and "[deaf] GOT SIGTERM" in out
    assert "exit code -9 after SIGKILL" in out
    assert_gone(launcher.pids("stubborn") + launcher.pids("deaf"))


def test_output_is_prefixed_and_routed_by_output_attribute(tmp_path, env):
    path = write(tmp_path, """\
        <node pkg="fixture_pkg" exec="worker" name="talker" output="screen" args="--lines 3 --exit-after 0"/>
        <node pkg="fixture_pkg" exec="worker" name="quiet" output="log" args="--lines 2 --exit-after 0"/>
    """)
    launcher = Launcher(path, env)
    assert launcher.finish() == 0, launcher.transcript()
    assert [line for line in launcher.stdout if line.startswith("[talker] line")] == [
        "[talker] line 0", "[talker] line 1", "[talker] line 2"]
    assert "[talker] err line" in launcher.stderr
    # output="log": stdout only in the launch log, stderr on screen too (ROS 2 launch semantics).
    assert not [line for line in launcher.stdout if line.startswith("[quiet] line")]
    assert "[quiet] err line" in launcher.stderr
    logs = list((tmp_path / "ros_log").glob("optimus-launch-*/launch.log"))
    assert len(logs) == 1
    log_text = logs[0].read_text()
    assert "[quiet] line 0" in log_text and "[quiet] line 1" in log_text


def test_process_receives_the_resolved_arguments_and_environment(tmp_path, env):
    path = write(tmp_path, """\
        <group>
          <push-ros-namespace namespace="robot1"/>
          <set_parameter name="use_sim_time" value="true"/>
          <node pkg="fixture_pkg" exec="worker" name="echo" output="screen" on_exit="shutdown"
                args="--print-argv --env OPTIMUS_FIXTURE_VAR --exit-after 0">
            <param name="seed" value="$(var seed)"/>
            <remap from="joint_states" to="/robot/joint_states"/>
            <env name="OPTIMUS_FIXTURE_VAR" value="hello $(var seed)"/>
          </node>
        </group>
    """)
    launcher = Launcher(path, env, "seed:=9")
    assert launcher.finish() == 0, launcher.transcript()
    argv = json.loads(next(line for line in launcher.stdout if line.startswith("[echo] ARGV "))[len("[echo] ARGV "):])
    assert argv[:12] == ["--print-argv", "--env", "OPTIMUS_FIXTURE_VAR", "--exit-after", "0", "--ros-args",
                         "-r", "__node:=echo", "-r", "__ns:=/robot1", "-p", "use_sim_time:=true"]
    assert argv[12] == "--params-file" and argv[14:] == ["-r", "joint_states:=/robot/joint_states"]
    assert yaml.safe_load(Path(argv[13]).read_text()) == {"/robot1/echo": {"ros__parameters": {"seed": 9}}}
    assert "[echo] ENV OPTIMUS_FIXTURE_VAR=hello 9" in launcher.stdout


@pytest.mark.parametrize(("body", "expected"), [
    ('<node pkg="fixture_pkg" exec="worker" name="ok" output="screen"/>\n<rosparam command="load"/>\n',
     ["test.launch.xml:3", "<rosparam>"]),
    ('<node pkg="fixture_pkg" exec="worker" name="ok" output="screen"/>\n'
     '<node pkg="fixture_pkg" exec="worker" name="$(var nme)"/>\n',
     ["test.launch.xml:3", "'nme'"]),
    ('<node pkg="fixture_pkg" exec="worker" name="ok" output="screen" args="$(eval 1+1)"/>\n',
     ["test.launch.xml:2", "$(eval"]),
])
def test_errors_are_reported_before_anything_starts(tmp_path, env, body, expected):
    path = write(tmp_path, body)
    launcher = Launcher(path, env)
    assert launcher.finish() == 2
    err = "\n".join(launcher.stderr)
    for text in expected:
        assert text in err, err
    assert not launcher.stdout, "nothing may start when the launch file is wrong"


def test_children_die_with_a_killed_launcher(tmp_path, env):
    """SIGKILL cannot be handled; the children still get SIGTERM from the kernel (PR_SET_PDEATHSIG)."""
    path = write(tmp_path, """\
        <node pkg="fixture_pkg" exec="worker" name="a" output="screen"/>
        <node pkg="fixture_pkg" exec="worker" name="b" output="screen"/>
    """)
    launcher = Launcher(path, env)
    launcher.wait_for("READY", count=2)
    pids = launcher.pids("a") + launcher.pids("b")
    launcher.proc.kill()
    launcher.finish()
    assert_gone(pids)
