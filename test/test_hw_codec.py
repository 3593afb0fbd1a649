"""MIT-mode and SLCAN codecs of the CAN transport (C, through _rtcore): golden vectors computed from the
protocol's formulas, round trips within one quantum, clamping without spill, special frames, and the SLCAN
line parser fed garbage, split lines, errors and unknown ids."""

import random

import pytest

from optimus_control.errors import RealTimeError
from optimus_control.rt import _rtcore as rc

CLASSIC = (-12.5, 12.5, -65.0, 65.0, 0.0, 500.0, 0.0, 5.0, -18.0, 18.0)
SPANS = [(CLASSIC[0], CLASSIC[1], 16), (CLASSIC[2], CLASSIC[3], 12), (CLASSIC[4], CLASSIC[5], 12),
         (CLASSIC[6], CLASSIC[7], 12), (CLASSIC[8], CLASSIC[9], 12)]


def to_uint(x: float, lo: float, hi: float, bits: int) -> int:
    """The firmware's formula, with the host-side clamp."""
    x = min(max(x, lo), hi)
    return int((x - lo) * ((1 << bits) - 1) / (hi - lo))


def pack_reference(p, v, kp, kd, t, r=CLASSIC) -> bytes:
    """Bit fields p16 | v12 | kp12 | kd12 | t12, big-endian, written from the protocol description."""
    ps = to_uint(p, r[0], r[1], 16)
    vs = to_uint(v, r[2], r[3], 12)
    kps = to_uint(kp, r[4], r[5], 12)
    kds = to_uint(kd, r[6], r[7], 12)
    ts = to_uint(t, r[8], r[9], 12)
    word = (ps << 48) | (vs << 36) | (kps << 24) | (kds << 12) | ts
    return word.to_bytes(8, "big")


def test_pack_matches_golden_vectors():
    """Commands pack exactly as the bit-field formula says (fixed vectors and 500 random ones)."""
    # the zero command: mid-scale p (0x7FFF), v (0x7FF), kp = kd = 0, t mid-scale (0x7FF)
    assert rc.mit_pack(CLASSIC, 0, 0, 0, 0, 0)[0] == bytes([0x7F, 0xFF, 0x7F, 0xF0, 0x00, 0x00, 0x07, 0xFF])
    # full scale everywhere: all ones
    assert rc.mit_pack(CLASSIC, 12.5, 65, 500, 5, 18)[0] == b"\xff" * 8
    assert rc.mit_pack(CLASSIC, -12.5, -65, 0, 0, -18)[0] == b"\x00" * 8
    rng = random.Random(1)
    for _ in range(500):
        cmd = [rng.uniform(lo, hi) for lo, hi, _ in SPANS]
        assert rc.mit_pack(CLASSIC, *cmd)[0] == pack_reference(*cmd)


def test_clamping_never_spills_into_neighbours():
    """Out-of-range values pack as their limits, flagged in the mask; the other fields are untouched."""
    base = (1.0, 2.0, 50.0, 1.0, 3.0)
    ref = rc.mit_pack(CLASSIC, *base)[0]
    for field, (lo, hi, _) in enumerate(SPANS):
        for value, limit in ((hi * 3 + 1, hi), (lo - abs(hi) * 3 - 1, lo), (float("nan"), None)):
            cmd = list(base)
            cmd[field] = value
            data, mask = rc.mit_pack(CLASSIC, *cmd)
            assert mask == 1 << field
            expected = list(base)
            expected[field] = limit if limit is not None else min(max(0.0, lo), hi)
            assert data == pack_reference(*expected)
            # every other field decodes to what it was
            word, ref_word = int.from_bytes(data, "big"), int.from_bytes(ref, "big")
            shifts = [(48, 16), (36, 12), (24, 12), (12, 12), (0, 12)]
            for other, (shift, bits) in enumerate(shifts):
                if other != field:
                    m = (1 << bits) - 1
                    assert (word >> shift) & m == (ref_word >> shift) & m


def reply_bytes(motor_id: int, p: float, v: float, t: float, r=CLASSIC) -> bytes:
    ps, vs, ts = to_uint(p, r[0], r[1], 16), to_uint(v, r[2], r[3], 12), to_uint(t, r[8], r[9], 12)
    return bytes([motor_id, ps >> 8, ps & 0xFF, vs >> 4, ((vs & 0xF) << 4) | (ts >> 8), ts & 0xFF])


def test_reply_round_trip_within_one_quantum():
    """A 6-byte reply decodes to within one quantum of what the motor encoded."""
    rng = random.Random(2)
    quanta = [(CLASSIC[1] - CLASSIC[0]) / 65535, (CLASSIC[3] - CLASSIC[2]) / 4095, (CLASSIC[9] - CLASSIC[8]) / 4095]
    for _ in range(500):
        p, v, t = rng.uniform(-12.5, 12.5), rng.uniform(-65, 65), rng.uniform(-18, 18)
        out = rc.mit_unpack(CLASSIC, reply_bytes(7, p, v, t))
        assert out["id"] == 7
        for got, want, q in ((out["p"], p, quanta[0]), (out["v"], v, quanta[1]), (out["t"], t, quanta[2])):
            assert want - q - 1e-12 <= got <= want + 1e-12


