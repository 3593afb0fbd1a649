"""Hardware descriptions: validation messages (file, key, did you mean), the bus-load and actuator-fit checks,
the shipped Optimus plan, and the calibration file."""

import re
from pathlib import Path

import pytest
import yaml

from optimus_control.errors import ConfigError
from optimus_control.hardware import (
    actuator_fit,
    bus_load,
    check_bus_load,
    check_fit,
    check_names,
    format_bus_load,
    format_fit,
    frame_bits,
    load_hardware,
    save_calibration,
)
from optimus_control.model import RobotModel


@pytest.fixture(scope="module")
def robot():
    return RobotModel.load()


@pytest.fixture(scope="module")
def shipped_raw():
    return yaml.safe_load(load_hardware().source.read_text())


def write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_frame_bits_match_the_reference_figures():
    assert (frame_bits(8, False), frame_bits(8)) == (111, 135)
    assert (frame_bits(6, False), frame_bits(6)) == (95, 115)


def test_shipped_optimus_passes_both_checks(robot):
    """Every actuated joint (fingers included) has a motor; every bus is under 80 %; every joint fits."""
    desc = load_hardware("hardware/optimus.yaml")
    check_names(desc, robot.joint_names, robot.frame_names)
    assert set(desc.joints) == set(robot.joint_names) and len(desc.joints) == 32
    rows = check_bus_load(desc)
    assert all(r.load <= 0.8 for r in rows) and sum(r.motors for r in rows) == 32
    fit = check_fit(desc, robot)
    assert all(r.ok for r in fit)
    table = format_bus_load(rows) + format_fit(fit, desc)
    assert "REFUSED" not in table and "l_finger_left" in table


def test_three_damiao_motors_at_1khz_are_refused_naming_bus_and_load(tmp_path, shipped_raw):
    raw = yaml.safe_load(yaml.safe_dump(shipped_raw))
    raw["calibration"] = None
    raw["joints"]["l_hip_pitch"].update(bus="leg_l_hip", id=3)
    raw["joints"]["l_knee"].update(bus="leg_l_hip", id=4)  # 4 Damiao motors on a 1 kHz bus: 108 %
    raw["joints"]["l_ankle_pitch"].update(bus="leg_l_thigh", id=1)
    raw["joints"]["l_ankle_roll"].update(bus="leg_l_thigh", id=2)
    raw["buses"].pop("leg_l_ankle")
    desc = load_hardware(write(tmp_path, raw))
    with pytest.raises(ConfigError, match=r"bus 'leg_l_hip' at 108\.0% \(4 motors at 1000 Hz\)"):
        check_bus_load(desc)
    assert [r.load for r in bus_load(desc) if r.bus == "leg_l_hip"] == [pytest.approx(1.08)]


def test_a_joint_that_does_not_fit_is_refused_with_figures(tmp_path, shipped_raw, robot):
    raw = yaml.safe_load(yaml.safe_dump(shipped_raw))
    raw["calibration"] = None
    raw["joints"]["l_knee"]["model"] = "ak80-9_v2"  # 18 N m x 2.5 = 45 N m for a 280 N m knee
    desc = load_hardware(write(tmp_path, raw))
    with pytest.raises(ConfigError, match=r"joint 'l_knee' \(ak80-9_v2, gear 2.5\): .*torque: the joint needs 280"):
        check_fit(desc, robot)
    raw["joints"]["l_knee"]["derated"] = {"effort": 45.0, "velocity": 10.0, "reason": "test bench leg"}
    desc = load_hardware(write(tmp_path, raw))
    row = [r for r in check_fit(desc, robot) if r.joint == "l_knee"][0]
    assert row.ok and row.derated
    assert "DERATED (effort 45, velocity 10): test bench leg" in format_fit(actuator_fit(desc, robot), desc)


