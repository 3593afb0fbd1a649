"""``optimus-lifecycle NODE TRANSITION``: drive a managed node's lifecycle (``ros2 lifecycle set`` without
ros2cli, which has no wheels here). ``optimus-lifecycle whole_body_controller activate`` asks the node in the
current ROS domain; ``get`` prints its state. Exit status 0 when the transition succeeded, 1 when the node
refused it (its log says why), 2 when the node could not be reached.
"""

from __future__ import annotations

import argparse
import sys
import time

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState

TRANSITIONS = {"configure": Transition.TRANSITION_CONFIGURE, "cleanup": Transition.TRANSITION_CLEANUP,
               "activate": Transition.TRANSITION_ACTIVATE, "deactivate": Transition.TRANSITION_DEACTIVATE,
               "shutdown": Transition.TRANSITION_UNCONFIGURED_SHUTDOWN}


def _call(node, client, request, timeout_s: float, spin: bool):
    """The service's answer, None on timeout. ``spin``: spin ``node`` here; False when an executor spins it."""
    import rclpy

    if not client.wait_for_service(timeout_sec=timeout_s):
        return None
    future = client.call_async(request)
    if spin:
        rclpy.spin_until_future_complete(node, future, timeout_sec=timeout_s)
    else:
        deadline = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
    return future.result() if future.done() else None


def get_state(node, target: str, timeout_s: float = 10.0, spin: bool = True) -> str | None:
    """The label of ``target``'s lifecycle state ('unconfigured', 'inactive', 'active', ...), None if unreachable."""
    client = node.create_client(GetState, f"{target}/get_state")
    try:
        result = _call(node, client, GetState.Request(), timeout_s, spin)
        return None if result is None else result.current_state.label
    finally:
        node.destroy_client(client)


def change_state(node, target: str, transition: str, timeout_s: float = 30.0, spin: bool = True) -> bool | None:
    """Ask ``target`` (a node name, resolved in ``node``'s namespace) for a transition by label; True when it
    succeeded, False when refused, None when the node did not answer within ``timeout_s``. The shutdown
    transition is taken from whatever primary state the node is in."""
    if transition not in TRANSITIONS:
        raise ValueError(f"unknown transition '{transition}'; one of {sorted(TRANSITIONS)}")
    tid = TRANSITIONS[transition]
    if transition == "shutdown":
        state = get_state(node, target, timeout_s, spin)
        tid = {"inactive": Transition.TRANSITION_INACTIVE_SHUTDOWN,
               "active": Transition.TRANSITION_ACTIVE_SHUTDOWN}.get(state, tid)
    client = node.create_client(ChangeState, f"{target}/change_state")
    try:
        request = ChangeState.Request()
        request.transition.id = tid
        result = _call(node, client, request, timeout_s, spin)
        return None if result is None else bool(result.success)
    finally:
        node.destroy_client(client)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="optimus-lifecycle", description=__doc__.split("\n\n")[0])
    parser.add_argument("node", help="node name, e.g. whole_body_controller or /r1/whole_body_controller")
    parser.add_argument("transition", choices=["get", *TRANSITIONS])
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the node [s]")
    args = parser.parse_args(argv)
    import rclpy

    rclpy.init()
    node = rclpy.create_node("optimus_lifecycle_cli")
    try:
        if args.transition == "get":
            state = get_state(node, args.node, args.timeout)
            print(state or f"{args.node}: no answer within {args.timeout:g} s")
            return 0 if state else 2
        ok = change_state(node, args.node, args.transition, args.timeout)
        after = get_state(node, args.node, 5.0)
        if ok is None:
            print(f"{args.node}: no answer within {args.timeout:g} s (is it running, in this ROS domain?)")
            return 2
        print(f"{args.transition} {'succeeded' if ok else 'refused (see the node log)'}; now {after}")
        return 0 if ok else 1
    finally:
        node.destroy_node()
        rclpy.shutdown()


if __name__ == "__main__":
    sys.exit(main())
