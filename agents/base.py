"""The interface every agent offers the curriculum engine.

The engine hands an agent a Stable-Baselines3 ``VecEnv`` (numeric observations; the text view of each env in its
info dicts: after ``reset()`` in ``venv.reset_infos``, after ``step()`` in the returned infos, and for an env that
just finished, the next episode's first info in ``venv.reset_infos[i]``). Before each call to :meth:`Agent.learn`
the engine seeds the ``VecEnv``; ``learn`` starts by resetting it, so a chunk of training depends only on the
agent's saved state and the chunk's seed (exact resume).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


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

    @abstractmethod
    def learn(self, venv: Any, steps: int) -> dict[str, float]:
        """Reset ``venv``, collect about ``steps`` env steps, update the policy; return ``train/`` metrics."""

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the agent's full training state (weights, optimizer, counters) into directory ``path``
        as safetensors + JSON."""

    @abstractmethod
    def load(self, path: Path) -> None:
        """Restore what :meth:`save` wrote."""
