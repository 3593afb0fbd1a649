"""The nodes' shared parameter helper on a real rclpy node: strict overrides, typed described parameters."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")

from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from optimus_control.control.wbc_settings import WholeBodyControllerNodeSettings  # noqa: E402
from optimus_control.errors import ConfigError  # noqa: E402
from optimus_control.nodes.parameters import declare_settings  # noqa: E402
from optimus_control.planning.node_settings import TaskPlannerSettings  # noqa: E402
from optimus_control.sim.runner import SimSettings  # noqa: E402


@pytest.fixture(scope="module")
def context(ros_domain_id):
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=ros_domain_id)
    yield ctx
    rclpy.shutdown(context=ctx)


def _node(context, name: str, **overrides) -> Node:
    return Node(name, context=context, start_parameter_services=False,
                parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])


def test_overrides_are_converted_and_every_leaf_is_declared_with_its_description(context):
    node = _node(context, "whole_body_controller", rate_hz=500, use_sim_time=True,
                 **{"tasks.com.kp": 70, "joint_limit_margins_rad.l_elbow": 0.3})
    try:
        s = declare_settings(node, WholeBodyControllerNodeSettings)
        assert (s.rate_hz, s.tasks.com.kp, s.joint_limit_margins_rad["l_elbow"]) == (500.0, 70.0, 0.3)
        assert node.get_parameter("rate_hz").value == 500.0
        assert node.get_parameter("tasks.hands.kp").value == 150.0
        assert node.get_parameter("joint_limit_margins_rad.r_elbow").value == 0.25
        descriptor = node.describe_parameter("publish_rate_hz")
        assert descriptor.type == Parameter.Type.DOUBLE.value and "[Hz]" in descriptor.description
    finally:
        node.destroy_node()


def test_empty_lists_and_tuples_are_declared_with_their_type(context):
    node = _node(context, "task_planner")
    try:
        s = declare_settings(node, TaskPlannerSettings)
        assert node.get_parameter("class_map").value == [] and s.class_renames == {}
        assert node.describe_parameter("class_map").type == Parameter.Type.STRING_ARRAY.value
        assert list(node.get_parameter("grasp.rest_offset_m").value) == [-0.15, 0.10, 0.0]
        assert not node.has_parameter("grasp.max_finger_opening_m")  # from the robot config, not a parameter
    finally:
        node.destroy_node()


@pytest.mark.parametrize("overrides, message", [
    ({"camera_rendr": "thread"}, "unknown parameter 'camera_rendr' (did you mean 'camera_render'?)"),
    ({"actuator.torque_noise_std": 0.1}, "did you mean 'actuator.torque_noise_std_nm'"),
    ({"seed": "three"}, "seed: expected an integer, got 'three'"),
])
def test_bad_overrides_stop_the_node(context, overrides, message):
    node = _node(context, "sim", **overrides)
    try:
        with pytest.raises(ConfigError) as info:
            declare_settings(node, SimSettings)
        assert message in str(info.value) and "/sim parameters" in str(info.value)
    finally:
        node.destroy_node()
