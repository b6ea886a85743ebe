"""Per-episode social metrics, as pure functions of what happened in an episode.

The four group-outcome measures follow Perolat et al. (2017), "A multi-agent reinforcement learning model of
common-pool resource appropriation" (efficiency, equality, sustainability, peace); cooperation rate is the share of
cooperative choice. Every social env reports :func:`social_metrics` in ``info["social"]`` when an episode ends, and the
engine logs it under ``social/``.

All functions take raw game payoffs (points, not the normalised rewards the learner receives).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def collective_return(returns: Sequence[float] | np.ndarray) -> float:
    """Utilitarian efficiency: the sum of every player's episode return."""
    return float(np.sum(np.asarray(returns, dtype=np.float64)))


def gini(returns: Sequence[float] | np.ndarray) -> float:
    """Gini coefficient of the players' returns, in [0, 1].

    Returns may be negative (punishment, crashes); the denominator then uses the sum of absolute values
    (Raffinetti, Siletti and Vernizzi 2015), which equals the usual Gini when every return is non-negative and keeps
    the result in [0, 1]. All-zero returns are perfectly equal (0).
    """
    x = np.asarray(returns, dtype=np.float64)
    if x.size < 2:
        return 0.0
    scale = np.abs(x).sum()
    if scale == 0.0:
        return 0.0
    pairwise = np.abs(x[:, None] - x[None, :]).sum()
    return float(pairwise / (2.0 * x.size * scale))


def equality(returns: Sequence[float] | np.ndarray) -> float:
    """1 - Gini of the players' returns: 1 when everyone got the same."""
    return 1.0 - gini(returns)


def sustainability(step_payoffs: Sequence[Sequence[float]] | np.ndarray, horizon: int) -> float:
    """Mean time of positive payoffs, as a fraction of the horizon (Perolat et al. 2017).

    For each player, the mean (1-based) step at which it received a positive payoff, divided by ``horizon``; then
    the mean over players who received any. Harvesting everything early gives a value near 0; payoffs spread evenly
    over the whole horizon give about 0.5. Players who never gained are left out; 0.0 if nobody gained.

    Args:
        step_payoffs: Array ``(steps, players)`` of payoffs per step.
        horizon: The length the episode could have lasted (its fixed horizon, or its actual length when unknown).
    """
    payoffs = np.asarray(step_payoffs, dtype=np.float64)
    if payoffs.size == 0 or horizon <= 0:
        return 0.0
    times = np.arange(1, payoffs.shape[0] + 1, dtype=np.float64)[:, None]
    positive = payoffs > 0
    counts = positive.sum(axis=0)
    gained = counts > 0
    if not gained.any():
        return 0.0
    mean_times = (positive * times).sum(axis=0)[gained] / counts[gained]
    return float(mean_times.mean() / horizon)


def peace(conflict: Sequence[bool] | np.ndarray) -> float:
    """Share of rounds without punishment or conflict (1.0 for an empty episode)."""
    flags = np.asarray(conflict, dtype=bool)
    if flags.size == 0:
        return 1.0
    return float(1.0 - flags.mean())


def cooperation_rate(choices: Sequence[float] | np.ndarray) -> float:
    """Mean cooperativeness of every decision, each in [0, 1] (1 = cooperate; a contribution counts by its share)."""
    values = np.asarray(choices, dtype=np.float64)
    if values.size == 0:
        return 0.0
    return float(values.mean())


def social_metrics(
    step_payoffs: Sequence[Sequence[float]] | np.ndarray,
    cooperation: Sequence[float] | np.ndarray,
    conflict: Sequence[bool] | np.ndarray,
    horizon: int,
    optimum: float | None = None,
) -> dict[str, float]:
    """All metrics of one episode, as the dict envs put in ``info["social"]``.

    Args:
        step_payoffs: Array ``(steps, players)`` of raw payoffs per step.
        cooperation: Cooperativeness of every decision in the episode, each in [0, 1].
        conflict: One flag per round: was there punishment or conflict.
        horizon: The normalising length for :func:`sustainability`.
        optimum: Collective return if everyone had cooperated throughout; adds ``efficiency_normalised``.

    Returns:
        ``efficiency`` (collective return), ``equality``, ``sustainability``, ``peace``, ``cooperation_rate`` and,
        when ``optimum`` is given and positive, ``efficiency_normalised`` (collective return / optimum).
    """
    payoffs = np.asarray(step_payoffs, dtype=np.float64)
    returns = payoffs.sum(axis=0) if payoffs.size else np.zeros(0)
    metrics = {
        "efficiency": collective_return(returns),
        "equality": equality(returns),
        "sustainability": sustainability(payoffs, horizon),
        "peace": peace(conflict),
        "cooperation_rate": cooperation_rate(cooperation),
    }
    if optimum is not None and optimum > 0:
        metrics["efficiency_normalised"] = metrics["efficiency"] / optimum
    return metrics
