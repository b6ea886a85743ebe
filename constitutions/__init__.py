"""Constitutions: written principles that shape the reward at every stage of an agent's upbringing.

A constitution file (YAML, see ``constitutions/FORMAT.md``) lists principles, each with a tier (``hard``: a budgeted
constraint enforced by a Lagrange multiplier; ``soft``: a weighted penalty; ``aspirational``: a bonus), the contexts
it applies to (layers), a priority and a judge (a declarative rule over ``info["events"]``, or a model judge).

Typical use by the engine::

    constitution = load_constitution("default")                # or a path; FileError lists every problem
    context = Context.for_env(env_id, stage="moral-stories", risk="high")
    lagrangian = Lagrangian.from_constitution(constitution)
    env = ConstitutionalShaping(RecordEnvReward(envs.make(env_id)), constitution, context, lagrangian)
    ...  # train a chunk; its finished episodes (envs.episode.EpisodeStats) become EpisodeRecords
    lagrangian.update(mean_costs(records, lagrangian.budgets))
    compliance(eval_episodes, constitution, context)["compliant"]  # promotion needs it
"""

from __future__ import annotations

from typing import Any

from upbringing.constitutions.constitution import (
    CANONICAL_EVENTS,
    SHIPPED,
    Constitution,
    Context,
    Principle,
    known_event_names,
    looks_like_constitution,
    resolve_constitution,
    shipped_path,
)
from upbringing.constitutions.judges import Judge, RuleJudge
from upbringing.constitutions.labeler import ConstitutionLabeler
from upbringing.constitutions.lagrangian import Lagrangian, Multipliers
from upbringing.constitutions.loading import check_constitution_file, load_constitution, parse_constitution
from upbringing.constitutions.shaping import ConstitutionalShaping, ShapingPlan
from upbringing.constitutions.tracking import (
    EpisodeRecord,
    compliance,
    episode_metrics,
    format_compliance,
    mean_costs,
    violation_rates,
)

# imported on first use: the model judges pull in transformers
_LAZY = {
    "EmbeddingJudge": "upbringing.constitutions.model_judges",
    "ClassifierJudge": "upbringing.constitutions.model_judges",
    "NLIJudge": "upbringing.constitutions.model_judges",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'constitutions' has no attribute {name!r}")


__all__ = [
    "CANONICAL_EVENTS",
    "SHIPPED",
    "ClassifierJudge",
    "Constitution",
    "ConstitutionLabeler",
    "ConstitutionalShaping",
    "Context",
    "EmbeddingJudge",
    "EpisodeRecord",
    "Judge",
    "Lagrangian",
    "Multipliers",
    "NLIJudge",
    "Principle",
    "RuleJudge",
    "ShapingPlan",
    "check_constitution_file",
    "compliance",
    "episode_metrics",
    "format_compliance",
    "known_event_names",
    "load_constitution",
    "looks_like_constitution",
    "mean_costs",
    "parse_constitution",
    "resolve_constitution",
    "shipped_path",
    "violation_rates",
]
