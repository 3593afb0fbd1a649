"""A launched stack (optimus-launch in its own session) and an rclpy probe on the test's ROS domain."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np

from optimus_control.launch.isolation import LaunchedStack, ros_env
from optimus_control.model import share_dir

REPO = Path(__file__).resolve().parents[2]
START_S = 150.0  # bring-up of a stack on a loaded 2-core machine: generous, never reached when things work


class Stack(LaunchedStack):
    """optimus-launch (or one node) in its own session, run from the repository; launch() takes a file name
    under the package's launch/."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path):
        super().__init__(cmd, env, log, cwd=REPO)

    @classmethod
    def launch(cls, file: str, domain_id: int, log: Path, *arguments: str) -> Stack:
        env = ros_env(domain_id) | {"ROS_LOG_DIR": str(log.parent / "ros_log")}
        return cls([sys.executable, "-m", "optimus_control.launch.cli", str(share_dir() / "launch" / file), *arguments],
                   env, log)


class Probe:
    """An rclpy node in its own context on the test's domain, spun by a background thread."""

    def __init__(self, domain_id: int, namespace: str = "/test_probe", args: list[str] | None = None,
                 use_sim_time: bool = False):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter

        self.context = rclpy.Context()
        self.context.init(args=args, domain_id=domain_id)
        self.node = rclpy.create_node("probe", namespace=namespace, context=self.context,
                                      parameter_overrides=[Parameter("use_sim_time", value=use_sim_time)])
        self.lock = threading.Lock()
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.1)
            except Exception:  # noqa: BLE001 - the context is shutting down
                break

    def latest(self, kind, topic: str, qos=10) -> dict:
        """Subscribe; the returned dict holds the last message under 'msg' and a count under 'n'."""
        box = {"msg": None, "n": 0}

        def keep(msg):
            with self.lock:
                box["msg"], box["n"] = msg, box["n"] + 1
        self.node.create_subscription(kind, topic, keep, qos)
        return box

    def wait(self, condition, timeout_s: float, what: str, stacks: tuple = ()) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if condition():
                    return
            for s in stacks:
                if s.proc.poll() is not None:
                    raise AssertionError(f"a launch ended while waiting for {what}:\n{s.output()[-4000:]}")
            time.sleep(0.1)
        logs = "\n".join(s.output()[-3000:] for s in stacks)
        raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{logs}")

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5.0)


def tilt_deg(o) -> float:
    """Tilt of an orientation (x, y, z, w attributes) from upright [deg]."""
    return float(np.degrees(np.arccos(np.clip(1 - 2 * (o.x * o.x + o.y * o.y), -1.0, 1.0))))


def reach_goal(robot, forward_m: float = 0.06, up_m: float = 0.04):
    """A first hand's goal (geometry_msgs/PoseStamped in the base frame): the start-up gripper pose moved
    ``forward_m`` forward and ``up_m`` up, same orientation."""
    import pinocchio as pin
    from geometry_msgs.msg import PoseStamped

    q0 = robot.standing_configuration()
    hand = robot.config.hands[0]
    in_base = robot.frame_placement(q0, robot.config.base_frame).inverse() * robot.frame_placement(q0, hand.gripper_frame)
    goal = PoseStamped()
    goal.header.frame_id = robot.config.base_frame
    p, o = goal.pose.position, goal.pose.orientation
    p.x, p.y, p.z = (in_base.translation + [forward_m, 0.0, up_m]).tolist()
    o.x, o.y, o.z, o.w = pin.Quaternion(in_base.rotation).coeffs().tolist()
    return goal
