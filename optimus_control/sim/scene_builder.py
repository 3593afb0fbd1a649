"""Builds a validated scene into a SimWorld: furniture bodies, seeded box placement, overlap checks.

Randomisation (box count, position in the region or free slot of the region plus jitter, yaw, colour)
comes from one numpy generator seeded with the scene seed, consumed in file order, so the same seed
always gives the same scene. Overlaps
are checked with PyBullet's own collision geometry (works for meshes too): any penetration deeper
than 1 mm between a box and furniture, another box or the robot is an error naming the file and entry.
A box group's ``min_gap`` keeps its boxes that far from every box placed before them: fingers need room
around a box to grasp it, and touching boxes of one colour would look like one object to a camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pinocchio as pin
import pybullet as pb

from optimus_control.errors import ConfigError
from optimus_control.sim.furniture import primitives, top_height
from optimus_control.sim.scene_spec import FurnitureSpec, SceneSpec
from optimus_control.sim.world import SimWorld

PENETRATION_TOLERANCE_M = 1e-3
DROP_CLEARANCE_M = 5e-4      # boxes start this far above their support, then settle
PLACEMENT_TRIES = 200


@dataclass(frozen=True)
class SceneObject:
    """A movable object of the scene (ground truth identity, for evaluation)."""

    id: int
    name: str                # e.g. "box_2"
    group: str
    colour: str
    rgba: tuple[float, float, float, float]
    size: tuple[float, float, float]
    mass: float


@dataclass
class BuiltScene:
    spec: SceneSpec
    seed: int
    objects: list[SceneObject]
    robot_q: np.ndarray            # the robot's start configuration (standing at the scene's robot pose)
    furniture_ids: dict[str, list[int]]   # furniture name -> its PyBullet bodies


def _yaw_quat(yaw_rad: float) -> list[float]:
    return [0.0, 0.0, math.sin(yaw_rad / 2), math.cos(yaw_rad / 2)]


MAX_SHAPES_PER_BODY = 12  # PyBullet's shape arrays crash beyond a small size: split big furniture


def _furniture_bodies(world: SimWorld, f: FurnitureSpec) -> list[int]:
    c = world.client
    yaw = math.radians(f.yaw_deg)
    pose = dict(basePosition=[f.position[0], f.position[1], 0.0], baseOrientation=_yaw_quat(yaw))
    if f.mesh is not None:
        col = pb.createCollisionShape(pb.GEOM_MESH, fileName=str(f.mesh), meshScale=list(f.mesh_scale), physicsClientId=c)
        vis = pb.createVisualShape(pb.GEOM_MESH, fileName=str(f.mesh), meshScale=list(f.mesh_scale), rgbaColor=list(f.colour),
                                   physicsClientId=c)
        if col < 0:
            raise ConfigError(f"{f.where}.mesh: PyBullet cannot load mesh {f.mesh}")
        bodies = [pb.createMultiBody(0, col, vis, physicsClientId=c, **pose)]
    else:
        prims = primitives(f)
        colliding = [p for p in prims if p.collides]
        drawn = [p for p in prims if p.visible]
        n = MAX_SHAPES_PER_BODY
        bodies = [_primitives_body(c, colliding[i:i + n], drawn[i:i + n], pose)
                  for i in range(0, max(len(colliding), len(drawn)), n)]
    for body in bodies:
        pb.changeDynamics(body, -1, lateralFriction=f.friction, physicsClientId=c)
    return bodies


def _shape_arrays(prims) -> dict:
    cyl_rot = list(pb.getQuaternionFromEuler([math.pi / 2, 0.0, 0.0]))  # cylinder z axis -> furniture y
    return dict(
        shapeTypes=[pb.GEOM_BOX if p.kind == "box" else pb.GEOM_CYLINDER for p in prims],
        halfExtents=[list(p.half_extents) if p.kind == "box" else [0, 0, 0] for p in prims],
        radii=[p.half_extents[0] if p.kind != "box" else 0.0 for p in prims],
        lengths=[2 * p.half_extents[1] if p.kind != "box" else 0.0 for p in prims],
        positions=[list(p.centre) for p in prims],
        orientations=[[0, 0, 0, 1] if p.kind == "box" else cyl_rot for p in prims],
    )


def _primitives_body(c: int, colliding, drawn, pose: dict) -> int:
    """One static body from up to MAX_SHAPES_PER_BODY collision and visual primitives."""
    col = vis = -1
    if colliding:
        a = _shape_arrays(colliding)
        col = pb.createCollisionShapeArray(a["shapeTypes"], halfExtents=a["halfExtents"], radii=a["radii"],
                                           lengths=a["lengths"], collisionFramePositions=a["positions"],
                                           collisionFrameOrientations=a["orientations"], physicsClientId=c)
    if drawn:
        a = _shape_arrays(drawn)
        vis = pb.createVisualShapeArray(a["shapeTypes"], halfExtents=a["halfExtents"], radii=a["radii"],
                                        lengths=a["lengths"], rgbaColors=[list(p.rgba) for p in drawn],
                                        visualFramePositions=a["positions"], visualFrameOrientations=a["orientations"],
                                        physicsClientId=c)
    return pb.createMultiBody(0, col, vis, physicsClientId=c, **pose)


def _penetrating(world: SimWorld, body: int, others: list[int]) -> int | None:
    """The first body in ``others`` that ``body`` penetrates by more than the tolerance, else None."""
    for other in others:
        pts = pb.getClosestPoints(body, other, distance=0.0, physicsClientId=world.client)
        if any(p[8] < -PENETRATION_TOLERANCE_M for p in pts):
            return other
    return None


def _too_close(world: SimWorld, body: int, others: list[int], gap_m: float) -> int | None:
    """The first body in ``others`` nearer to ``body`` than ``gap_m`` (1 mm tolerance), else None."""
    if gap_m <= 0.0:
        return None
    for other in others:
        pts = pb.getClosestPoints(body, other, distance=gap_m, physicsClientId=world.client)
        if any(p[8] < gap_m - PENETRATION_TOLERANCE_M for p in pts):
            return other
    return None


def _draw_colours(rng: np.random.Generator, count: int, n_colours: int, min_colours: int) -> list[int]:
    """Colour indices of a group's boxes: independent draws, then (if too few colours came up) a random
    set of boxes recoloured with ``min_colours`` different colours."""
    picks = rng.integers(n_colours, size=count)
    if count and len(set(picks.tolist())) < min_colours:
        picks[rng.choice(count, min_colours, replace=False)] = rng.choice(n_colours, min_colours, replace=False)
    return [int(i) for i in picks]


def robot_start_configuration(world: SimWorld, spec: SceneSpec) -> np.ndarray:
    """The standing configuration moved to the scene's robot position and yaw."""
    q = world.robot.standing_configuration().copy()
    yaw = math.radians(spec.robot_yaw_deg)
    rot = pin.utils.rpyToMatrix(0.0, 0.0, yaw)
    q[:3] = rot @ q[:3] + np.array([spec.robot_position[0], spec.robot_position[1], 0.0])
    base = pin.Quaternion(q[6], q[3], q[4], q[5]).toRotationMatrix()
    q[3:7] = pin.Quaternion(rot @ base).coeffs()
    return q


