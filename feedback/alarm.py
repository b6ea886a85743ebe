"""Over-optimisation alarm: the learned reward (proxy) rises while the hidden true utility falls.

Optimising a learned reward eventually exploits its errors: the proxy keeps rising while the true objective turns
down (Gao et al., 2023, "Scaling laws for reward model overoptimization"). The training loop records, per chunk, the
mean proxy reward and the mean true utility per step; :func:`overoptimisation_alarm` fits a least-squares trend to
the last few chunks of each and raises the alarm when the proxy's trend is significantly positive while the truth's
is significantly negative. Significance uses each chunk mean's standard error, so noise alone rarely trips it.

The proxy of every chunk in the window is scored by the same model (the one the policy was optimising), so the
trend compares like with like even though the reward model is retrained between chunks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def trend(values: Sequence[float], standard_errors: Sequence[float] | None = None) -> tuple[float, float]:
    """Least-squares slope per chunk of ``values`` and its standard error (0 when no errors are given)."""
    y = np.asarray(values, dtype=np.float64)
    x = np.arange(len(y), dtype=np.float64)
    if len(y) < 2:
        return 0.0, 0.0
    c = (x - x.mean()) / ((x - x.mean()) ** 2).sum()
    slope = float((c * y).sum())
    if standard_errors is None:
        return slope, 0.0
    se = np.asarray(standard_errors, dtype=np.float64)
    return slope, float(np.sqrt(((c * se) ** 2).sum()))


def overoptimisation_alarm(
    proxy: Sequence[float],
    truth: Sequence[float],
    proxy_se: Sequence[float] | None = None,
    truth_se: Sequence[float] | None = None,
    z: float = 2.0,
) -> bool:
    """True when the proxy trends up and the truth trends down, each by more than ``z`` standard errors.

    Args:
        proxy: Mean learned reward per chunk (oldest first), all scored by one model.
        truth: Mean hidden true utility per chunk, same chunks.
        proxy_se: Standard error of each proxy mean (None: treat the means as exact).
        truth_se: Standard error of each truth mean.
        z: How many standard errors a trend must exceed.
    """
    if len(proxy) != len(truth):
        raise ValueError("proxy and truth must cover the same chunks")
    if len(proxy) < 2:
        return False
    p_slope, p_se = trend(proxy, proxy_se)
    t_slope, t_se = trend(truth, truth_se)
    return p_slope > z * p_se and p_slope > 0 and t_slope < -z * t_se and t_slope < 0
