"""The constitution that shapes one stage of a run: its principles in the stage's context, their Lagrange
multipliers, the shaping wrapper it adds to the stage's envs and its compliance on finished episodes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from upbringing.constitutions import (
    ConstitutionalShaping,
    Context,
    EpisodeRecord,
    Lagrangian,
    compliance,
    load_constitution,
)


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
    def records(episodes: list[dict[str, Any]]) -> list[Any]:
        """The constitution's view of finished episodes (from :class:`EpisodeStats`)."""
        return [
            EpisodeRecord(
                costs=e["costs"],
                virtues=e["virtues"],
                env_return=e["terms"].get("env", e["return"]),
                length=e["length"],
                success=bool(e["success"]) if e["has_success"] else None,
                tension=e.get("tension", {}),
            )
            for e in episodes
        ]

    def compliance(self, episodes: list[dict[str, Any]]) -> dict[str, Any]:
        return compliance(self.records(episodes), self.constitution, self.context)
