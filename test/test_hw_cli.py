"""optimus-hw: check prints both tables and the real-time permissions and refuses an overloaded plan;
scan, jog and calibrate run against in-process emulated motors, with candump logging."""

import re

import pytest
import yaml

from optimus_control.hardware import load_hardware
from optimus_control.hardware.cli import main


def test_check_shipped_plan(capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "bus load" in out and "actuator fit" in out and "OK: the plan passes both checks" in out
    assert re.search(r"rtprio limit .*SCHED_FIFO", out) and "memlock limit" in out


def test_check_refuses_overloaded_bus(tmp_path, capsys):
    raw = yaml.safe_load(load_hardware().source.read_text())
    raw["calibration"] = None
    raw["buses"]["torso"]["rate_hz"] = 1000  # 2 Damiao + 2 Mini Cheetah at 1 kHz: 104 %
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "REFUSED: bus 'torso' at 104.0%" in out


def test_check_config_error_exit_code(tmp_path, capsys):
    path = tmp_path / "hw.yaml"
    path.write_text("robot: optimus.yaml\nbusses: {}\n")
    assert main(["check", str(path)]) == 2
    assert "unknown key 'busses' (did you mean 'buses'?)" in capsys.readouterr().err


@pytest.mark.realtime
def test_scan_jog_calibrate_on_emulated_motors(tmp_path, capsys):
    """The tools end to end on the shipped plan, emulated. The silent-motor fault is not the subject here: the
    plan's buses fault only after 50 missed cycles, as a pty on a loaded machine can hold a whole bus's burst
    or replies for several cycles (the fault at the default 3: test_hw_pty)."""
    raw = yaml.safe_load(load_hardware().source.read_text())
    raw["calibration"] = str(tmp_path / "not_calibrated.yaml")  # the configured offsets
    for bus in raw["buses"].values():
        bus["fault_after_missed_cycles"] = 50
    plan = tmp_path / "hw.yaml"
    plan.write_text(yaml.safe_dump(raw))
    config = ["--config", str(plan)]
    log = tmp_path / "frames.log"
    assert main(["scan", "--emulate", *config, "--log", str(log)]) == 0
    out = capsys.readouterr().out
    assert out.count(" yes ") == 32 and "frames logged" in out
    lines = log.read_text().splitlines()
    assert lines and all(re.fullmatch(r"\(\d+\.\d{6}\) \w+ [0-9A-F]{3}#[0-9A-F]*", line) for line in lines)
    assert any(" 000#" in line for line in lines) and any(" 001#" in line for line in lines)
    assert main(["jog", "neck_pitch", "0.2", "--emulate", *config, "--duration", "0.3", "--hold", "0.5",
                 "--gain-scale", "1"]) == 0
    err = float(re.search(r"tracking error after 0.5 s hold: ([-+0-9.e]+)", capsys.readouterr().out).group(1))
    assert abs(err) < 0.03
    cal = tmp_path / "cal.yaml"
    assert main(["calibrate", "--emulate", *config, "--joints", "l_knee,neck_yaw", "--output", str(cal)]) == 0
    offsets = yaml.safe_load(cal.read_text())["offsets"]
    assert offsets["l_knee"] == pytest.approx(1.2, abs=1e-3) and offsets["neck_yaw"] == pytest.approx(0, abs=1e-3)