def clear_scene(world: SimWorld) -> None:
    """Remove the furniture and objects of a previously built scene."""
    for body in list(world.objects.values()) + list(world.static_bodies):
        pb.removeBody(body, physicsClientId=world.client)
    world.objects.clear()
    world.static_bodies.clear()
    world.scene = None


def build_scene(world: SimWorld, spec: SceneSpec, seed: int = 0) -> BuiltScene:
    """Add the scene to the world and put the robot at its start pose; replaces any previous scene."""
    clear_scene(world)
    c, src = world.client, spec.source
    robot_q = robot_start_configuration(world, spec)
    world.reset_robot(robot_q)
    pb.performCollisionDetection(physicsClientId=c)

    furniture_ids: dict[str, list[int]] = {}
    owner: dict[int, str] = {}
    for f in spec.furniture:
        bodies = _furniture_bodies(world, f)
        others = [b for b in world.static_bodies]
        world.static_bodies.extend(bodies)
        furniture_ids[f.name] = bodies
        for body in bodies:
            owner[body] = f.name
            if _penetrating(world, body, [world.robot_id]) is not None:
                raise ConfigError(f"{src}: {f.where}: overlaps the robot standing at {list(spec.robot_position)}")
            hit = _penetrating(world, body, others)
            if hit is not None:
                raise ConfigError(f"{src}: {f.where}: overlaps furniture '{owner[hit]}'")

    rng = np.random.default_rng(seed)
    by_name = {f.name: f for f in spec.furniture}
    regions = {r.name: r for r in spec.regions}
    for r in spec.regions:
        f = by_name[r.on]
        hx, hy = f.size[0] / 2, f.size[1] / 2
        if r.x[0] < -hx or r.x[1] > hx or r.y[0] < -hy or r.y[1] > hy:
            raise ConfigError(f"{src}: {r.where}: x {list(r.x)}, y {list(r.y)} reaches outside the top of '{f.name}' "
                              f"(x in [{-hx:g}, {hx:g}], y in [{-hy:g}, {hy:g}])")

    objects: list[SceneObject] = []
    placed: list[int] = []
    free_slots = {r.name: r.slot_centres() for r in spec.regions}  # slotted regions: slots not taken yet
    for group in spec.boxes:
        count = int(rng.integers(group.count[0], group.count[1] + 1))
        half = [s / 2 for s in group.size]
        # With min_colours the group's colours are drawn up front; otherwise one draw per box, interleaved
        # with its placement (the order older scene files and their seeds were made with).
        dealt = _draw_colours(rng, count, len(group.colours), group.min_colours) if group.min_colours > 1 else None
        for k in range(count):
            colour_index = dealt[k] if dealt is not None else int(rng.integers(len(group.colours)))
            colour_name, rgba = group.colours[colour_index]
            col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=c)
            vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=list(rgba), physicsClientId=c)
            # Maximal coordinates: a free box as a plain rigid body is cheaper to step than a multibody.
            body = pb.createMultiBody(group.mass, col, vis, basePosition=[0, 0, -10], useMaximalCoordinates=True,
                                      physicsClientId=c)
            pb.changeDynamics(body, -1, lateralFriction=group.friction, spinningFriction=0.001, rollingFriction=0.0,
                              restitution=0.0, physicsClientId=c)
            obstacles = [world.robot_id, *world.static_bodies, *placed]
            entry = f"{group.where} (box {k + 1} of {count})"
            if group.position is not None:
                pos = list(group.position)
                yaw = math.radians(float(rng.uniform(*group.yaw_deg)))
                pb.resetBasePositionAndOrientation(body, pos, _yaw_quat(yaw), physicsClientId=c)
                hit = _penetrating(world, body, obstacles)
                if hit is not None:
                    raise ConfigError(f"{src}: {entry}: at {pos} it overlaps {_describe(world, hit, furniture_ids, objects)}")
                hit = _too_close(world, body, placed, group.min_gap)
                if hit is not None:
                    raise ConfigError(f"{src}: {entry}: at {pos} it is closer than min_gap {group.min_gap:g} m to "
                                      f"{_describe(world, hit, furniture_ids, objects)}")
            else:
                region = regions[group.region]  # type: ignore[index]
                f = by_name[region.on]
                fyaw = math.radians(f.yaw_deg)
                cf, sf = math.cos(fyaw), math.sin(fyaw)
                z = top_height(f) + half[2] + DROP_CLEARANCE_M
                last_hit = None
                free = free_slots[region.name]
                if region.slots is not None and not free:
                    raise ConfigError(f"{src}: {entry}: all {len(region.slot_centres())} slots of region "
                                      f"'{region.name}' are taken; give the region more slots or the boxes a smaller count")
                for _ in range(PLACEMENT_TRIES):
                    if region.slots is not None:
                        slot = int(rng.integers(len(free)))
                        x = free[slot][0] + float(rng.uniform(-region.jitter[0], region.jitter[0]))
                        y = free[slot][1] + float(rng.uniform(-region.jitter[1], region.jitter[1]))
                    else:
                        x, y = float(rng.uniform(*region.x)), float(rng.uniform(*region.y))
                    yaw = fyaw + math.radians(float(rng.uniform(*group.yaw_deg)))
                    pos = [f.position[0] + cf * x - sf * y, f.position[1] + sf * x + cf * y, z]
                    pb.resetBasePositionAndOrientation(body, pos, _yaw_quat(yaw), physicsClientId=c)
                    support = furniture_ids[f.name]
                    last_hit = _penetrating(world, body, [b for b in obstacles if b not in support])
                    if last_hit is None:
                        last_hit = _too_close(world, body, placed, group.min_gap)
                    if last_hit is None and _penetrating(world, body, support) is None:
                        if region.slots is not None:
                            free.pop(slot)
                        break
                else:
                    what = _describe(world, last_hit, furniture_ids, objects) if last_hit is not None else "nothing"
                    raise ConfigError(
                        f"{src}: {entry}: no free spot in region '{region.name}' after {PLACEMENT_TRIES} tries "
                        f"(box {list(group.size)} m, min_gap {group.min_gap:g} m; last try overlapped or came too close "
                        f"to {what}); "
                        "make the region larger, the count or min_gap smaller")
            oid = len(objects)
            world.objects[oid] = body
            placed.append(body)
            objects.append(SceneObject(oid, f"{group.name}_{k}", group.name, colour_name, tuple(rgba), group.size, group.mass))
    built = BuiltScene(spec, seed, objects, robot_q, furniture_ids)
    world.scene = built
    return built


def _describe(world: SimWorld, body: int, furniture_ids: dict[str, list[int]], objects: list[SceneObject]) -> str:
    if body == world.robot_id:
        return "the robot"
    for name, bodies in furniture_ids.items():
        if body in bodies:
            return f"furniture '{name}'"
    for obj in objects:
        if world.objects.get(obj.id) == body:
            return f"box '{obj.name}'"
    return f"body {body}"
