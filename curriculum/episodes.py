"""Metrics of finished episodes (the statistics :class:`~upbringing.envs.episode.EpisodeStats` records per episode):
the ``train/`` means of a training chunk and the ``social/`` means of multi-agent stages."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from upbringing.envs.episode import EpisodeStats


def social_means(episodes: Sequence[EpisodeStats], prefix: str) -> dict[str, float]:
    """Mean per-episode social metrics (efficiency, equality, cooperation rate, ...) of multi-agent stages."""
    names = sorted({k for e in episodes for k, v in e.social.items() if isinstance(v, int | float)})
    return {prefix + k: float(np.mean([e.social[k] for e in episodes if k in e.social])) for k in names}


def training_metrics(episodes: Sequence[EpisodeStats]) -> dict[str, float]:
    """The ``train/`` means of a chunk's finished episodes: count, return, length, success rate (where the env
    reports success), each reward term, and the ``social/`` means. Empty without episodes."""
    if not episodes:
        return {}
    metrics: dict[str, float] = {
        "train/episodes": len(episodes),
        "train/episode_return": float(np.mean([e.episode_return for e in episodes])),
        "train/episode_length": float(np.mean([e.length for e in episodes])),
    }
    if any(e.has_success for e in episodes):
        metrics["train/success_rate"] = float(np.mean([e.success for e in episodes]))
    for name in sorted({k for e in episodes for k in e.terms}):
        metrics[f"train/reward_terms/{name}"] = float(np.mean([e.terms.get(name, 0.0) for e in episodes]))
    metrics.update(social_means(episodes, "social/"))
    return metrics
