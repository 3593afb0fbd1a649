"""ament_python package setup; also a plain pip-installable package with a C extension."""

import os
from glob import glob

from setuptools import Extension, find_packages, setup

PACKAGE = "optimus_control"
HERE = os.path.dirname(os.path.abspath(__file__))
RT_SRC = os.path.join(HERE, PACKAGE, "rt", "src")

# Absolute source paths: colcon builds from another working directory.
rt_sources = sorted(glob(os.path.join(RT_SRC, "*.c")))
ext_modules = []
if rt_sources:
    ext_modules.append(
        Extension(
            f"{PACKAGE}.rt._rtcore",
            sources=rt_sources,
            include_dirs=[RT_SRC],
            extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-math-errno"],
            libraries=["m", "pthread", "rt"],
        )
    )


def data(subdir: str, pattern: str = "*"):
    files = [f for f in glob(os.path.join(subdir, pattern)) if os.path.isfile(f)]
    return (os.path.join("share", PACKAGE, subdir), files)


ROS_VERSION = ">=5.5,<6"  # message packages of ROS 2 Kilted
setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "benchmarks", "tools"]),
    ext_modules=ext_modules,
    data_files=[
        ("share/ament_index/resource_index/packages", [os.path.join("resource", PACKAGE)]),
        (os.path.join("share", PACKAGE), ["package.xml"]),
        data("launch", "*.launch.xml"),
        data("urdf"),
        data("config", "*.yaml"),
        data("config/scenes", "*.yaml"),
        data("config/jobs", "*.yaml"),
        data("config/hardware", "*.yaml"),
        data("config/modes/lockstep", "*.yaml"),
        data("config/modes/realtime", "*.yaml"),
        data("config/modes/hardware", "*.yaml"),
        data("config/modes/hil", "*.yaml"),
    ],
    python_requires=">=3.10",
    install_requires=[
        "setuptools",
        "ros-kilted-rclpy>=9.1,<10",
        "ros-kilted-rmw-fastrtps-cpp>=9.3,<10",
        f"ros-kilted-std-msgs{ROS_VERSION}",
        f"ros-kilted-std-srvs{ROS_VERSION}",
        f"ros-kilted-sensor-msgs{ROS_VERSION}",
        f"ros-kilted-geometry-msgs{ROS_VERSION}",
        f"ros-kilted-nav-msgs{ROS_VERSION}",
        f"ros-kilted-diagnostic-msgs{ROS_VERSION}",
        f"ros-kilted-visualization-msgs{ROS_VERSION}",
        "ros-kilted-rosgraph-msgs>=2.3,<3",
        "pin>=3.4,<5",
        "pybullet>=3.2.6,<4",
        "numpy>=1.26,<3",
        "scipy>=1.11,<2",
        "pyyaml>=6,<7",
        "proxsuite>=0.6,<1",
        "opencv-python-headless>=4.9,<6",
        "py-trees>=2.2,<3",
        "matplotlib>=3.8,<4",
    ],
    extras_require={
        "test": ["pytest>=8,<10", "pytest-xdist>=3.5,<4", "wheel>=0.40", "ruff>=0.5", "colcon-common-extensions>=0.3,<1",
                 "daqp>=0.5,<1", "quadprog>=0.1.11,<1", "osqp>=0.6,<2", "qpsolvers>=4,<5",
                 "python-can>=4.3,<5", "pyserial>=3.5,<4"],
    },
    zip_safe=False,
    maintainer="optimus_control maintainers",
    maintainer_email="maintainers@optimus-control.invalid",
    description="Humanoid control stack on ROS 2: sim, 1 kHz C inverse dynamics, whole-body QP, perception, planning",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sim = optimus_control.nodes.sim:main",
            "whole_body_controller = optimus_control.nodes.whole_body_controller:main",
            "perception = optimus_control.nodes.perception:main",
            "task_planner = optimus_control.nodes.task_planner:main",
            "hil_emulator = optimus_control.nodes.hil_emulator:main",
            "optimus-launch = optimus_control.launch.cli:main",
            "optimus-lifecycle = optimus_control.nodes.lifecycle_cli:main",
            "optimus-hw = optimus_control.hardware.cli:main",
            # one executable per node, installed in lib/optimus_control by setup.cfg (ros2 run layout)
        ],
    },
)
