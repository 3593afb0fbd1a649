"""The lock-free reference channel (triple buffer) never yields a torn or an older read."""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
import sysconfig
import threading
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from optimus_control.rt import TripleBuffer, _rtcore

REPO = Path(__file__).resolve().parents[1]
RT_SRC = REPO / "optimus_control" / "rt" / "src"


@pytest.fixture(scope="session")
def tbuf_stress(tmp_path_factory) -> ModuleType:
    """The test-only native harness (test/native/tbuf_stress.c), compiled for this interpreter with its own
    compiler and flags into a temporary directory: the shipped _rtcore does not carry it."""
    var = sysconfig.get_config_var
    target = tmp_path_factory.mktemp("native") / f"_tbuf_stress{var('EXT_SUFFIX')}"
    cmd = [*shlex.split(var("LDSHARED")), *shlex.split(var("CFLAGS") or ""), *shlex.split(var("CCSHARED") or ""),
           "-std=c11", "-D_GNU_SOURCE", f"-I{sysconfig.get_paths()['include']}", f"-I{RT_SRC}",
           str(REPO / "test" / "native" / "tbuf_stress.c"), "-o", str(target), "-lpthread"]
    built = subprocess.run(cmd, capture_output=True, text=True)
    if built.returncode != 0:
        pytest.fail(f"cannot compile the triple-buffer stress harness:\n{shlex.join(cmd)}\n{built.stderr}")
    spec = importlib.util.spec_from_file_location("_tbuf_stress", target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_core_has_no_test_harness():
    assert not hasattr(_rtcore, "triple_buffer_stress")


def test_native_writer_and_reader_threads_never_tear(tbuf_stress):
    """Two native threads hammer the channel; every read is one whole write, and never an older one."""
    iterations = 300_000
    result = tbuf_stress.triple_buffer_stress(97, iterations)
    assert result["torn_reads"] == 0
    assert result["regressions"] == 0
    assert result["writes"] >= iterations and result["final_value"] == result["writes"]
    assert result["fresh_reads"] > 0 and result["reads"] >= result["fresh_reads"]


def test_python_threads_overlapping_in_c_never_tear():
    """write/read release the GIL around the copy, so a Python writer and reader really overlap."""
    n, writes = 20_000, 3_000
    channel = TripleBuffer(n)
    problems: list[str] = []
    done = threading.Event()
    seen = []

    def writer() -> None:
        values = np.empty(n)
        for k in range(1, writes + 1):
            values.fill(k)
            channel.write(values)
        done.set()

    def reader() -> None:
        out = np.empty(n)
        last = 0.0
        while True:
            finished = done.is_set()
            fresh = channel.read(out)
            if out.min() != out.max():
                problems.append(f"torn read: values from {out.min()} to {out.max()}")
            if out[0] < last:
                problems.append(f"went back from {last} to {out[0]}")
            last = out[0]
            seen.append(out[0])
            if finished and not fresh:
                break

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert problems == []
    assert seen[-1] == writes
    assert len(set(seen)) > 1  # the reader saw the writer progress
