"""Which pairs of segments to ask about, and how many per training chunk.

A stage has a query budget (pairs asked in the whole stage) and a schedule that spends it chunk by chunk:
``constant`` asks a fixed fraction of the budget each chunk, ``decay`` asks a fixed fraction of what is left (more
early, when the reward model knows least). Selection is ``uniform`` (random pairs) or active: from
``candidates_per_query`` random candidate pairs per query, ask about those where the reward-model ensemble
``disagreement`` (the standard deviation of the members' preference probabilities) or the ``entropy`` of the mean
prediction is highest (Lee et al., 2021, "PEBBLE"; Christiano et al., 2017).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np

Schedule = Literal["constant", "decay"]
Selection = Literal["uniform", "disagreement", "entropy"]


def queries_for_chunk(budget: int, used: int, schedule: Schedule, per_chunk: float) -> int:
    """How many queries to ask this chunk.

    Args:
        budget: Queries allowed in the whole stage.
        used: Queries already asked in the stage.
        schedule: ``constant`` (``ceil(per_chunk * budget)`` each chunk) or ``decay`` (``ceil(per_chunk * left)``).
        per_chunk: The fraction, in (0, 1].
    """
    left = max(budget - used, 0)
    if schedule == "constant":
        return min(left, math.ceil(per_chunk * budget))
    if schedule == "decay":
        return min(left, math.ceil(per_chunk * left))
    raise ValueError(f"unknown schedule {schedule!r}; expected 'constant' or 'decay'")


def random_pairs(n_items: int, n_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """``n_pairs`` random pairs ``(i, j)`` with ``i != j`` from ``n_items`` items, shape ``(n_pairs, 2)``."""
    if n_items < 2:
        return np.zeros((0, 2), dtype=np.int64)
    i = rng.integers(0, n_items, n_pairs)
    j = (i + rng.integers(1, n_items, n_pairs)) % n_items  # uniform over the other items
    return np.stack([i, j], axis=1)


def score_pairs(p_a: np.ndarray, selection: Selection) -> np.ndarray:
    """Informativeness of each candidate pair from the ensemble's ``(E, N)`` preference probabilities."""
    if selection == "disagreement":
        return p_a.std(0)
    if selection == "entropy":
        p = np.clip(p_a.mean(0), 1e-7, 1 - 1e-7)
        return -(p * np.log(p) + (1 - p) * np.log(1 - p))
    raise ValueError(f"no score for selection {selection!r}")


def select_pairs(
    n_items: int,
    n_queries: int,
    selection: Selection,
    rng: np.random.Generator,
    predict: Callable[[np.ndarray], np.ndarray] | None = None,
    candidates_per_query: int = 10,
) -> np.ndarray:
    """Choose ``n_queries`` pairs of item indices to ask about, shape ``(n, 2)``.

    Args:
        n_items: Number of segments to choose from.
        n_queries: Pairs wanted.
        selection: ``uniform``, ``disagreement`` or ``entropy``.
        rng: Random stream (candidates are drawn from it whatever the selection, so streams stay aligned).
        predict: Maps candidate pairs ``(N, 2)`` to the ensemble's ``(E, N)`` probabilities; without it (no trained
            model yet) active selection falls back to uniform.
        candidates_per_query: Candidate pairs scored per pair asked in active selection.
    """
    if n_queries <= 0 or n_items < 2:
        return np.zeros((0, 2), dtype=np.int64)
    candidates = random_pairs(n_items, n_queries * max(candidates_per_query, 1), rng)
    if selection == "uniform" or predict is None:
        return candidates[:n_queries]
    scores = score_pairs(predict(candidates), selection)
    order = np.argsort(-scores, kind="stable")
    return candidates[order[:n_queries]]
