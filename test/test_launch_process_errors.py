"""The error a launched process died with, found in its output: its own words, never the traceback frames."""

from __future__ import annotations

from optimus_control.launch.process_errors import (
    LaunchLogWatch,
    ProcessFailure,
    failures_in_launch_log,
    last_error,
    launch_failure_messages,
)

SIM_TYPO = ("sim: /tmp/scene.yaml: boxes[0] 'box_left': unknown key 'min_gapp' (did you mean 'min_gap'?); "
            "valid keys: ['colours', 'min_gap']")

# What optimus-launch wrote for the factory demo with a misspelt scene key: the sim printed its reason and exited 2;
# perception, stopped by the shutdown while importing, left a KeyboardInterrupt traceback that is not the cause.
LAUNCH_LOG = f"""\
[INFO] [optimus-launch]: process started [sim] with pid 5063
[INFO] [optimus-launch]: process started [perception] with pid 5071
[sim] pybullet build time: Jan 29 2025 23:17:20
[task_planner] [INFO] [1796675528.921512933] [task_planner]: job 'sort_two_boxes' is valid
[sim] {SIM_TYPO}
[ERROR] [optimus-launch]: process [sim] has died [pid 5063, exit code 2, cmd '/venv/bin/sim --ros-args']
[INFO] [optimus-launch]: shutting down: [sim] exited (on_exit=shutdown); sending SIGINT to [perception]
[perception] Traceback (most recent call last):
[perception]   File "/venv/bin/perception", line 3, in <module>
[perception]     from optimus_control.nodes.perception import main
[perception] KeyboardInterrupt
[INFO] [optimus-launch]: process [perception] has finished [pid 5071, exit code -2 after SIGINT]
""".splitlines()


def test_a_plain_message_printed_before_exiting_is_the_error():
    assert last_error(["pybullet build time: Jan 29 2025", SIM_TYPO]) == (SIM_TYPO,)


def test_each_stream_is_read_on_its_own_and_errors_win_over_plain_lines():
    stderr = ["Traceback (most recent call last):", '  File "x.py", line 1', "    main()", "RuntimeError: no bus"]
    stdout = ["PID 7", "READY"]
    assert last_error(stderr, stdout) == ("RuntimeError: no bus",)
    assert last_error(["task_planner: bad job"], ["READY"]) == ("task_planner: bad job",)  # stderr's words first
    assert last_error([], ["pybullet build time: 2025", SIM_TYPO]) == (SIM_TYPO,)


def test_a_node_s_fatal_message_counts_even_when_a_buffered_line_arrives_after_it():
    stdout = [SIM_TYPO, "pybullet build time: Jan 29 2025 23:17:20"]  # pybullet's C stdio flushed at exit
    assert last_error([], stdout, name="sim") == (SIM_TYPO,)
    assert last_error([], stdout) == ("pybullet build time: Jan 29 2025 23:17:20",)


def test_a_plain_line_inside_a_traceback_does_not_pass_for_its_exception():
    lines = ["Traceback (most recent call last):", "READY", '  File "x.py", line 1', "RuntimeError: no bus"]
    assert last_error(lines) == ("RuntimeError: no bus",)


def test_a_traceback_gives_its_exception_line_without_module_or_frames():
    lines = ["[INFO] [1.0] [planner]: starting",
             "Traceback (most recent call last):",
             '  File "/x/job_spec.py", line 191, in load_job',
             "    raise ConfigError(f'{source}: not valid YAML')",
             "optimus_control.errors.ConfigError: job.yaml: bins.red: expected a mapping"]
    assert last_error(lines) == ("ConfigError: job.yaml: bins.red: expected a mapping",)


def test_a_chained_traceback_keeps_both_exception_lines():
    lines = ["Traceback (most recent call last):", '  File "a.py", line 1, in f', "KeyError: 'scene'", "",
             "The above exception was the direct cause of the following exception:", "",
             "Traceback (most recent call last):", '  File "b.py", line 2, in g', "ValueError: no scene given"]
    assert last_error(lines) == ("KeyError: 'scene'", "ValueError: no scene given")


