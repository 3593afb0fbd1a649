"""Furniture as lists of primitive shapes (boxes and cylinders) in the furniture frame.

The furniture frame sits on the floor at the centre of the footprint, x along the length, z up. The
``top_height`` of a piece is where objects rest on it (for a bin: its inner floor).
"""

from __future__ import annotations

from dataclasses import dataclass

from optimus_control.sim.scene_spec import COLOURS, FurnitureSpec

LEG_SIDE_M = 0.05
TOP_THICKNESS_M = 0.04


@dataclass(frozen=True)
class Primitive:
    kind: str                                   # "box" | "cylinder_y" (axis along the furniture y)
    centre: tuple[float, float, float]          # [m] in the furniture frame
    half_extents: tuple[float, float, float]    # box half sizes; cylinder: (radius, half length, radius)
    rgba: tuple[float, float, float, float]
    collides: bool = True                       # False: drawn only (its collision is a simpler shape)
    visible: bool = True                        # False: collision only


def top_height(f: FurnitureSpec) -> float:
    """Height [m] above the floor at which objects placed "on" this furniture rest."""
    if f.type == "bin":
        return f.elevation + f.wall_thickness
    return f.elevation + f.size[2]


def primitives(f: FurnitureSpec) -> list[Primitive]:
    length, width, height = f.size
    hx, hy = length / 2, width / 2
    z0 = f.elevation
    out: list[Primitive] = []
    if z0 > 0:  # a pedestal the piece stands on
        out.append(Primitive("box", (0.0, 0.0, z0 / 2), (hx * 0.9, hy * 0.9, z0 / 2), COLOURS["dark_grey"]))
    if f.type in ("table", "conveyor", "roller_table"):
        leg_h = height - TOP_THICKNESS_M
        leg_half = (LEG_SIDE_M / 2, LEG_SIDE_M / 2, leg_h / 2)
        for sx in (-1, 1):
            for sy in (-1, 1):
                out.append(Primitive("box", (sx * (hx - LEG_SIDE_M / 2), sy * (hy - LEG_SIDE_M / 2), z0 + leg_h / 2),
                                     leg_half, COLOURS["steel"] if f.type != "table" else f.colour))
        top_z = z0 + height - TOP_THICKNESS_M / 2
        if f.type == "table":
            out.append(Primitive("box", (0.0, 0.0, top_z), (hx, hy, TOP_THICKNESS_M / 2), f.colour))
        elif f.type == "conveyor":
            # Steel frame with a dark belt on top (the belt does not move yet).
            out.append(Primitive("box", (0.0, 0.0, top_z - 0.005), (hx, hy, TOP_THICKNESS_M / 2 - 0.005), COLOURS["steel"]))
            out.append(Primitive("box", (0.0, 0.0, top_z + TOP_THICKNESS_M / 2 - 0.005), (hx, hy * 0.92, 0.005), f.colour))
        else:
            # Rollers across the width, drawn; their tops are flush with the table height. They do not
            # turn, so a flat invisible slab at their tops collides instead (box-on-cylinder contacts
            # cost ~10x a box-on-box contact in the physics step).
            radius, pitch = 0.015, 0.035
            n = max(2, int(length / pitch))
            for k in range(n):
                x = -hx + (k + 0.5) * length / n
                out.append(Primitive("cylinder_y", (x, 0.0, z0 + height - radius), (radius, hy * 0.95, radius), f.colour,
                                     collides=False))
            out.append(Primitive("box", (0.0, 0.0, z0 + height - radius), (hx, hy * 0.95, radius), f.colour, visible=False))
            for sy in (-1, 1):  # side frame members
                out.append(Primitive("box", (0.0, sy * hy * 0.975, z0 + height - 0.03), (hx, hy * 0.025, 0.03),
                                     COLOURS["steel"]))
    elif f.type == "shelf":
        post = (LEG_SIDE_M / 2, LEG_SIDE_M / 2, height / 2)
        for sx in (-1, 1):
            for sy in (-1, 1):
                out.append(Primitive("box", (sx * (hx - LEG_SIDE_M / 2), sy * (hy - LEG_SIDE_M / 2), z0 + height / 2),
                                     post, COLOURS["steel"]))
        board = 0.02
        for k in range(f.shelf_levels):
            z = z0 + height * (k + 1) / f.shelf_levels - board / 2
            out.append(Primitive("box", (0.0, 0.0, z), (hx, hy, board / 2), f.colour))
    elif f.type == "bin":
        t = f.wall_thickness
        out.append(Primitive("box", (0.0, 0.0, z0 + t / 2), (hx, hy, t / 2), f.colour))
        wall_z = z0 + height / 2
        out.append(Primitive("box", (hx - t / 2, 0.0, wall_z), (t / 2, hy, height / 2), f.colour))
        out.append(Primitive("box", (-hx + t / 2, 0.0, wall_z), (t / 2, hy, height / 2), f.colour))
        out.append(Primitive("box", (0.0, hy - t / 2, wall_z), (hx - t, t / 2, height / 2), f.colour))
        out.append(Primitive("box", (0.0, -hy + t / 2, wall_z), (hx - t, t / 2, height / 2), f.colour))
    return out
