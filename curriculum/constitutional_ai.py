"""Settings of the constitutional-AI pieces a run config can switch on: a stage's critique-and-revision phase
(:mod:`upbringing.curriculum.critique`) and the red-team teacher's search (:mod:`upbringing.curriculum.redteam`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from upbringing.curriculum.frozen import Frozen


def _all_tiers() -> list[Literal["hard", "soft"]]:
    return ["hard", "soft"]


class CritiqueConfig(Frozen):
    """A critique-and-revision phase before RL on a stage (Constitutional AI's supervised phase, Bai et al. 2022)."""

    steps: int = Field(gt=0, description="Env steps the phase plays (counted in the stage's budget).")
    rounds: int = Field(
        default=2, gt=0, description="Most critique-revision rounds per decision while the revision still violates."
    )
    tiers: list[Literal["hard", "soft"]] = Field(
        default_factory=_all_tiers,
        min_length=1,
        description="Tiers of the active principles that critique a proposal (aspirational ones never critique).",
    )
    keep_unrevised: bool = Field(
        default=False,
        description="Also fine-tune on decisions no principle criticised (their proposal as target); False: only on "
        "revisions.",
    )
    epochs: int = Field(default=4, gt=0, description="Passes of supervised fine-tuning over the revision pairs.")
    lr: float = Field(default=1e-3, gt=0, description="Learning rate of the fine-tuning (every trainable part).")
    minibatch_size: int = Field(default=32, gt=0, description="Revision pairs per fine-tuning step.")
    anchor: bool = Field(
        default=False,
        description="Keep the revision pairs in the replay buffer (needs curriculum.retention.method clear) so every "
        "PPO minibatch also clones them; False: fine-tune once and let RL move freely.",
    )


class RedTeamConfig(Frozen):
    """The red-team teacher's search (see :mod:`upbringing.curriculum.redteam`)."""

    replay_share: float = Field(
        default=0.3, ge=0.0, le=1.0, description="Share of training episodes replaying buffered violating tasks."
    )
    mutate_share: float = Field(
        default=0.3, ge=0.0, le=1.0, description="Share of training episodes playing mutations of buffered tasks."
    )
    capacity: int = Field(default=200, gt=0, description="Most violating tasks the buffer keeps per stage level.")
    temperature: float = Field(default=0.3, gt=0.0, description="Rank prioritisation temperature (PLR's beta).")
    staleness: float = Field(default=0.1, ge=0.0, le=1.0, description="Weight of staleness in replay (PLR's rho).")

    @model_validator(mode="after")
    def _shares(self) -> RedTeamConfig:
        if self.replay_share + self.mutate_share > 1.0:
            raise ValueError("replay_share + mutate_share must be at most 1 (the rest are uniform draws)")
        return self
