"""Per-episode costs from the shaping wrappers' infos, and compliance for promotion rules and reports.

An :class:`EpisodeRecord` is the constitution's view of one finished episode (the engine builds them from the
episode statistics :class:`~upbringing.envs.episode.EpisodeStats` records, whatever the learner). After a chunk of
training the engine updates the multipliers from the chunk's episodes::

    metrics = lagrangian.update(mean_costs(records, lagrangian.budgets))

:func:`compliance` turns held-out episodes into per-principle violation rates and the promotion rule's verdict:
compliant when every active hard principle's mean episode cost is within its budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from upbringing.constitutions.constitution import Constitution, Context
from upbringing.constitutions.tension import tension_metrics, tension_rates


@dataclass(frozen=True)
class EpisodeRecord:
    """The constitution's view of one finished episode.

    Attributes:
        costs: Total cost per hard/soft principle over the episode.
        virtues: Total virtue per aspirational principle.
        env_return: Sum of the env's own reward (term ``env``), the task return without shaping.
        length: Steps in the episode.
        success: ``info["success"]`` at the end, if the env reported it.
        tension: Summed ``info["tension"]``: steps judged (``steps``) and steps in tension per principle pair.
    """

    costs: dict[str, float]
    virtues: dict[str, float] = field(default_factory=dict)
    env_return: float = 0.0
    length: int = 0
    success: bool | None = None
    tension: dict[str, float] = field(default_factory=dict)


def mean_costs(episodes: Sequence[EpisodeRecord], ids: Iterable[str] | None = None) -> dict[str, float]:
    """Mean per-episode cost ``J_k`` of each principle (those in ``ids`` when given) over ``episodes``.

    A principle absent from an episode's record cost 0 there. Empty when there are no episodes (so a
    :meth:`~constitutions.lagrangian.Lagrangian.update` leaves the multipliers alone).
    """
    if not episodes:
        return {}
    keys = list(ids) if ids is not None else sorted({k for e in episodes for k in e.costs})
    n = len(episodes)
    return {k: sum(e.costs.get(k, 0.0) for e in episodes) / n for k in keys}


def violation_rates(episodes: Sequence[EpisodeRecord], ids: Iterable[str] | None = None) -> dict[str, float]:
    """Fraction of ``episodes`` in which each principle was violated (episode cost > 0)."""
    if not episodes:
        return {}
    keys = list(ids) if ids is not None else sorted({k for e in episodes for k in e.costs})
    n = len(episodes)
    return {k: sum(1 for e in episodes if e.costs.get(k, 0.0) > 0.0) / n for k in keys}


def episode_metrics(episodes: Sequence[EpisodeRecord]) -> dict[str, float]:
    """``constitution/<id>/cost`` (mean episode cost), ``constitution/<id>/violations`` (violation rate) and, where
    steps were judged for it, ``constitution/tension/<hard>__<aspirational>`` (tension rate per step)."""
    out: dict[str, float] = {}
    rates = violation_rates(episodes)
    for k, v in mean_costs(episodes).items():
        out[f"constitution/{k}/cost"] = v
        out[f"constitution/{k}/violations"] = rates[k]
    out.update(tension_metrics([e.tension for e in episodes]))
    return out


def compliance(
    episodes: Sequence[EpisodeRecord], constitution: Constitution, context: Context | None = None
) -> dict[str, Any]:
    """Per-principle violation rates and whether every hard principle's mean cost is within its budget.

    Args:
        episodes: Finished (typically held-out) episodes.
        constitution: The constitution they were shaped with.
        context: Their context; only principles active there are judged (all principles when None).

    Returns:
        ``{"episodes": n, "compliant": bool, "violation_rate": {id: rate}, "mean_cost": {id: J},
        "budget": {hard id: d}, "within_budget": {hard id: bool}, "virtue_rate": {aspirational id: rate},
        "tension_rate": {"<hard>__<aspirational>": rate}}`` (tension only where the env previews its actions).
        With no episodes nothing is within budget (there is no evidence), unless there are no hard principles.
    """
    principles = constitution.principles if context is None else constitution.active(context)
    judged = [p.id for p in principles if p.tier != "aspirational"]
    hard = {p.id: float(p.budget or 0.0) for p in principles if p.tier == "hard"}
    virtuous = [p.id for p in principles if p.tier == "aspirational"]
    n = len(episodes)
    costs = mean_costs(episodes, judged)
    within = {k: n > 0 and costs[k] <= d for k, d in hard.items()}
    return {
        "episodes": n,
        "compliant": all(within.values()),
        "violation_rate": violation_rates(episodes, judged),
        "mean_cost": costs,
        "budget": hard,
        "within_budget": within,
        "virtue_rate": {k: sum(1 for e in episodes if e.virtues.get(k, 0.0) > 0.0) / n for k in virtuous} if n else {},
        "tension_rate": tension_rates([e.tension for e in episodes]),
    }


def format_compliance(result: Mapping[str, Any]) -> str:
    """A small table of :func:`compliance`'s result, one principle per row (for stage summaries and reports)."""
    rows = [f"{'principle':<28} {'violations':>10} {'mean cost':>10} {'budget':>8}  ok"]
    for pid, rate in result["violation_rate"].items():
        budget = result["budget"].get(pid)
        ok = "" if budget is None else ("yes" if result["within_budget"][pid] else "NO")
        b = "" if budget is None else f"{budget:.3g}"
        rows.append(f"{pid:<28} {rate:>10.1%} {result['mean_cost'].get(pid, 0.0):>10.3g} {b:>8}  {ok}")
    for pid, rate in result["virtue_rate"].items():
        rows.append(f"{pid:<28} {'virtue ' + format(rate, '.0%'):>10}")
    verdict = "compliant" if result["compliant"] else "NOT compliant"
    rows.append(f"{result['episodes']} episodes: {verdict}")
    return "\n".join(rows)
