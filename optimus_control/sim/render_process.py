"""Camera rendering in a separate process, so a 20-30 ms software render never stalls the 1 kHz physics.

The child process holds its own PyBullet client with the same robot and scene (built from the same
scene file and seed); for each frame the physics thread sends the robot configuration and object poses
of the tick to render, the child poses its mirror, renders and sends the images back. The frame is
stamped with the sim time of that tick, as a real camera stamps its exposure. On a 2-core machine the
render runs in parallel with the physics.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import traceback
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection

import numpy as np

from optimus_control.errors import SimulationError

START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class RenderJob:
    robot_config: str
    scene: str          # scene name/path, "" for the empty floor
    seed: int
    width: int
    height: int


def _child(conn, job: RenderJob) -> None:
    """Child process main: build the mirror world, then serve frame and rebuild requests."""
    try:
        from optimus_control.model import RobotModel
        from optimus_control.sim.camera import HeadCamera
        from optimus_control.sim.scene_builder import build_scene, clear_scene
        from optimus_control.sim.scene_spec import load_scene
        from optimus_control.sim.world import SimWorld

        robot = RobotModel.load(job.robot_config)
        world = SimWorld(robot)
        spec = load_scene(job.scene) if job.scene not in ("", "none") else None
        if spec is not None:
            build_scene(world, spec, job.seed)
        camera = HeadCamera.on_robot(world, robot.config.camera.intrinsics.scaled(job.width, job.height))
        import pybullet as pb

        conn.send(("ready", None))
        while True:
            msg = conn.recv()
            kind = msg[0]
            if kind == "stop":
                break
            if kind == "rebuild":
                if spec is not None:
                    build_scene(world, spec, int(msg[1]))
                else:
                    clear_scene(world)
                continue
            _, generation, time_s, q_full, objects = msg
            world.reset_robot(q_full)
            for oid, (pos, quat) in objects.items():
                body = world.objects.get(oid)
                if body is not None:
                    pb.resetBasePositionAndOrientation(body, pos, quat, physicsClientId=world.client)
            rgb, depth = camera.render()
            conn.send(("frame", (generation, time_s, rgb, depth)))
        world.close()
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        pass
    except Exception:
        try:
            conn.send(("error", traceback.format_exc()))
        except (BrokenPipeError, OSError):
            pass


class RenderProcess:
    """Asynchronous camera: ``submit`` a state, later ``poll`` the finished frame (one frame in flight)."""

    def __init__(self, job: RenderJob, idle_scheduling: bool = False):
        # A plain child interpreter (not multiprocessing's spawn, which re-runs the parent's __main__)
        # talking over two dedicated pipes (the child's stdout stays free for library chatter).
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        args = [sys.executable, "-m", "optimus_control.sim.render_process", str(to_child_r), str(from_child_w),
                *(str(v) for v in asdict(job).values())]
        self._proc = subprocess.Popen(args, pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        if idle_scheduling:  # a late frame is dropped in real time, a late physics step is not
            os.sched_setscheduler(self._proc.pid, os.SCHED_IDLE, os.sched_param(0))
        self._send_conn = Connection(to_child_w, readable=False)
        self._conn = Connection(from_child_r, writable=False)
        if not self._conn.poll(START_TIMEOUT_S):
            self.close()
            raise SimulationError(f"the camera render process did not start within {START_TIMEOUT_S:.0f} s")
        kind, payload = self._conn.recv()
        if kind != "ready":
            self.close()
            raise SimulationError(f"the camera render process failed to start:\n{payload}")
        self.generation = 0
        self.busy = False
        self.frames_dropped = 0

    def submit(self, time_s: float, q_full: np.ndarray, objects: dict) -> None:
        if self.busy:
            raise SimulationError("RenderProcess.submit: a frame is still being rendered")
        self._send(("frame", self.generation, time_s, q_full, objects))
        self.busy = True

    def _send(self, message: tuple) -> None:
        try:
            self._send_conn.send(message)
        except OSError as exc:  # BrokenPipeError: the child died
            raise SimulationError(f"the camera render process is gone (exit code {self._proc.poll()}): {exc}") from None

    def poll(self, timeout_s: float = 0.0) -> tuple[float, np.ndarray, np.ndarray] | None:
        """The finished frame (time_s, rgb, depth) if there is one (waits up to ``timeout_s``)."""
        try:
            if not self.busy or not self._conn.poll(timeout_s):
                return None
            kind, payload = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise SimulationError(f"the camera render process is gone (exit code {self._proc.poll()}): {exc!r}") from None
        self.busy = False
        if kind == "error":
            raise SimulationError(f"the camera render process failed:\n{payload}")
        generation, time_s, rgb, depth = payload
        if generation != self.generation:
            return None  # rendered before a scene reset
        return time_s, rgb, depth

    def rebuild(self, seed: int) -> None:
        """Mirror a scene reset (pending frames from before it are discarded)."""
        self.generation += 1
        self._send(("rebuild", int(seed)))

    def close(self) -> None:
        try:
            self._send_conn.send(("stop",))
        except (BrokenPipeError, OSError):
            pass
        # A frame the child is still writing (larger than the pipe's buffer) would block it until someone
        # reads: closing our end breaks that write, and the child ends at once instead of being killed.
        self._conn.close()
        try:
            self._proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5.0)
        self._send_conn.close()


def _main(argv: list[str]) -> None:
    # The parent owns this process: it ends on "stop" or when the pipe closes, not on the terminal's or
    # the launcher's SIGINT/SIGTERM (which would kill it under a still-running sim).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    read_fd, write_fd, robot_config, scene, seed, width, height = argv
    inbox, outbox = Connection(int(read_fd), writable=False), Connection(int(write_fd), readable=False)

    class _Duplex:  # the child reads requests from one pipe and answers on the other
        recv = staticmethod(inbox.recv)
        send = staticmethod(outbox.send)

    _child(_Duplex(), RenderJob(robot_config, scene, int(seed), int(width), int(height)))


if __name__ == "__main__":
    _main(sys.argv[1:])
