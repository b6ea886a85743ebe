"""The interface every agent offers the curriculum engine.

The engine hands an agent a Stable-Baselines3 ``VecEnv`` (numeric observations; the text view of each env in its
info dicts: after ``reset()`` in ``venv.reset_infos``, after ``step()`` in the returned infos, and for an env that
just finished, the next episode's first info in ``venv.reset_infos[i]``). Before each call to :meth:`Agent.learn`
the engine seeds the ``VecEnv``; ``learn`` starts by resetting it, so a chunk of training depends only on the
agent's saved state and the chunk's seed (exact resume).

When several agents learn side by side in one game (independent learners, each holding its own seats), none of them
can drive the ``VecEnv``: something else steps it with everyone's actions and tells each agent what happened to its
own rows through the agent's :class:`Lockstep` (:meth:`Agent.lockstep`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


class Lockstep(ABC):
    """One agent's side of a rollout that it does not drive: it acts for its rows, is told what happened to them, and
    updates its policy each time it has collected a whole rollout (its ``n_steps`` steps of every row).

    The driver calls :meth:`act` and then :meth:`observe` once per step, for the same rows in the same order. Updates
    happen inside :meth:`observe`, so a driver that steps whole rollouts leaves nothing half-collected behind (see
    :attr:`collected`): the agent's saved state is then all there is to it (exact resume).
    """

    @abstractmethod
    def act(self, obs: np.ndarray, infos: Sequence[dict[str, Any]]) -> np.ndarray:
        """Sample one action per row (exploring, as in training) and remember what the update will need."""

    @abstractmethod
    def observe(
        self,
        obs: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
        infos: Sequence[dict[str, Any]],
        reset_infos: Sequence[dict[str, Any]],
    ) -> dict[str, float] | None:
        """Record the step that followed the last :meth:`act` (``VecEnv`` conventions: for a row whose episode ended,
        ``obs`` and ``reset_infos`` are the next episode's first). Returns the update's ``train/`` metrics when this
        step completed a rollout and the policy was updated, else None."""

    @property
    @abstractmethod
    def collected(self) -> int:
        """Steps collected towards the next update (0 right after an update)."""


class Agent(ABC):
    """A learner that the curriculum engine trains stage by stage.

    Attributes:
        uses_text: True if the agent reads ``info["text"]``/``info["action_texts"]`` (LM policies); False if it
            reads the numeric observation (SB3 baselines).
    """

    uses_text: ClassVar[bool] = False

    @abstractmethod
    def act(self, obs: np.ndarray, infos: Sequence[dict[str, Any]], deterministic: bool = False) -> np.ndarray:
        """Choose one action per env from the batch of observations and their info dicts."""

    def action_probabilities(self, obs: np.ndarray, infos: Sequence[dict[str, Any]]) -> np.ndarray:
        """The policy's probability of every action (``[N, n_actions]``) for each env, as a fresh decision (no
        remembered turns); agents whose policy cannot say raise ``NotImplementedError``."""
        raise NotImplementedError(f"{type(self).__name__} does not expose its action distribution")

    @abstractmethod
    def learn(self, venv: Any, steps: int) -> dict[str, float]:
        """Reset ``venv``, collect about ``steps`` env steps, update the policy; return ``train/`` metrics."""

    def lockstep(self, n_envs: int) -> Lockstep:
        """Learn from ``n_envs`` rows that something else steps (see :class:`Lockstep`); agents that can only drive
        their own ``VecEnv`` do not offer this."""
        raise NotImplementedError(f"{type(self).__name__} cannot learn side by side with other learners")

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the agent's full training state (weights, optimizer, counters) into directory ``path``
        as safetensors + JSON."""

    @abstractmethod
    def load(self, path: Path) -> None:
        """Restore what :meth:`save` wrote."""