@pytest.mark.parametrize("edit, message", [
    (lambda r: r["buses"]["leg_l_hip"].update(url="pcan:usb0"), r"buses.leg_l_hip.url: 'pcan:usb0' must be"),
    (lambda r: r["buses"]["leg_l_hip"].update(bitrate=800000), r"800000 bit/s is not a classic CAN rate"),
    (lambda r: r["buses"]["leg_l_hip"].update(rat_hz=1), r"buses.leg_l_hip: unknown key 'rat_hz'"),
    (lambda r: r["buses"]["leg_l_hip"].update(fault_after_missed_cycles=0),
     r"buses.leg_l_hip.fault_after_missed_cycles: must be an integer >= 1, got 0"),
    (lambda r: r["buses"]["leg_l_hip"].update(fault_after_missed_cycles=2.5), r"must be an integer >= 1, got 2.5"),
    (lambda r: r["buses"]["leg_l_hip"].update(fault_after_missed_cyles=5),
     r"unknown key 'fault_after_missed_cyles' \(did you mean 'fault_after_missed_cycles'\?\)"),
    (lambda r: r["joints"]["l_knee"].update(bus="leg_l_thight"), r"unknown bus 'leg_l_thight' \(did you mean 'leg_l_thigh'\?\)"),
    (lambda r: r["joints"]["l_knee"].update(model="dm-j10010"), r"motor model 'dm-j10010' \(did you mean 'dm-j10010l'\?\)"),
    (lambda r: r["joints"]["l_knee"].update(gear_ration=2), r"l_knee: unknown key 'gear_ration' \(did you mean 'gear_ratio'\?\)"),
    (lambda r: r["joints"]["l_knee"].update(direction=2), r"joints.l_knee.direction: must be 1 or -1"),
    (lambda r: r["joints"]["l_knee"].update(id=0), r"joints.l_knee.id: motor id must be an integer in \[1, 0x7FF\]"),
    (lambda r: r["joints"]["l_knee"].update(id=17), r"joints.l_knee.id: motor id 17 answers with the same id as 'l_hip_pitch'"),
    (lambda r: r["joints"]["l_knee"].update(derated={"effort": 10}), r"a derated joint must say why"),
    (lambda r: r["models"]["dm-j8009p"].pop("kd"), r"models.dm-j8009p: missing key 'kd'"),
    (lambda r: r["models"]["dm-j8009p"].update(torque=[54, -54]), r"models.dm-j8009p.torque: max \(-54.0\) must be greater"),
    (lambda r: r.update(imu_=1), r"unknown key 'imu_' \(did you mean 'imu'\?\)"),
])
def test_validation_errors_name_file_key_and_suggestion(tmp_path, shipped_raw, edit, message):
    raw = yaml.safe_load(yaml.safe_dump(shipped_raw))
    raw["calibration"] = None
    edit(raw)
    path = write(tmp_path, raw)
    with pytest.raises(ConfigError, match=message) as info:
        load_hardware(path)
    assert re.match(rf"{re.escape(str(path))}:\d+: ", str(info.value)), "file and line first"


def test_names_are_checked_against_the_robot(tmp_path, shipped_raw, robot):
    raw = yaml.safe_load(yaml.safe_dump(shipped_raw))
    raw["calibration"] = None
    raw["joints"]["l_kne"] = raw["joints"].pop("l_knee")
    desc = load_hardware(write(tmp_path, raw))
    with pytest.raises(ConfigError, match=r"joints.l_kne: not an actuated joint of the robot \(did you mean 'l_knee'\?\)"):
        check_names(desc, robot.joint_names, robot.frame_names)


def test_calibration_round_trip_and_errors(tmp_path, shipped_raw):
    raw = yaml.safe_load(yaml.safe_dump(shipped_raw))
    raw["calibration"] = "cal.yaml"
    path = write(tmp_path, raw)
    assert load_hardware(path).calibration == {}  # not calibrated yet
    save_calibration(tmp_path / "cal.yaml", {"l_knee": 1.2345, "neck_yaw": -0.01}, note="test")
    desc = load_hardware(path)
    assert desc.zero_offset("l_knee") == pytest.approx(1.2345) and desc.zero_offset("r_knee") == 1.2
    (tmp_path / "cal.yaml").write_text("offsets: {l_kne: 0.1}\n")
    with pytest.raises(ConfigError, match=r"cal.yaml:1: offsets.l_kne: unknown joint 'l_kne' \(did you mean 'l_knee'\?\)"):
        load_hardware(path)


def test_fault_after_missed_cycles_defaults_to_3_and_reaches_the_transport(tmp_path, shipped_raw, robot):
    """The silent-joint rule of the robot (3 cycles) unless a bus says otherwise; the driver hands each bus's
    value to the C transport, whose fault message quotes it."""
    from optimus_control.hardware.driver import CanDriver

    assert all(b.fault_after_missed_cycles == 3 for b in load_hardware().buses.values())
    raw = yaml.safe_load(yaml.safe_dump(shipped_raw))
    raw["calibration"] = None
    raw["buses"]["hand_l"]["fault_after_missed_cycles"] = 50
    desc = load_hardware(write(tmp_path, raw))
    assert desc.buses["hand_l"].fault_after_missed_cycles == 50 and desc.buses["hand_r"].fault_after_missed_cycles == 3
    stats = CanDriver(desc, robot).transport.bus_stats()  # built, never started: no device is opened
    assert [s["fault_after_missed_cycles"] for s in stats] == [50 if n == "hand_l" else 3 for n in desc.buses]
