"""One thread per numerical library in this stack's processes.

The matrices here are small (a 70-variable QP, 320x240 images): a BLAS or OpenMP pool buys nothing
on them, and its worker threads spin while they wait for work. In the lockstep demo on a 2-core machine
the controller node burnt 3.8 CPU-seconds per simulated second that way, starving the simulator it
waits for; and the thread count made episodes depend on the load (two runs of one seed diverged).
This module must not import numpy: the variables only count when set before the libraries load.
"""

from __future__ import annotations

import os

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENCV_FOR_THREADS_NUM")


def single_threaded_numerics() -> None:
    """Default every thread-count variable to 1 (a value already in the environment wins)."""
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
