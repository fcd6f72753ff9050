"""Newton-Raphson pieces shared by the Cox and discrete-time engines: step halving, the divergence warning."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np


def _halving_step(evaluate, beta: np.ndarray, step: np.ndarray, cur: dict) -> tuple[np.ndarray, dict, np.ndarray]:
    """A Newton step, halved (up to 30 times) until the log-likelihood does not decrease: new beta, state, step."""
    new = evaluate(beta + step)
    halvings = 0
    while (not np.isfinite(new["loglik"]) or new["loglik"] < cur["loglik"] - 1e-10 * abs(cur["loglik"])) and halvings < 30:
        step = step / 2
        new = evaluate(beta + step)
        halvings += 1
    return beta + step, new, step


def _warn_if_infinite(func: str, converged: bool, max_iter: int, covariates: Sequence[str], beta: np.ndarray,
                      sd: np.ndarray, vcov_naive: np.ndarray, cause: str) -> None:
    """Warn when Newton-Raphson did not converge, or a per-SD coefficient is huge with a huge per-SD SE."""
    se_naive = np.sqrt(np.abs(np.diag(vcov_naive)))
    huge = [c for c, b, s_, v in zip(covariates, beta, sd, se_naive) if not (abs(b * s_) < 5 or v * s_ < 10)]
    if not converged or huge:
        what = f"coefficient(s) {huge}" if huge else "a coefficient"
        warnings.warn(
            f"{func}: Newton-Raphson {'did not converge' if not converged else 'converged'} "
            f"(max_iter={max_iter}); {what} may be infinite ({cause})",
            RuntimeWarning,
            stacklevel=3,
        )

