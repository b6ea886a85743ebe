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

import math
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

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


ALARM_SAMPLE = 2000  # steps kept per chunk to score the proxy trend


def mean_se(x: np.ndarray) -> tuple[float, float]:
    """Mean and its standard error (NaN for no values, 0 error for one)."""
    if len(x) == 0:
        return float("nan"), float("nan")
    se = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else 0.0
    return float(x.mean()), se


class Normalised(Protocol):
    """The learned reward as the alarm reads it (:class:`~feedback.reward_model.LearnedReward`)."""

    @property
    def ready(self) -> bool: ...

    def normalised(self, feats: np.ndarray) -> np.ndarray: ...


class ProxyAlarm:
    """The over-optimisation alarm over the last ``window`` chunks of a feedback loop.

    During a chunk the loop hands it each closed segment's step features and true utilities (:meth:`add`); at the
    chunk's end :meth:`update` keeps a sample of the chunk's steps, scores every chunk of the window with the current
    reward model and fires when :func:`overoptimisation_alarm` does.

    Args:
        window: Chunks over which the trends are fitted.
        z: Significance of each trend, in standard errors.
    """

    def __init__(self, window: int, z: float):
        self.z = z
        self.window: deque[dict[str, Any]] = deque(maxlen=window)  # per chunk: sampled step features, truth mean/se
        self.alarms = 0
        self._feats: list[np.ndarray] = []
        self._truth: list[np.ndarray] = []

    def add(self, feats: np.ndarray, truth: np.ndarray) -> None:
        """One closed segment of this chunk: its step features and per-step true utilities."""
        self._feats.append(feats)
        self._truth.append(truth)

    def update(self, scorer: Normalised, rng: np.random.Generator) -> dict[str, float]:
        """Close the chunk and return ``feedback/alarm`` metrics (``rng`` samples the steps kept)."""
        if not self._feats:
            return {"feedback/alarm": 0.0}
        feats = np.concatenate(self._feats)
        truth = np.concatenate(self._truth)
        if len(feats) > ALARM_SAMPLE:
            keep = np.sort(rng.choice(len(feats), ALARM_SAMPLE, replace=False))
            feats = feats[keep]
        self.window.append({"feats": feats, "truth": mean_se(truth)})
        self._feats, self._truth = [], []
        out = {"feedback/alarm": 0.0, "feedback/true_utility": self.window[-1]["truth"][0]}
        # The policy optimised the current scorer only in chunks played since it was set; earlier chunks of the
        # window still show where the policy came from, so every chunk is scored by the current scorer.
        if not scorer.ready or len(self.window) < 2:
            return out
        proxy = [mean_se(scorer.normalised(w["feats"])) for w in self.window]
        truth_ms = [w["truth"] for w in self.window]
        alarm = overoptimisation_alarm(
            [p[0] for p in proxy],
            [t[0] for t in truth_ms],
            [p[1] for p in proxy],
            [t[1] for t in truth_ms],
            z=self.z,
        )
        self.alarms += int(alarm)
        out.update(
            {
                "feedback/alarm": float(alarm),
                "feedback/alarms": float(self.alarms),
                "feedback/proxy_trend": trend([p[0] for p in proxy])[0],
                "feedback/truth_trend": trend([t[0] for t in truth_ms])[0],
                "feedback/proxy": proxy[-1][0],
            }
        )
        return out

    def clear_chunk(self) -> None:
        """Forget the current chunk's segments (a resumed run starts a chunk afresh)."""
        self._feats, self._truth = [], []
