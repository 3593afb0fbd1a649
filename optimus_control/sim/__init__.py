"""The PyBullet simulated humanoid: physics, actuators and sensors, factory scenes, head camera, joint bus.

- ``world``: SimWorld (PyBullet client, robot under torque control, sensors, ground truth, pushes)
- ``actuators``: actuator/sensor model (effort limits, torque bandwidth, gear friction, encoder/IMU noise)
- ``scene_spec`` / ``furniture`` / ``scene_builder``: scene YAML files -> validated specs -> PyBullet bodies
- ``camera`` / ``render_process``: pinhole RGB-D rendering, in-thread or in a separate render process
- ``support_harness``: the safe hold while no controller drives the robot
- ``bus_server``: the robot side of the joint bus (lockstep and real-time)
- ``runner``: all of it as one stepping loop with outputs (used by the `sim` node)

No module here imports rclpy.
"""
