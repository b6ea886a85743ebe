"""What a run holds for each stage beyond its config (:class:`StageRuntime`), and the constitution that shapes a
stage (:class:`StageConstitution`: its principles in the stage's context, their Lagrange multipliers, the shaping
wrapper it adds to the stage's envs and its compliance on finished episodes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from upbringing.agents.team import Team
from upbringing.constitutions import (
    ConstitutionalShaping,
    Context,
    EpisodeRecord,
    Lagrangian,
    compliance,
    load_constitution,
)
from upbringing.curriculum.config import StageConfig
from upbringing.curriculum.promotion import PromotionRule
from upbringing.envs.episode import EpisodeStats
from upbringing.feedback.loop import FeedbackLoop


@dataclass
class StageConstitution:
    """The constitution shaping one stage: the principles active in its context and their multipliers."""

    constitution: Any
    context: Any
    lagrangian: Any

    @classmethod
    def load(cls, name: str, stage: Any) -> StageConstitution:
        constitution = load_constitution(name)
        context = Context.for_env(stage.env, stage=stage.name, risk=stage.risk)
        return cls(constitution, context, Lagrangian.from_constitution(constitution, context))

    def shaper(self) -> Any:
        return partial(
            ConstitutionalShaping,
            constitution=self.constitution,
            context=self.context,
            multipliers=self.lagrangian.multipliers,
        )

    @staticmethod
    def records(episodes: Sequence[EpisodeStats]) -> list[EpisodeRecord]:
        """The constitution's view of finished episodes."""
        return [
            EpisodeRecord(
                costs=dict(e.costs),
                virtues=dict(e.virtues),
                env_return=e.env_return,
                length=e.length,
                success=bool(e.success) if e.has_success else None,
                tension=dict(e.tension),
            )
            for e in episodes
        ]

    def compliance(self, episodes: Sequence[EpisodeStats]) -> dict[str, Any]:
        return compliance(self.records(episodes), self.constitution, self.context)


@dataclass
class StageRuntime:
    """One stage of a run at run time: its config, levels and the objects built for it.

    Attributes:
        config: The stage's config.
        levels: Env keyword arguments of each level, easiest first.
        multi_agent: Whether the stage's env is a PettingZoo (multi-agent) env.
        constitution: The constitution shaping the stage (None: unshaped).
        feedback: The stage's simulated-feedback loop (None: no feedback block).
        team: A stage of independent learners: every focal seat's learner (None: the run's agent plays alone).
    """

    config: StageConfig
    levels: list[dict[str, Any]]
    multi_agent: bool
    constitution: StageConstitution | None = None
    feedback: FeedbackLoop | None = None
    team: Team | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def rule(self) -> PromotionRule:
        """When a level (and, at the last level, the stage) is mastered."""
        return self.config.promotion

    @property
    def last_level(self) -> int:
        return len(self.levels) - 1
