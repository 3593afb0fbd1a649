"""Perception: processing time per 320x240 RGB-D frame, the whole pipeline as the node runs it.

Frames are rendered by the simulator (head camera, robot arms in view) from seeded scenes with 3-8
boxes on a table; each frame is processed (state lookup, camera pose, self-filter, planes,
segmentation, fits, tracking) in a loop. Judged by: median and p99 <= 20 ms per frame on
the 2-core machine. Other processes share the 2 cores, so the wall time per frame includes waiting
for a core: the verdict is on the process CPU time per frame (what the pipeline itself costs), and
the wall time is printed next to it with the load average.
Environment: OPTIMUS_BENCH_PERCEPTION_FRAMES (default 400 timed frames).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import cv2
import numpy as np

from optimus_control.model import RobotModel
from optimus_control.perception.pipeline import PerceptionPipeline

TARGET_MS = 20.0
SCENE_YAML = """
scene: {name: perception_bench, description: Boxes of several sizes on a table in front of the robot.}
robot: {position: [0.0, 0.0], yaw_deg: 0.0}
furniture:
  - {name: table, type: table, position: [1.05, 0.0], size: [0.8, 1.3, 0.75], colour: wood}
regions:
  - {name: top, furniture: table, x: [-0.3, 0.28], y: [-0.45, 0.45]}
boxes:
  - {name: small, region: top, count: [1, 2], size: [0.06, 0.05, 0.05], mass: 0.1, colours: [red, blue], yaw_deg: [-90, 90]}
  - {name: brick, region: top, count: [1, 2], size: [0.14, 0.08, 0.09], mass: 0.3, colours: [yellow, orange], yaw_deg: [-90, 90]}
  - {name: flat, region: top, count: [1, 2], size: [0.2, 0.13, 0.05], mass: 0.3, colours: [purple, red], yaw_deg: [-90, 90]}
  - {name: cube, region: top, count: [0, 2], size: [0.1, 0.1, 0.1], mass: 0.3, colours: [blue, green], yaw_deg: [-90, 90]}
"""


def render_frames(n_scenes: int) -> tuple[RobotModel, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """(robot, [(q, rgb, depth)]) from seeded sim scenes."""
    from optimus_control.sim.camera import HeadCamera
    from optimus_control.sim.scene_builder import build_scene
    from optimus_control.sim.scene_spec import load_scene
    from optimus_control.sim.world import SimWorld

    robot = RobotModel.load()
    world = SimWorld(robot)
    head = HeadCamera.on_robot(world)
    frames = []
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "perception_bench.yaml"
        path.write_text(SCENE_YAML)
        spec = load_scene(path)
        for seed in range(n_scenes):
            built = build_scene(world, spec, seed)
            q = built.robot_q.copy()
            q[7 + robot.joint_index("neck_pitch")] = 0.62 + 0.16 * np.random.default_rng(seed).random()
            world.reset_robot(q)
            rgb, depth = head.render()
            frames.append((q, rgb, depth))
    world.close()
    return robot, frames


def main() -> None:
    cv2.setNumThreads(1)  # as the node does
    n_timed = int(os.environ.get("OPTIMUS_BENCH_PERCEPTION_FRAMES", "400"))
    robot, frames = render_frames(20)
    pipeline = PerceptionPipeline(robot, robot.config.camera.intrinsics)
    times, cpu_times, stages, n_det = [], [], {}, []
    t_img = 0.0
    for k in range(n_timed + 20):
        q, rgb, depth = frames[k % len(frames)]
        t_img += 0.1
        pipeline.state.add_joint_state(t_img, robot.joint_names, q[7:])
        pipeline.state.add_base_pose(t_img, q[:3], q[3:7])
        start, cpu_start = time.perf_counter(), time.process_time()
        out = pipeline.process(rgb, depth, t_img)
        elapsed_ms = 1e3 * (time.perf_counter() - start)
        cpu_ms = 1e3 * (time.process_time() - cpu_start)
        if k < 20:
            continue  # warm-up (first calls allocate and fill caches)
        times.append(elapsed_ms)
        cpu_times.append(cpu_ms)
        n_det.append(len(out.detections))
        for name, ms in out.stage_ms.items():
            stages.setdefault(name, []).append(ms)
    t = np.array(times)
    load = os.getloadavg()
    print(f"perception pipeline, 320x240 sim frames ({len(frames)} scenes, {np.mean(n_det):.1f} detections/frame, "
          f"robot self-filter on), {len(t)} frames timed")
    print(f"  load average (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    print(f"  per frame [ms]: median {np.median(t):.2f}  p90 {np.percentile(t, 90):.2f}  p99 {np.percentile(t, 99):.2f}  "
          f"max {t.max():.2f}")
    c = np.array(cpu_times)
    print(f"  CPU time per frame [ms] (what the pipeline costs, without waiting for a core): median {np.median(c):.2f}  "
          f"p90 {np.percentile(c, 90):.2f}  p99 {np.percentile(c, 99):.2f}  max {c.max():.2f}")
    print("  stages, median wall [ms]: " + "  ".join(f"{k} {np.median(v):.2f}" for k, v in stages.items()))
    for name, values in (("CPU", c), ("wall", t)):
        med, p99 = np.median(values), np.percentile(values, 99)
        verdict = "PASS" if med <= TARGET_MS and p99 <= TARGET_MS else "FAIL"
        print(f"  target ({name}): median {med:.2f} and p99 {p99:.2f} ms <= {TARGET_MS:.0f} ms -> {verdict}"
              + ("  (judged)" if name == "CPU" else "  (depends on the machine's load)"))


if __name__ == "__main__":
    main()
