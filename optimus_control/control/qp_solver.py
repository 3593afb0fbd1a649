"""Dense QP solver wrapper with warm start: min 1/2 x'Hx + g'x  s.t.  A x = b,  l <= C x <= u,  lb <= x <= ub.

The controller uses ProxQP (proxsuite, dense backend) directly, chosen by ``benchmarks/bench_wbc.py``;
other solvers go through qpsolvers for the comparison. A failed or non-finite solve returns
``QpResult(ok=False)``; it never raises on numerical trouble.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from optimus_control.errors import ConfigError


@dataclass
class QpProblem:
    H: np.ndarray
    g: np.ndarray
    A: np.ndarray
    b: np.ndarray
    C: np.ndarray
    l: np.ndarray  # noqa: E741  (the standard QP name)
    u: np.ndarray
    lb: np.ndarray
    ub: np.ndarray


@dataclass
class QpResult:
    ok: bool
    x: np.ndarray | None
    status: str
    solve_time_s: float
    iterations: int = 0


QPSOLVERS_BACKENDS = ("daqp", "quadprog", "osqp", "proxqp")


class QpSolver:
    """Solve a sequence of same-structure QPs, warm-starting from the previous solution.

    Args:
        backend: ``"proxsuite"`` (direct, warm-started) or one of ``qpsolvers:daqp``,
            ``qpsolvers:quadprog``, ``qpsolvers:osqp``, ``qpsolvers:proxqp`` (benchmark comparison).
        eps_abs: absolute primal/dual tolerance.
        max_iter: iteration cap (a capped solve is a failure).
    """

    def __init__(self, backend: str = "proxsuite", eps_abs: float = 1e-6, max_iter: int = 200):
        if backend != "proxsuite" and backend.removeprefix("qpsolvers:") not in QPSOLVERS_BACKENDS:
            raise ConfigError(f"unknown QP backend '{backend}'; valid: proxsuite, "
                              + ", ".join(f"qpsolvers:{b}" for b in QPSOLVERS_BACKENDS))
        self.backend, self.eps_abs, self.max_iter = backend, eps_abs, max_iter
        self._qp = None
        self._shape: tuple[int, int, int] | None = None
        self._x_prev: np.ndarray | None = None
        self.force_failure = False  # test hook: the next solves report failure (forced-fault tests)

    def reset(self) -> None:
        self._qp, self._shape, self._x_prev = None, None, None

    def solve(self, p: QpProblem) -> QpResult:
        start = time.perf_counter()
        if self.force_failure:
            return QpResult(False, None, "forced failure (test hook)", time.perf_counter() - start)
        try:
            result = self._solve_proxsuite(p) if self.backend == "proxsuite" else self._solve_qpsolvers(p)
        except (ValueError, RuntimeError, ArithmeticError) as exc:
            result = QpResult(False, None, f"solver error: {exc}", 0.0)
        result.solve_time_s = time.perf_counter() - start
        if result.ok and not np.all(np.isfinite(result.x)):
            result = QpResult(False, None, "solver returned non-finite values", result.solve_time_s)
        if result.ok:
            self._x_prev = result.x
        else:
            self.reset()  # do not warm-start from a failed problem
        return result

    def _solve_proxsuite(self, p: QpProblem) -> QpResult:
        import proxsuite

        n, n_eq, n_in = p.H.shape[0], p.A.shape[0], p.C.shape[0]
        if self._qp is None or self._shape != (n, n_eq, n_in):
            qp = proxsuite.proxqp.dense.QP(n, n_eq, n_in, box_constraints=True)
            qp.settings.eps_abs = self.eps_abs
            qp.settings.eps_rel = 0.0
            qp.settings.max_iter = self.max_iter
            qp.settings.verbose = False
            qp.settings.initial_guess = proxsuite.proxqp.InitialGuess.WARM_START_WITH_PREVIOUS_RESULT
            qp.init(p.H, p.g, p.A, p.b, p.C, p.l, p.u, p.lb, p.ub)
            self._qp, self._shape = qp, (n, n_eq, n_in)
        else:
            self._qp.update(p.H, p.g, p.A, p.b, p.C, p.l, p.u, p.lb, p.ub)
        self._qp.solve()
        info = self._qp.results.info
        ok = info.status == proxsuite.proxqp.QPSolverOutput.PROXQP_SOLVED
        return QpResult(ok, self._qp.results.x.copy() if ok else None, str(info.status).split(".")[-1], 0.0, int(info.iter))

    def _solve_qpsolvers(self, p: QpProblem) -> QpResult:
        import qpsolvers

        name = self.backend.removeprefix("qpsolvers:")
        G = np.vstack([p.C, -p.C])
        h = np.concatenate([p.u, -p.l])
        keep = np.isfinite(h) & (np.abs(h) < 1e8)
        kwargs = {"initvals": self._x_prev} if name in ("osqp", "proxqp") and self._x_prev is not None else {}
        if name == "osqp":
            kwargs.update(eps_abs=self.eps_abs, eps_rel=0.0, max_iter=4000, polish=True)
        x = qpsolvers.solve_qp(p.H, p.g, G[keep], h[keep], p.A, p.b, p.lb, p.ub, solver=name, **kwargs)
        return QpResult(x is not None, x, "solved" if x is not None else "failed", 0.0)
