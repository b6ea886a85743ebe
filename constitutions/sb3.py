"""Stable-Baselines3 integration: track per-episode costs and update the Lagrange multipliers inside ``learn``."""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback
from upbringing.constitutions.lagrangian import Lagrangian
from upbringing.constitutions.shaping import sync_multipliers
from upbringing.constitutions.tracking import EpisodeCostTracker, EpisodeRecord, episode_metrics, mean_costs


class ConstitutionCallback(BaseCallback):
    """Accumulate episode costs from the shaping wrappers' infos; after each rollout, update the multipliers.

    At the end of every rollout (on-policy) or training collection (off-policy), the episodes finished since the
    last one give the mean costs ``J_k``; the :class:`~constitutions.lagrangian.Lagrangian` takes one step and the
    new multipliers are sent to every env with :func:`~constitutions.shaping.sync_multipliers` (a no-op in effect for
    a ``DummyVecEnv`` whose wrappers share the Lagrangian's multipliers; required for a ``SubprocVecEnv``). The
    ``constitution/<id>/{lambda,cost,violations}`` metrics go to SB3's logger.

    Args:
        lagrangian: The multipliers to update; None only tracks costs.
        tracker: The tracker to feed (a new one when None).
        verbose: SB3 verbosity.

    Attributes:
        episodes: Every episode finished during training, in order.
        history: The metrics of each update, in order.
    """

    def __init__(
        self, lagrangian: Lagrangian | None = None, tracker: EpisodeCostTracker | None = None, verbose: int = 0
    ):
        super().__init__(verbose)
        self.lagrangian = lagrangian
        self.tracker = tracker if tracker is not None else EpisodeCostTracker()
        self.episodes: list[EpisodeRecord] = []
        self.history: list[dict[str, float]] = []

    def _on_training_start(self) -> None:
        # learn() resets the envs, so any half-finished episode from an earlier call is gone
        self.tracker.discard_running()
        if self.lagrangian is not None:
            sync_multipliers(self.training_env, self.lagrangian)

    def _on_step(self) -> bool:
        # SB3 exposes the step's infos and done flags only through `locals`; read just those two
        self.tracker.observe(self.locals["infos"], self.locals["dones"])
        return True

    def _on_rollout_end(self) -> None:
        episodes = self.tracker.pop()
        if not episodes:
            return
        self.episodes.extend(episodes)
        metrics = episode_metrics(episodes)
        if self.lagrangian is not None:
            metrics.update(self.lagrangian.update(mean_costs(episodes, self.lagrangian.budgets)))
            sync_multipliers(self.training_env, self.lagrangian)
        self.history.append(metrics)
        for key, value in metrics.items():
            self.logger.record(key, value)
