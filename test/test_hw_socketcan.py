"""The SocketCAN backend: its errors everywhere, and end to end on a virtual CAN interface where the kernel
has one (motors emulated on a raw CAN socket of the same interface)."""

import gc
import os
import socket
import struct
import subprocess
import threading
import time

import pytest

from optimus_control.errors import RealTimeError
from optimus_control.hardware.description import known_models
from optimus_control.hardware.driver import ACTIVE, ENTERING, EXITING, PASSIVE
from optimus_control.hardware.emulator import EmulatedMotor
from optimus_control.rt import _rtcore

MC = known_models()["mini_cheetah"]
JOINT = (0, 1, MC.range10(), False, 1.0, 1.0, 0.0, -1.0, 1.0, 1.0)


def vcan_interface() -> tuple[str | None, str]:
    """(interface, why not) for a usable vcan: $OPTIMUS_VCAN, an existing vcan0, or one we may create."""
    try:
        socket.socket(socket.PF_CAN, socket.SOCK_RAW, socket.CAN_RAW).close()
    except (OSError, AttributeError) as exc:
        return None, f"this kernel has no CAN sockets ({exc}): load the can and vcan modules to run it"
    name = os.environ.get("OPTIMUS_VCAN", "vcan0")
    if os.path.exists(f"/sys/class/net/{name}"):
        return name, ""
    made = subprocess.run(["ip", "link", "add", "dev", name, "type", "vcan"], capture_output=True, text=True)
    if made.returncode != 0:
        return None, f"no interface {name} and cannot create one ({made.stderr.strip()}): 'modprobe vcan' as root"
    subprocess.run(["ip", "link", "set", name, "up"], check=False)
    return name, ""


def wait_for(predicate, timeout_s: float = 3.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.01)
    return predicate()


def test_socketcan_open_errors_are_precise():
    """An unknown interface (or a kernel without CAN) is refused at start with the interface named."""
    tr = _rtcore.CanTransport([("socketcan:optimus_no_such_can9", 1_000_000, 100.0)], [JOINT], 0)
    with pytest.raises(RealTimeError, match="socketcan:optimus_no_such_can9"):
        tr.start(open_timeout_s=0.2)
    with pytest.raises(RealTimeError, match="unknown scheme 'pcan'"):
        _rtcore.CanTransport([("pcan:usb0", 1_000_000, 100.0)], [JOINT], 0)


@pytest.mark.realtime
def test_socketcan_end_to_end_on_vcan():
    """Motor mode, replies and a silent-motor fault over a real SocketCAN socket. The motor is a thread of this
    process: the collector stays off meanwhile (a full collection holds the GIL beyond the 3-cycle limit on a
    loaded machine), and every assertion waits for a state or a count, not for a time."""
    iface, why = vcan_interface()
    if iface is None:
        pytest.skip(why)
    motor = EmulatedMotor(1, MC, damping=5.0)
    sock = socket.socket(socket.PF_CAN, socket.SOCK_RAW, socket.CAN_RAW)
    sock.bind((iface,))
    sock.settimeout(0.05)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                raw = sock.recv(16)
            except TimeoutError:
                continue
            can_id, dlc = struct.unpack("=IB3x", raw[:8])
            if can_id == 1 and dlc == 8:
                reply = motor.receive(raw[8:16], time.monotonic())
                if reply is not None:
                    sock.send(struct.pack("=IB3x8s", 0, len(reply), reply.ljust(8, b"\0")))

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    tr = _rtcore.CanTransport([(f"socketcan:{iface}", 1_000_000, 200.0)], [JOINT], 0, ["vcan"])
    gc.collect()
    gc.disable()
    try:
        tr.start(open_timeout_s=1.0)
        tr.set_mode(ENTERING)
        assert wait_for(lambda: tr.modes() == [ACTIVE])
        assert wait_for(lambda: motor.specials == [0xFC])  # the enter frame may still be in flight
        assert wait_for(lambda: tr.bus_stats()[0]["complete_cycles"] > 10, 5.0)
        assert tr.fault()[0] == 0
        motor.silent = True
        assert wait_for(lambda: tr.fault()[0] != 0)
        assert tr.fault()[:3] == (1, 0, 0) and "vcan" in tr.fault_message()
        motor.silent = False
        tr.set_mode(EXITING)
        assert wait_for(lambda: tr.modes() == [PASSIVE])
        assert wait_for(lambda: motor.specials[-1:] == [0xFD])
    finally:
        gc.enable()
        tr.stop()
        stop.set()
        server.join(timeout=2)
        sock.close()