def test_damiao_reply_has_error_nibble_and_temperatures():
    """Damiao's 8-byte reply: d0 = error << 4 | id, d6/d7 = MOSFET and rotor temperatures."""
    r = (-12.5, 12.5, -30.0, 30.0, 0.0, 500.0, 0.0, 5.0, -10.0, 10.0)
    six = reply_bytes(0, 0.5, -1.0, 2.0, r)
    data = bytes([0x1 << 4 | 0x3]) + six[1:] + bytes([41, 37])
    out = rc.mit_unpack(r, data, True)
    assert (out["id"], out["error"], out["t_mos"], out["t_rotor"]) == (3, 1, 41, 37)
    assert abs(out["p"] - 0.5) < 25 / 65535 + 1e-9
    with pytest.raises(RealTimeError, match="8 bytes"):
        rc.mit_unpack(r, six, True)
    with pytest.raises(RealTimeError, match="6 bytes"):
        rc.mit_unpack(r, data, False)


def test_special_frames():
    """Enter (FC), exit (FD) and zero (FE) frames are seven 0xFF then the kind; commands are not special."""
    for kind in (0xFC, 0xFD, 0xFE):
        frame = rc.mit_special(kind)
        assert frame == b"\xff" * 7 + bytes([kind])
        assert rc.mit_special_kind(frame) == kind
    assert rc.mit_special_kind(b"\xff" * 8) == 0  # a full-scale command, not a special frame
    assert rc.mit_special_kind(rc.mit_pack(CLASSIC, 0, 0, 0, 0, 0)[0]) == 0
    with pytest.raises(RealTimeError):
        rc.mit_special(0xFB)


def test_model_table():
    """The known models carry the ranges of the reference (classic Mini Cheetah, AK V2)."""
    models = {name: r for name, r, _ in rc.mit_models()}
    assert models["mini_cheetah"] == CLASSIC
    assert models["ak80-9_v2"][2:4] == (-25.64, 25.64) and models["ak80-9_v2"][8:] == (-18.0, 18.0)
    assert models["ak80-6_v2"][2:4] == (-38.2, 38.2) and models["ak80-6_v2"][8:] == (-12.0, 12.0)
    with pytest.raises(RealTimeError, match="greater"):
        rc.mit_pack((1, 1, -1, 1, 0, 1, 0, 1, -1, 1), 0, 0, 0, 0, 0)


# ---- SLCAN ------------------------------------------------------------------------------------------------
def test_slcan_encode():
    assert rc.slcan_encode(0x456, bytes([0x11, 0x22, 0x33])) == b"t4563112233\r"
    assert rc.slcan_encode(0x12345678, b"\xAB", ext=True) == b"T123456781AB\r"
    assert len(rc.slcan_encode(1, rc.mit_pack(CLASSIC, 0, 0, 0, 0, 0)[0])) == 22  # 8-byte MIT command
    assert rc.slcan_bitrate_code(1_000_000) == 8 and rc.slcan_bitrate_code(800_000) == -1


def test_slcan_parser_handles_split_lines_garbage_errors():
    """Frames split across reads, acks, tx acks, bell errors, garbage and overlong lines are all told apart."""
    p = rc.SlcanParser()
    stream = b"t4563112233\r\rz\r\x07V1013\rxyz\r" + b"t" * 100 + b"\rT12345678199\rt0016010203040506ABCD\r"
    events = []
    for i in range(0, len(stream), 5):  # 5-byte reads cut every line somewhere
        events += p.feed(stream[i:i + 5])
    kinds = [e[0] for e in events]
    assert kinds == ["frame", "ack", "tx_ack", "error", "reply", "garbage", "garbage", "frame", "frame"]
    assert events[0][1:3] == (0x456, b"\x11\x22\x33")
    assert events[7][1:4] == (0x12345678, b"\x99", 1)
    assert events[8][1:3] == (0x001, bytes(range(1, 7)))  # timestamp ignored
    assert p.counts["garbage"] == 2 and p.counts["errors"] == 1


def test_slcan_parser_rejects_malformed_frames():
    """Bad hex, a dlc above 8, a length that does not match the dlc: garbage, never a frame."""
    p = rc.SlcanParser()
    for line in (b"t45G3112233\r", b"t4569" + b"00" * 9 + b"\r", b"t456311223\r", b"t8001AA\r", b"q\r"):
        assert [e[0] for e in p.feed(line)] == ["garbage"], line
