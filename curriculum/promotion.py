"""Promotion rules: typed conditions on held-out evaluation episodes that say when a level is mastered.

A rule sees the scores of the fresh held-out episodes played at the current level (oldest first) and returns a
:class:`Verdict` with its evidence, which the engine logs with every promotion. New rules are short subclasses of
:class:`Rule` added to the :data:`PromotionRule` union.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


@dataclass(frozen=True)
class Verdict:
    """Whether a level is mastered, and why."""

    mastered: bool
    evidence: dict[str, Any]


class Rule(BaseModel):
    """Base of promotion rules (frozen, unknown keys are errors)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: Literal["success", "return"] = Field(
        default="success", description="Score per held-out episode: success (0/1) or the env's episode return."
    )
    require_compliance: bool = Field(
        default=False,
        description="Also require every hard principle of the stage's constitution to be within its cost budget.",
    )

    def judge(self, scores: Sequence[float]) -> Verdict:  # pragma: no cover - abstract
        raise NotImplementedError


class MeanAtLeast(Rule):
    """Mastered when the mean score over the last ``window`` held-out episodes is >= ``threshold``, once at least
    ``min_episodes`` have been played at this level."""

    kind: Literal["mean"] = "mean"
    threshold: float = Field(description="Mean score needed (a success rate for metric=success).")
    window: int = Field(default=20, gt=0, description="How many of the most recent held-out episodes count.")
    min_episodes: int = Field(default=20, gt=0, description="Held-out episodes needed before any promotion.")

    @model_validator(mode="after")
    def _consistent(self) -> MeanAtLeast:
        if self.metric == "success" and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold for metric=success must be within [0, 1], got {self.threshold}")
        if self.min_episodes > self.window:
            raise ValueError(f"min_episodes ({self.min_episodes}) cannot exceed window ({self.window})")
        return self

    def judge(self, scores: Sequence[float]) -> Verdict:
        recent = np.asarray(scores[-self.window :], dtype=float)
        mean = float(recent.mean()) if recent.size else float("nan")
        mastered = recent.size >= self.min_episodes and mean >= self.threshold
        return Verdict(
            mastered,
            {
                "rule": "mean",
                "metric": self.metric,
                "mean": mean,
                "episodes": int(recent.size),
                "threshold": self.threshold,
            },
        )


# The rules a stage config may name (by ``kind``); with more than one, a discriminated union on ``kind``.
PromotionRule = MeanAtLeast
