"""Reinforcement learning from AI feedback: a constitution labels pairs of trajectory segments.

For each pair, :class:`ConstitutionLabeler` samples a principle (as in Constitutional AI, Bai et al. 2022) and
prefers the segment that follows it better: lower total cost for a hard or soft principle, more virtue for an
aspirational one, judged from the segments' ground-truth events (rule judges) or texts (model judges). The result
is :class:`feedback.data.Preference` rows in the same format as the simulated human raters', so the same reward model
trains on both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from upbringing.constitutions.constitution import Constitution, Context, Principle
from upbringing.feedback.data import Preference, Segment


class ConstitutionLabeler:
    """Label which of two segments better follows a sampled principle of a constitution.

    Args:
        constitution: The constitution whose principles judge.
        context: Only principles active here are sampled (all when None).
        principles: Restrict sampling to these ids.
        seed: Seed of the principle sampling (same seed, same labels).
        tie_tolerance: Score differences up to this count as equally good (label 0.5).
        resample_ties: When the sampled principle cannot tell the segments apart, try the other eligible principles
            in random order and use the first that can; if none can, the label is 0.5.
        by_priority: Sample principles with probability proportional to ``1 + priority - min priority`` instead of
            uniformly, so the principles that matter most are asked about most.
    """

    def __init__(
        self,
        constitution: Constitution,
        context: Context | None = None,
        *,
        principles: Iterable[str] | None = None,
        seed: int = 0,
        tie_tolerance: float = 0.0,
        resample_ties: bool = True,
        by_priority: bool = False,
    ):
        pool = constitution.principles if context is None else constitution.active(context)
        if principles is not None:
            wanted = set(principles)
            unknown = wanted - set(constitution.ids)
            if unknown:
                raise KeyError(f"{constitution.name} has no principle(s) {sorted(unknown)}")
            pool = tuple(p for p in pool if p.id in wanted)
        if not pool:
            raise ValueError(f"no principle of {constitution.name} is eligible to label with")
        self.constitution = constitution
        self.principles: tuple[Principle, ...] = tuple(pool)
        self.rater = f"constitution:{constitution.name}"
        self.tie_tolerance = float(tie_tolerance)
        self.resample_ties = resample_ties
        self._rng = np.random.default_rng(seed)
        weights = np.ones(len(pool))
        if by_priority:
            low = min(p.priority for p in pool)
            weights = np.array([1.0 + p.priority - low for p in pool])
        self._p = weights / weights.sum()

    def score(self, segment: Segment, principle: Principle) -> float:
        """How well ``segment`` follows ``principle``: minus its total cost, or its total virtue if aspirational."""
        judge = self.constitution.judges[principle.id]
        steps = max(len(segment.events), len(segment.texts))
        total = 0.0
        for i in range(steps):
            events = segment.events[i] if i < len(segment.events) else {}
            text = segment.texts[i] if i < len(segment.texts) else None
            total += judge.cost(events, text, None)
        return total if principle.tier == "aspirational" else -total

    def label(self, a: Segment, b: Segment, query_id: str = "") -> Preference:
        """One labelled comparison of ``a`` and ``b`` (``label`` 1.0: a follows the principle better)."""
        first = int(self._rng.choice(len(self.principles), p=self._p))
        order = [first]
        if self.resample_ties:
            rest = [i for i in range(len(self.principles)) if i != first]
            order += [rest[i] for i in self._rng.permutation(len(rest))]
        label, asked = 0.5, self.principles[first]
        score_a = score_b = 0.0
        for i in order:
            principle = self.principles[i]
            score_a, score_b = self.score(a, principle), self.score(b, principle)
            if abs(score_a - score_b) > self.tie_tolerance:
                label, asked = (1.0 if score_a > score_b else 0.0), principle
                break
        if label == 0.5:
            score_a, score_b = self.score(a, asked), self.score(b, asked)
        meta = {"principle": asked.id, "principle_text": asked.text, "score_a": score_a, "score_b": score_b}
        return Preference(a=a, b=b, label=label, rater=self.rater, query_id=query_id, meta=meta)

    def label_pairs(self, pairs: Sequence[tuple[Segment, Segment]], query_prefix: str = "") -> list[Preference]:
        """Label every pair in order; query ids are ``<query_prefix><index>``."""
        return [self.label(a, b, f"{query_prefix}{i}") for i, (a, b) in enumerate(pairs)]
