"""The ROS 2 nodes: thin adapters from topics to the libraries.

Importing the package (every node's entry point does, before numpy loads) caps the numerical
libraries at one thread each: see :mod:`optimus_control.numerics`.
"""

from optimus_control.numerics import single_threaded_numerics

single_threaded_numerics()
