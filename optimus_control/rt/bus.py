"""The joint bus in POSIX shared memory, robot side (the sim node, a HIL emulator).

The robot side creates the segment ``/dev/shm/<name>``, fills the state packet through numpy views and
publishes it; the controller side (the C loop, through ``ShmTransport``) answers each state with a
command packet. Packets are seqlocked and waits sleep on futexes, so neither side spins. Each side is
owned by one live process at a time (a lock the kernel drops when the owner dies). The layout and the
ownership rules are documented in ``optimus_control/rt/README.md``.
"""

from __future__ import annotations

import mmap
import os
import re
import time

import numpy as np

from optimus_control.errors import RealTimeError
from optimus_control.rt import _rtcore

SHM_DIR = "/dev/shm"
CONNECTED_WITHIN_S = 0.1  # a controller counts as connected if it answered this recently
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
ShmTransport = _rtcore.ShmTransport


def _path(name: str) -> str:
    if not _NAME.match(name):
        raise RealTimeError(f"bus name '{name}' must be 1-200 characters from [A-Za-z0-9_.-] (it names /dev/shm/{name})")
    return os.path.join(SHM_DIR, name)


class RobotBus:
    """Robot side of the joint bus: numpy views of the state being prepared, publish, read commands.

    Joint arrays are in RobotModel bus order. Build with ``RobotBus.create`` (take over or make the
    segment) or ``RobotBus.attach`` (existing segment). Either way this process owns the robot side until
    ``close()`` or its exit; a second robot side on a bus whose owner is alive gets ``BusInUseError``.
    """

    def __init__(self, name: str, segment: mmap.mmap, fd: int):
        self.name = name
        self._mm = segment
        self._fd = fd  # holds the robot-side lock; closed by close()
        self.n_joints, self.n_feet = _rtcore.bus_check(segment)
        lay = _rtcore.bus_layout(self.n_joints, self.n_feet)
        self.layout = lay
        n, nf = self.n_joints, self.n_feet
        self._staging = np.zeros(lay["state_words"] - 1)
        # Start from what the segment holds (an upright resting IMU after create()).
        start = np.frombuffer(segment, dtype=np.float64, count=lay["state_words"], offset=lay["state_offset"])
        self._staging[:] = start[1:]
        del start

        def view(word: int, count: int) -> np.ndarray:
            return self._staging[word - 1:word - 1 + count]

        self.q = view(lay["word_q"], n)
        self.v = view(lay["word_v"], n)
        self.tau_measured = view(lay["word_tau_measured"], n)
        self.imu_orientation_xyzw = view(lay["word_imu_orientation"], 4)
        self.imu_angular_velocity = view(lay["word_imu_angular_velocity"], 3)
        self.imu_linear_acceleration = view(lay["word_imu_linear_acceleration"], 3)
        self.foot_wrench = view(lay["word_foot_wrench"], 6 * nf).reshape(nf, 6)
        self._command = np.zeros(n)

    @classmethod
    def create(cls, name: str = "optimus_bus", n_joints: int = 32, n_feet: int = 2) -> RobotBus:
        """Own the robot side of /dev/shm/<name> for n_joints joints and n_feet foot sensors.

        A segment left by a robot side that is gone is taken over: kept as it is when its layout matches
        (a controller still attached keeps talking to the restarted robot; the tick sequence continues),
        replaced otherwise. Raises ``BusInUseError`` if a live process owns the robot side, or owns the
        controller side of a segment that would have to be replaced.
        """
        if n_joints < 1 or n_feet < 0:
            raise RealTimeError(f"RobotBus.create: n_joints ({n_joints}) must be >= 1 and n_feet ({n_feet}) >= 0")
        path = _path(name)
        size = _rtcore.bus_layout(n_joints, n_feet)["total_bytes"]
        for _ in range(5):  # another process may create or replace the file between two of these steps
            bus = cls._take_over(name, path, n_joints, n_feet)
            if bus is not None:
                return bus
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
            except FileExistsError:
                continue
            try:
                _rtcore.bus_claim(fd, _rtcore.BUS_ROBOT, name)  # before anyone else can open it: ours
            except BaseException:
                os.close(fd)
                raise
            try:
                os.ftruncate(fd, size)
                segment = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            except BaseException:
                os.unlink(path)
                os.close(fd)
                raise
            _rtcore.bus_init(segment, n_joints, n_feet)
            return cls(name, segment, fd)
        raise RealTimeError(f"joint bus '{name}': {path} kept being created and removed by other processes")

    @classmethod
    def _take_over(cls, name: str, path: str, n_joints: int, n_feet: int) -> RobotBus | None:
        """An existing segment whose robot side is free: ours if compatible, else removed (None)."""
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            _rtcore.bus_claim(fd, _rtcore.BUS_ROBOT, name)
            segment = _map_compatible(fd, n_joints, n_feet)
            if segment is not None:
                return cls(name, segment, fd)
            # A different layout (or a half-made segment): replace it, unless a live controller uses it.
            _rtcore.bus_require_free(fd, _rtcore.BUS_CONTROLLER, name)
            os.unlink(path)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        return None

    @classmethod
    def attach(cls, name: str = "optimus_bus") -> RobotBus:
        """Own the robot side of an existing segment (e.g. after a restart of the robot process)."""
        path = _path(name)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            raise RealTimeError(f"joint bus '{name}' does not exist ({path}); create it with RobotBus.create") from None
        try:
            _rtcore.bus_claim(fd, _rtcore.BUS_ROBOT, name)
            size = os.fstat(fd).st_size
            segment = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            return cls(name, segment, fd)
        except BaseException:
            os.close(fd)
            raise

    def _segment(self) -> mmap.mmap:
        if self._mm is None or self._mm.closed:
            raise RealTimeError(f"joint bus '{self.name}' is closed")
        return self._mm

    # ---- robot -> controller ----------------------------------------------------------------------
    def publish_state(self, sim_time_s: float) -> int:
        """Copy the prepared state into the segment (seqlocked), bump and return the state tick, wake the controller."""
        return _rtcore.bus_publish_state(self._segment(), self._staging, float(sim_time_s))

    # ---- controller -> robot ----------------------------------------------------------------------
    def wait_command(self, tick: int, timeout_s: float) -> bool:
        """Block (GIL released, futex) until the controller answered ``tick``; False on timeout."""
        return _rtcore.bus_wait_command(self._segment(), int(tick), float(timeout_s))

    def read_command(self, out: np.ndarray | None = None) -> np.ndarray:
        """Latest commanded torques [N m | N] (consistent copy; zeros before any command)."""
        target = self._command if out is None else out
        _rtcore.bus_read_command(self._segment(), target)
        return target.copy() if out is None else target

    @property
    def command_tick(self) -> int:
        """The state tick the latest command answers, -1 before any command."""
        return _rtcore.bus_status(self._segment())["command_tick"]

    @property
    def controller_state(self) -> int:
        """The loop's state code (optimus_control.rt.LoopState: INIT, RUNNING, DAMPING, FAULT, STOPPED)."""
        return _rtcore.bus_status(self._segment())["controller_state"]

    @property
    def controller_fault(self) -> int:
        """The loop's reason code (optimus_control.rt.Reason), 0 when none."""
        return _rtcore.bus_status(self._segment())["controller_fault"]

    @property
    def controller_connected(self) -> bool:
        """A controller is attached and has answered (or reported alive) within the last 100 ms."""
        return self.controller()[0]

    def controller(self) -> tuple[bool, int, int, int]:
        """(connected, command_tick, controller_state, controller_fault) read at once (see the properties)."""
        s = _rtcore.bus_status(self._segment())
        connected = s["heartbeat_ns"] != 0 and s["now_ns"] - s["heartbeat_ns"] < CONNECTED_WITHIN_S * 1e9
        return connected, s["command_tick"], s["controller_state"], s["controller_fault"]

    # ---- lifetime ------------------------------------------------------------------------------------
    def close(self, unlink: bool = True) -> None:
        """Unmap the segment and give up the robot side; ``unlink`` also removes /dev/shm/<name> (the
        controller's mapping stays valid)."""
        if unlink and self._fd is not None:  # still ours: nobody else can have replaced the file
            try:
                os.unlink(_path(self.name))
            except FileNotFoundError:
                pass
        self._release()

    def _release(self) -> None:
        if self._mm is not None and not self._mm.closed:
            self._mm.close()
        self._mm = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        # A bus dropped without close() must not keep the robot side owned for the rest of the process.
        if getattr(self, "_fd", None) is not None:
            try:
                self._release()
            except Exception:  # interpreter shutdown: the process's exit releases the lock anyway
                pass

    def __enter__(self) -> RobotBus:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _map_compatible(fd: int, n_joints: int, n_feet: int) -> mmap.mmap | None:
    """The segment open on fd, mapped, if it is a valid bus of this layout; else None."""
    size = os.fstat(fd).st_size
    if size != _rtcore.bus_layout(n_joints, n_feet)["total_bytes"]:
        return None
    segment = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    try:
        if _rtcore.bus_check(segment) == (n_joints, n_feet):
            return segment
    except RealTimeError:
        pass
    segment.close()
    return None


def connect_transport(name: str, n_joints: int, n_feet: int, timeout_s: float = 10.0) -> ShmTransport:
    """Controller side: open the bus, waiting up to timeout_s for the robot side to create it.

    Retries every 50 ms while the segment is missing or not initialised yet; other mismatches (joint
    counts, layout version) fail at once, and so does a controller side owned by another live process
    (``BusInUseError``).
    """
    _path(name)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return ShmTransport(name, n_joints, n_feet)
        except RealTimeError as exc:
            waiting = "start the robot side first" in str(exc) or "bad magic" in str(exc) or "empty" in str(exc)
            if not waiting or time.monotonic() >= deadline:
                raise
        time.sleep(0.05)
