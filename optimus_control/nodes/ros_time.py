"""Seconds <-> builtin_interfaces/Time, the one conversion every node and the demo monitor use."""

from __future__ import annotations

from builtin_interfaces.msg import Time

NS_PER_S = 1_000_000_000


def stamp_to_s(stamp) -> float:
    """Seconds of a ``builtin_interfaces/Time`` (or anything with ``sec`` and ``nanosec``)."""
    return stamp.sec + 1e-9 * stamp.nanosec


def s_to_stamp(time_s: float) -> Time:
    """The ``builtin_interfaces/Time`` of ``time_s`` [s], rounded to the nearest nanosecond (never
    ``nanosec`` == 1e9: a time just below a whole second rounds up to it)."""
    ns = int(round(time_s * 1e9))
    return Time(sec=ns // NS_PER_S, nanosec=ns % NS_PER_S)


def clock_now_s(node) -> float:
    """The node's clock (sim time under ``use_sim_time``) now [s]; 0 before a simulated clock started."""
    return node.get_clock().now().nanoseconds * 1e-9
