"""Task parameters of the physics worlds: checking the arguments every world shares, and drawing values (with the
``train``/``eval`` bands that keep held-out tasks apart)."""

from __future__ import annotations

from typing import Any

import numpy as np

SPLITS = ("train", "eval")
"""``train`` draws task parameters from one set of bands, ``eval`` from the interleaved, disjoint other set."""


def coin(rng: np.random.Generator) -> int:
    """-1 or +1 with equal chance (cheaper than ``rng.choice``)."""
    return 1 if rng.random() < 0.5 else -1


def check_scale(name: str, value: Any, lo: float = 0.25, hi: float = 4.0) -> float:
    """Return ``value`` as a float if it is a number in ``[lo, hi]``; otherwise raise a ValueError."""
    number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if not number or not lo <= value <= hi:
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")
    return float(value)


def check_split(value: Any) -> str:
    """Return ``value`` if it is ``"train"`` or ``"eval"``; otherwise raise a ValueError."""
    if value not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(map(repr, SPLITS))}, got {value!r}")
    return str(value)


# -------------------------------------------------------------------------------------------------- sampling
def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """Exactly the draw ``float(rng.uniform(lo, hi))`` makes (same value, same place in the stream), at a quarter
    of numpy's per-call cost: task sampling runs at every reset, where that cost shows."""
    return lo + (hi - lo) * rng.random()


def band_uniform(rng: np.random.Generator, lo: float, hi: float, split: str, bands: int = 8) -> float:
    """Draw from ``[lo, hi]`` cut into ``bands`` equal bands: even bands for ``train``, odd ones for ``eval``.

    The two splits never share a value yet cover the same overall range, so held-out tasks test generalisation
    to unseen parameter values rather than extrapolation to another regime.
    """
    width = (hi - lo) / bands
    u = rng.random() * (bands // 2)  # which band pair (integer part) and where inside the band (fraction)
    band = 2 * int(u) + (1 if split == "eval" else 0)
    return float(lo + width * (band + u - int(u)))