def test_ros_error_and_fatal_lines_count_and_info_lines_do_not():
    lines = ["[INFO] [1.0] [wbc]: connecting to joint bus 'optimus_bus'",
             "[ERROR] [2.0] [wbc]: joint bus 'optimus_bus' did not answer within 10 s",
             "[WARN] [2.1] [wbc]: damping",
             "[FATAL] [2.2] [wbc]: cannot start: no bus",
             "[INFO] [2.3] [wbc]: shutting down"]
    assert last_error(lines) == ("joint bus 'optimus_bus' did not answer within 10 s", "cannot start: no bus")


def test_an_error_logged_with_its_traceback_gives_the_log_line_and_the_exception():
    lines = ["[ERROR] [3.0] [sim]: physics thread failed:", "Traceback (most recent call last):",
             '  File "sim/runner.py", line 9, in run', "    self.step()", "RuntimeError: bus closed"]
    assert last_error(lines) == ("physics thread failed:", "RuntimeError: bus closed")


def test_stopping_signals_are_not_errors_and_silence_falls_back_to_the_last_line():
    assert last_error(["Traceback (most recent call last):", '  File "x.py", line 1', "KeyboardInterrupt",
                       "[INFO] [1.0] [p]: bye"]) == ("[INFO] [1.0] [p]: bye",)
    assert last_error([]) == ()


def test_at_most_the_last_three_messages_oldest_first():
    lines = [f"[ERROR] [{k}.0] [n]: error {k}" for k in range(6)]
    assert last_error(lines) == ("error 3", "error 4", "error 5")


def test_launch_log_gives_each_dead_process_with_its_own_message():
    failures = failures_in_launch_log(LAUNCH_LOG)
    assert failures == [ProcessFailure("sim", 2, (SIM_TYPO,))]
    assert failures[0].describe() == f"[sim] exited with code 2: {SIM_TYPO}"


def test_the_launcher_s_own_reading_of_a_dead_process_is_preferred():
    log = [*LAUNCH_LOG[:6], "[ERROR] [optimus-launch]: [sim] said: RuntimeError: bus closed", *LAUNCH_LOG[6:]]
    assert failures_in_launch_log(log) == [ProcessFailure("sim", 2, ("RuntimeError: bus closed",))]


def test_a_clean_launch_log_has_no_failures():
    assert failures_in_launch_log(line for line in LAUNCH_LOG if "has died" not in line) == []


def test_the_demo_s_view_of_a_launch_from_its_output_file(tmp_path):
    log = tmp_path / "launch.log"
    log.write_text("\n".join(LAUNCH_LOG) + "\n")
    assert launch_failure_messages(log, 1) == [f"[sim] exited with code 2: {SIM_TYPO}"]
    log.write_text("optimus-launch: error: no launch file 'factory.launch.xml' (did you mean 'factory_demo.launch.xml'?)\n")
    assert launch_failure_messages(log, 2) == [
        "optimus-launch exited with code 2: optimus-launch: error: no launch file 'factory.launch.xml' "
        "(did you mean 'factory_demo.launch.xml'?)"]
    log.write_text("[INFO] [optimus-launch]: process [task_planner] has finished cleanly [pid 7]\n")
    assert launch_failure_messages(log, 0) == []
    assert launch_failure_messages(tmp_path / "missing.log", 1) == ["optimus-launch exited with code 1 and left no output"]


def test_the_watch_sees_a_death_report_once_its_line_is_complete(tmp_path):
    log = tmp_path / "launch.log"
    watch = LaunchLogWatch(log)
    assert not watch.someone_died()  # no file yet
    died = next(line for line in LAUNCH_LOG if "has died" in line)
    with open(log, "w") as f:
        f.write("\n".join(LAUNCH_LOG[:5]) + "\n")
        f.flush()
        assert not watch.someone_died()
        f.write(died[:40])
        f.flush()
        assert not watch.someone_died()
        f.write(died[40:] + "\n")
        f.flush()
        assert watch.someone_died()
        assert not watch.someone_died()  # read once
