"""Typed, frozen configuration of a stage's feedback: raters, queries, reward model, and how it enters the reward.

A run config's stage can hold a ``feedback:`` block that validates into :class:`FeedbackConfig`, e.g.::

    feedback:
      mode: learned            # oracle | learned | mix
      budget: 300              # queries (pairs) in this stage
      per_chunk: 0.25          # a quarter of the budget each training chunk
      selection: disagreement  # uniform | disagreement | entropy
      raters:
        - {name: careful, beta: 10.0, epsilon: 0.05}
        - {name: fair-minded, beta: 10.0, profile: {unfair: -2.0}}

RL from AI feedback with hierarchical oversight: ``labeler: constitution`` has the stage's constitution label every
pair (a principle sampled per pair, Bai et al. 2022); ``spot_check: 0.1`` has the raters answer a tenth of the pairs
too, and their answer wins there; ``disagreement_alarm`` is the judge-human disagreement rate of a principle above
which the oversight alarm fires.

Importing this module is cheap (no torch), so configs validate without loading the reward model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from upbringing.feedback.raters import RaterConfig
from upbringing.yamlfile import FileError, LineMap, pydantic_problems


class RewardModelConfig(BaseModel):
    """Size and training of the reward-model ensemble."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    ensemble_size: int = Field(3, ge=1, description="Number of members (their disagreement drives active queries).")
    hidden: tuple[int, ...] = Field((32, 32), description="Hidden layer widths of each member's MLP.")
    activation: Literal["relu", "tanh"] = Field("relu", description="Hidden activation.")
    lr: float = Field(3e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay.")
    epochs: int = Field(20, ge=1, description="Passes over the preferences per fit.")
    min_steps: int = Field(200, ge=0, description="At least this many gradient steps per fit (small data sets).")
    warm_start: bool = Field(
        False, description="Continue from the last fit's weights; else re-initialise (fresher, better calibrated)."
    )
    batch_size: int = Field(64, ge=1, description="Preferences per gradient step.")
    bootstrap: bool = Field(True, description="Train each member on its own bootstrap resample of the preferences.")


class FeedbackConfig(BaseModel):
    """Simulated human feedback for one curriculum stage."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    mode: Literal["oracle", "learned", "mix"] = Field(
        "learned", description="Reward the learner gets: env reward only, learned reward only, or env + learned."
    )
    weight: float = Field(1.0, description="Factor on the 'feedback' term (learned and mix modes).")
    budget: int = Field(500, ge=0, description="Queries (pairs of segments) that may be asked in this stage.")
    schedule: Literal["constant", "decay"] = Field(
        "constant", description="Spend per_chunk of the budget each chunk (constant) or of what is left (decay)."
    )
    per_chunk: float = Field(0.25, gt=0, le=1, description="Fraction used by the schedule each training chunk.")
    selection: Literal["uniform", "disagreement", "entropy"] = Field(
        "disagreement", description="How pairs are chosen: at random or where the reward model is least sure."
    )
    candidates_per_query: int = Field(10, ge=1, description="Random candidate pairs scored per query (active).")
    segment_length: int = Field(25, ge=1, description="Steps per segment shown to raters.")
    min_segment_length: int = Field(1, ge=1, description="Shortest episode tail kept as a segment.")
    buffer_segments: int = Field(2000, ge=2, description="Most recent segments kept to choose queries from.")
    raters: tuple[RaterConfig, ...] = Field(
        (RaterConfig(name="rater"),), min_length=1, description="The simulated human raters (each answers every query)."
    )
    labeler: Literal["raters", "constitution"] = Field(
        "raters",
        description="Who labels each pair: the raters, or the stage's constitution (RL from AI feedback; the stage "
        "needs a constitution).",
    )
    spot_check: float = Field(
        0.0,
        ge=0,
        le=1,
        description="With labeler: constitution, share of pairs the raters answer too (their answer wins there).",
    )
    disagreement_alarm: float = Field(
        0.3, ge=0, le=1, description="Judge-human disagreement rate of a principle above which the alarm fires."
    )
    disagreement_min_checks: int = Field(
        10, ge=1, description="Pairs compared for a principle before its disagreement can raise the alarm."
    )
    true_profile: dict[str, float] = Field(
        default_factory=dict, description="Hidden true utility = env reward + these event weights (for evaluation)."
    )
    reward_model: RewardModelConfig = Field(
        default_factory=RewardModelConfig, description="Reward-model ensemble size and training."
    )
    alarm_window: int = Field(4, ge=2, description="Chunks over which the over-optimisation trends are fitted.")
    alarm_z: float = Field(2.0, ge=0, description="Standard errors a trend must exceed to raise the alarm.")
    use_human_answers: bool = Field(
        True, description="Train on answers people gave with 'upbringing feedback RUN_DIR' as well."
    )

    @model_validator(mode="after")
    def _check(self) -> FeedbackConfig:
        if self.min_segment_length > self.segment_length:
            raise ValueError("min_segment_length must not exceed segment_length")
        names = [r.name for r in self.raters]
        if len(set(names)) != len(names):
            raise ValueError(f"rater names must be distinct, got {names}")
        if self.spot_check > 0 and self.labeler == "raters":
            raise ValueError(
                f"spot_check ({self.spot_check}) needs an AI labeller: set labeler: constitution "
                "(with labeler: raters the raters already answer every pair)"
            )
        return self


def parse_feedback_config(
    data: Any, file: str, lines: LineMap | None = None, prefix: Sequence[str | int] = ()
) -> FeedbackConfig:
    """Validate a ``feedback:`` block read with :func:`upbringing.yamlfile.load_yaml`.

    Raises:
        FileError: one problem per invalid key, with its line when ``lines`` is given.
    """
    try:
        return FeedbackConfig.model_validate(data if data is not None else {})
    except ValidationError as err:
        raise FileError(pydantic_problems(err, file, lines or LineMap(), prefix)) from None
