"""The settings schema of each node, by node name (the parameter tables and the shipped-values test use it)."""

from __future__ import annotations


def node_schemas() -> dict[str, type]:
    """node name -> settings class; its defaults are ``config/<node>.yaml``'s values."""
    from optimus_control.control.wbc_settings import WholeBodyControllerNodeSettings
    from optimus_control.hardware.hil import HilEmulatorSettings
    from optimus_control.perception.params import PerceptionNodeSettings
    from optimus_control.planning.node_settings import TaskPlannerSettings
    from optimus_control.sim.runner import SimSettings

    return {"sim": SimSettings, "whole_body_controller": WholeBodyControllerNodeSettings,
            "perception": PerceptionNodeSettings, "task_planner": TaskPlannerSettings,
            "hil_emulator": HilEmulatorSettings}
