"""Promotion rules: typed conditions on held-out evaluation episodes that say when a level is mastered.

A rule sees the scores of the fresh held-out episodes played at the current level (oldest first) and returns a
:class:`Verdict` with its evidence, which the engine logs with every promotion. New rules are short subclasses of
:class:`Rule` added to the :data:`PromotionRule` union.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator


@dataclass(frozen=True)
class Verdict:
    """Whether a level is mastered, and why."""

    mastered: bool
    evidence: dict[str, Any]


class Rule(BaseModel):
    """Base of promotion rules (frozen, unknown keys are errors)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

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


def wilson_lower_bound(successes: int, n: int, confidence: float) -> float:
    """Lower end of the Wilson score interval for a success rate (Wilson 1927): well-behaved at small n and near
    0 or 1, where the normal approximation claims certainty it does not have."""
    if n == 0:
        return 0.0
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = p + z * z / (2 * n)
    margin = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float((centre - margin) / denom)


def t_lower_bound(values: Sequence[float] | npt.NDArray[np.float64], confidence: float) -> float:
    """Lower end of the two-sided Student-t confidence interval on the mean of ``values``."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return float("-inf")
    from scipy.stats import t as student_t

    sem = float(x.std(ddof=1)) / np.sqrt(x.size)
    return float(x.mean() - student_t.ppf(1.0 - (1.0 - confidence) / 2.0, x.size - 1) * sem)


class ConfidentAtLeast(Rule):
    """Mastered when the lower confidence bound of the held-out score clears ``threshold``: the Wilson bound for
    success rates, the Student-t bound for returns, over the last ``window`` fresh held-out episodes at this level,
    once at least ``min_episodes`` have been played. 9 successes in 10 do not master a 0.9 threshold: the count is
    short and the bound (0.60 at 95%) is far below it."""

    kind: Literal["confident"] = "confident"
    threshold: float = Field(description="What the lower confidence bound of the score must reach.")
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0, description="Two-sided confidence of the interval.")
    window: int = Field(default=60, gt=0, description="How many of the most recent held-out episodes count.")
    min_episodes: int = Field(default=20, gt=1, description="Held-out episodes needed before any promotion.")

    @model_validator(mode="after")
    def _consistent(self) -> ConfidentAtLeast:
        if self.metric == "success" and not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"threshold for metric=success must be within [0, 1), got {self.threshold}")
        if self.min_episodes > self.window:
            raise ValueError(f"min_episodes ({self.min_episodes}) cannot exceed window ({self.window})")
        return self

    def judge(self, scores: Sequence[float]) -> Verdict:
        recent = np.asarray(scores[-self.window :], dtype=float)
        n = int(recent.size)
        if self.metric == "success":
            bound = wilson_lower_bound(int(recent.sum()), n, self.confidence)
            rule = "wilson"
        else:
            bound = t_lower_bound(recent, self.confidence)
            rule = "t"
        mastered = n >= self.min_episodes and bound >= self.threshold
        return Verdict(
            mastered,
            {
                "rule": rule,
                "metric": self.metric,
                "lower_bound": bound,
                "confidence": self.confidence,
                "mean": float(recent.mean()) if n else float("nan"),
                "episodes": n,
                "threshold": self.threshold,
            },
        )


# The rules a stage config may name by ``kind`` (``mean`` when omitted).
PromotionRule = Annotated[
    Annotated[MeanAtLeast, Tag("mean")] | Annotated[ConfidentAtLeast, Tag("confident")],
    Discriminator(lambda v: v.get("kind", "mean") if isinstance(v, dict) else getattr(v, "kind", "mean")),
]
