"""Hierarchical oversight: a cheap AI judge labels every pair, simulated humans spot-check a share of them.

The judge is any callable that labels a pair of segments (the constitution's labeller plugs in here and returns
:class:`~feedback.data.Preference` rows; a plain ``float | None`` label is accepted too). On a spot-checked pair the
human pool answers as well; the humans' consensus (the mean of their answers) replaces the judge's label, and a
disagreement (different preferred side, a tie counting as its own side) is recorded in the judge row's ``meta``.

Disagreement is also counted per principle (the judge row's ``meta["principle"]``, which the constitution labeller
sets; ``judge`` for judges that name none), so an author sees *which* principle the AI judge applies unlike people.
:meth:`HierarchicalOversight.check_alarm` raises the oversight alarm for a principle whose disagreement rate exceeds a
threshold once it has enough compared pairs; it fires when the rate crosses the threshold and re-arms when it falls
back. People's answers given later (the terminal and web pages) are compared with :meth:`HierarchicalOversight.record`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from upbringing.feedback.data import Preference, Segment
from upbringing.feedback.raters import RaterPool

Judge = Callable[[Segment, Segment], Preference | float | None]


def side(label: float | None) -> int | None:
    """Which side a label prefers: 1 (a), -1 (b), 0 (tie), None (skipped)."""
    if label is None:
        return None
    return 1 if label > 0.5 else -1 if label < 0.5 else 0


def principle_of(row: Preference) -> str:
    """The principle a judge row was decided by (``meta["principle"]``), else ``judge``."""
    principle = row.meta.get("principle")
    return str(principle) if principle else "judge"


@dataclass
class OversightResult:
    """The outcome of one overseen query.

    Attributes:
        rows: Every row produced (the judge's, then the humans' if spot-checked), in the order asked.
        train: The rows to train on (the humans' answers on spot-checked pairs, else the judge's).
        spot_checked: Whether humans answered this pair.
        disagreed: Whether the judge and the human consensus prefer different sides (None when not compared).
    """

    rows: list[Preference]
    train: list[Preference]
    spot_checked: bool
    disagreed: bool | None = None


@dataclass
class OversightStats:
    """Running counts for the ``feedback/oversight/...`` metrics."""

    judged: int = 0
    spot_checks: int = 0
    compared: int = 0
    disagreements: int = 0
    per_principle: dict[str, list[int]] = field(default_factory=dict)  # principle -> [compared, disagreements]
    alarmed: set[str] = field(default_factory=set)  # principles whose alarm has fired and not re-armed yet
    alarms: int = 0

    def add(self, principle: str, disagreed: bool) -> None:
        """Count one comparison of the judge with the humans on a pair judged by ``principle``."""
        self.compared += 1
        self.disagreements += int(disagreed)
        counts = self.per_principle.setdefault(principle, [0, 0])
        counts[0] += 1
        counts[1] += int(disagreed)

    def rate(self, principle: str) -> float:
        """Disagreement rate of one principle (NaN before any comparison)."""
        compared, disagreed = self.per_principle.get(principle, [0, 0])
        return disagreed / compared if compared else float("nan")

    def metrics(self) -> dict[str, float]:
        """The running figures, named for logging (``.../<principle>/...`` per principle the judge used)."""
        rate = self.disagreements / self.compared if self.compared else float("nan")
        out = {
            "feedback/oversight/judge_labels": float(self.judged),
            "feedback/oversight/spot_checks": float(self.spot_checks),
            "feedback/oversight/compared": float(self.compared),
            "feedback/oversight/disagreements": float(self.disagreements),
            "feedback/oversight/disagreement_rate": rate,
            "feedback/oversight/alarms": float(self.alarms),
        }
        for principle, (compared, _) in sorted(self.per_principle.items()):
            out[f"feedback/oversight/{principle}/compared"] = float(compared)
            out[f"feedback/oversight/{principle}/disagreement_rate"] = self.rate(principle)
        return out


class HierarchicalOversight:
    """An AI judge labels each pair; a share ``spot_check`` is also answered by humans, whose labels win.

    Args:
        judge: Labels a pair: returns a :class:`Preference` (its ``rater`` names the judge) or a label.
        humans: The simulated (or other) human raters who spot-check.
        spot_check: Share of pairs the humans answer, in [0, 1].
        rng: Random stream deciding which pairs are spot-checked.
        judge_name: Rater id for judges that return a bare label.
    """

    def __init__(
        self,
        judge: Judge,
        humans: RaterPool,
        spot_check: float,
        rng: np.random.Generator,
        judge_name: str = "judge:ai",
    ):
        if not 0.0 <= spot_check <= 1.0:
            raise ValueError(f"spot_check must be in [0, 1], got {spot_check}")
        self.judge = judge
        self.humans = humans
        self.spot_check = spot_check
        self.rng = rng
        self.judge_name = judge_name
        self.stats = OversightStats()

    def _judge_row(self, a: Segment, b: Segment, query_id: str, meta: dict[str, Any]) -> Preference:
        out = self.judge(a, b)
        if isinstance(out, Preference):
            return Preference(a=a, b=b, label=out.label, rater=out.rater, query_id=query_id, meta={**meta, **out.meta})
        label = None if out is None else float(out)
        return Preference(a=a, b=b, label=label, rater=self.judge_name, query_id=query_id, meta=dict(meta))

    def label(self, a: Segment, b: Segment, query_id: str = "", meta: dict[str, Any] | None = None) -> OversightResult:
        """Label one pair (judge first, then humans if this pair is drawn for a spot-check)."""
        meta = dict(meta or {})
        judged = self._judge_row(a, b, query_id, meta)
        self.stats.judged += 1
        if self.rng.random() >= self.spot_check:
            return OversightResult(rows=[judged], train=[judged], spot_checked=False)
        self.stats.spot_checks += 1
        humans = self.humans.label(a, b, query_id, {**meta, "spot_check": True})
        answered = [r.label for r in humans if r.label is not None]
        if not answered:
            # Every human skipped: nothing to check against, so the judge's label stands.
            return OversightResult(rows=[judged, *humans], train=[judged], spot_checked=True)
        consensus = float(np.mean(answered))
        disagreed = side(consensus) != side(judged.label)
        self.stats.add(principle_of(judged), disagreed)
        judged.meta.update({"overridden": True, "human_consensus": consensus, "disagreement": disagreed})
        return OversightResult(rows=[judged, *humans], train=humans, spot_checked=True, disagreed=disagreed)

    def record(self, judged: Preference, human_label: float) -> bool:
        """Compare a judge row with a person's later answer to the same query (terminal or web); returns whether
        they disagree. The caller trains on the person's answer instead of the judge's."""
        disagreed = side(human_label) != side(judged.label)
        self.stats.add(principle_of(judged), disagreed)
        return disagreed

    def check_alarm(self, threshold: float, min_checks: int) -> list[tuple[str, float, int]]:
        """Principles whose judge-human disagreement rate has just risen above ``threshold``.

        A principle counts once it has at least ``min_checks`` compared pairs (a rate from two pairs says little).
        Its alarm fires when the rate crosses the threshold and re-arms when the rate falls back to it or below.

        Returns:
            ``(principle, rate, compared)`` for each alarm that fired now.
        """
        fired: list[tuple[str, float, int]] = []
        for principle, (compared, _) in sorted(self.stats.per_principle.items()):
            rate = self.stats.rate(principle)
            if compared >= min_checks and rate > threshold:
                if principle not in self.stats.alarmed:
                    self.stats.alarmed.add(principle)
                    self.stats.alarms += 1
                    fired.append((principle, rate, compared))
            else:
                self.stats.alarmed.discard(principle)
        return fired

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: the spot-check stream, the human pool and the counts."""
        s = self.stats
        return {
            "rng": self.rng.bit_generator.state,
            "humans": self.humans.state_dict(),
            "stats": [s.judged, s.spot_checks, s.compared, s.disagreements],
            "per_principle": s.per_principle,
            "alarmed": sorted(s.alarmed),
            "alarms": s.alarms,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.rng.bit_generator.state = state["rng"]
        self.humans.load_state_dict(state["humans"])
        judged, spot_checks, compared, disagreements = (int(x) for x in state["stats"])
        self.stats = OversightStats(
            judged,
            spot_checks,
            compared,
            disagreements,
            per_principle={k: list(v) for k, v in state.get("per_principle", {}).items()},
            alarmed=set(state.get("alarmed", [])),
            alarms=int(state.get("alarms", 0)),
        )
