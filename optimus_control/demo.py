"""`make demo`: the most complete scenario the stack runs end to end, with what it measured.

Today: the humanoid stands in the PyBullet simulation under a joint-space PD posture hold for 10 s of
simulated time; the demo prints base height and tilt, foot load sharing and the real-time factor.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from optimus_control.model import RobotModel
from optimus_control.sim.world import SimWorld


def _tilt_deg(quat_xyzw: np.ndarray) -> float:
    x, y, z, w = quat_xyzw
    up_z = 1.0 - 2.0 * (x * x + y * y)  # z component of the body z axis in the world
    return float(np.degrees(np.arccos(np.clip(up_z, -1.0, 1.0))))


def run_standing(duration_s: float = 10.0) -> int:
    robot = RobotModel.load()
    print(f"robot: {robot.config.name}, {robot.total_mass:.1f} kg, {robot.n_joints} actuated joints "
          f"({robot.urdf_path})")
    q_ref = robot.standing_joint_positions()
    with SimWorld(robot) as world:
        steps = int(duration_s / world.params.time_step_s)
        start = time.perf_counter()
        heights, tilts = [], []
        for k in range(steps):
            sensors = world.read_sensors()
            world.step(robot.kp * (q_ref - sensors.q) - robot.kd * sensors.v)
            if k % 100 == 0:
                truth = world.ground_truth()  # evaluation only
                heights.append(truth.base_position[2])
                tilts.append(_tilt_deg(truth.base_orientation_xyzw))
            if k % 2000 == 0:
                print(f"  t={world.time_s:5.1f} s  base height {heights[-1]:.3f} m  tilt {tilts[-1]:.2f} deg  "
                      f"foot Fz {sensors.foot_wrench[:, 2].round(1).tolist()} N")
        wall = time.perf_counter() - start
    fell = min(heights) < 0.7 or max(tilts) > 20.0
    print(f"stood {duration_s:.0f} s sim in {wall:.1f} s wall (real-time factor {duration_s / wall:.2f}); "
          f"base height {np.mean(heights):.3f} m (range {np.ptp(heights) * 1000:.1f} mm), max tilt {max(tilts):.2f} deg, "
          f"{'FELL' if fell else 'no fall'}")
    return 1 if fell else 0


def main() -> None:
    sys.exit(run_standing())


if __name__ == "__main__":
    main()
