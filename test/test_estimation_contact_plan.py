"""A robot without foot force/torque sensors: the estimator takes its contacts from the controller's plan
(ControlStep(contacts_from_plan=True), what the node does on hardware without ``foot_wrench_input``).
Lockstep sim; ground truth for evaluation only."""

from __future__ import annotations

import numpy as np
import pinocchio as pin
import pytest

from optimus_control.control import ControllerState
from optimus_control.control.lockstep_runner import LockstepRunner
from optimus_control.sim.world import SimWorld

pytestmark = pytest.mark.sim

FORWARD_GRASP = np.column_stack([[0, 0, 1], [0, 1, 0], [-1, 0, 0]]).astype(float)


def test_planned_contacts_keep_the_estimate_on_ground_truth_while_standing_and_reaching(robot):
    world = SimWorld(robot)
    try:
        runner = LockstepRunner(world, robot, contacts_from_plan=True)
        step = runner.control_step
        assert np.allclose(step.planned_foot_wrench[:, 2], robot.total_mass * 9.81 / len(robot.config.feet))
        errors, heights = [], []

        def record(r: LockstepRunner) -> None:
            if r.tick % 20 == 0:
                gt = world.ground_truth()
                errors.append(np.linalg.norm(r.base.position_m[2] - gt.base_position[2]))
                heights.append(gt.base_position[2])

        runner.start()
        runner.run(3.0, record)
        ctl = runner.controller
        report = ctl.set_hand_target("left", pin.SE3(FORWARD_GRASP, np.array([0.38, 0.25, 1.0])))
        runner.run(report.duration_s + 2.0, record)
        assert ctl.state is ControllerState.RUNNING
        assert ctl.status().tasks["hand_left"].position_error_m < 0.01
        assert max(errors) < 0.01, max(errors)                 # base height estimate vs ground truth [m]
        assert min(heights) > heights[0] - 0.05                # no fall, no sag
        assert np.all(runner.base.contacts)                    # both feet anchored, as planned
        # the plan is what the estimator saw: both feet loaded, together carrying the robot's weight
        assert abs(step.planned_foot_wrench[:, 2].sum() - robot.total_mass * 9.81) < 0.2 * robot.total_mass * 9.81
    finally:
        world.close()
