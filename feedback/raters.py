"""Simulated human raters with B-Pref's knobs, pools of them, and inter-rater agreement.

A :class:`SimulatedRater` judges segments by a hidden utility: the env's task reward (times ``task_weight``) plus a
value profile over ``info["events"]`` (e.g. ``{"unfair": -2.0, "helped": 1.0}`` for a rater who weighs fairness most).
How it answers follows B-Pref (Lee et al., 2021, "B-Pref: Benchmarking Preference-Based Reinforcement Learning"):

1. **skip**: if both segments are bad (the better utility is below ``skip_threshold``) it gives no answer;
2. **myopia**: step ``t`` of a ``T``-step segment weighs ``gamma ** (T - 1 - t)``, so later steps weigh more;
3. **rationality**: with ``beta=None`` it prefers the higher (discounted) utility; otherwise it samples from the
   Bradley-Terry model ``P(a) = sigmoid(beta * (U_a - U_b) / spread)``;
4. **mistakes**: with probability ``epsilon`` the answer is flipped;
5. **ties**: if the undiscounted utilities differ by less than ``equal_threshold`` the answer is 0.5.

With ``scale_aware=True`` (the default) utilities are divided by the rater's running spread (the standard deviation
of every segment utility it has seen), so ``beta`` and the thresholds mean the same thing in every stage whatever the
scale of its reward.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from upbringing.feedback.data import Preference, Segment


class RaterConfig(BaseModel):
    """One simulated rater: what it values and how reliably it answers."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str = Field("rater", description="Name in the preference data (rows say 'sim:<name>').")
    beta: float | None = Field(
        None, gt=0, description="Bradley-Terry rationality; None answers perfectly rationally (no sampling)."
    )
    gamma: float = Field(1.0, gt=0, le=1, description="Myopia: weight gamma**(T-1-t) on step t of a T-step segment.")
    epsilon: float = Field(0.0, ge=0, le=1, description="Probability that an answer is flipped (a mistake).")
    skip_threshold: float | None = Field(
        None, description="Skip (no answer) when the better segment's utility is below this; None never skips."
    )
    equal_threshold: float = Field(0.0, ge=0, description="Answer 0.5 (a tie) when utilities differ by less.")
    task_weight: float = Field(1.0, description="Weight of the env's task reward in the hidden utility.")
    profile: dict[str, float] = Field(
        default_factory=dict, description="Value profile: weight per event name, added to the hidden utility."
    )
    scale_aware: bool = Field(
        True, description="Divide utilities by the running spread before beta and the thresholds act on them."
    )

    @field_validator("profile")
    @classmethod
    def _finite_weights(cls, profile: dict[str, float]) -> dict[str, float]:
        bad = [k for k, v in profile.items() if not math.isfinite(v)]
        if bad:
            raise ValueError(f"profile weights must be finite numbers: {bad}")
        return profile


def step_utilities(segment: Segment, profile: dict[str, float], task_weight: float = 1.0) -> np.ndarray:
    """Per-step hidden utility: ``task_weight * reward + sum(profile[e] * events[e])``."""
    u = task_weight * np.asarray(segment.rewards, dtype=np.float64)
    if profile and segment.events:
        for t, events in enumerate(segment.events[: len(u)]):
            u[t] += sum(w * float(events.get(name, 0.0)) for name, w in profile.items())
    return u


def segment_utility(segment: Segment, profile: dict[str, float], task_weight: float = 1.0) -> float:
    """Undiscounted hidden utility of a whole segment."""
    return float(step_utilities(segment, profile, task_weight).sum())


class _RunningStats:
    """Welford mean/variance of the segment utilities a rater has seen (its sense of scale)."""

    def __init__(self) -> None:
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, x: float) -> None:
        self.count += 1
        delta = x - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (x - self.mean)

    @property
    def spread(self) -> float:
        std = math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0
        # Before the rater has seen two different utilities there is no scale yet; 1.0 keeps raw units.
        return std if std > 1e-12 else 1.0

    def state(self) -> dict[str, float]:
        return {"count": self.count, "mean": self.mean, "m2": self.m2}

    def load(self, state: dict[str, float]) -> None:
        self.count, self.mean, self.m2 = int(state["count"]), float(state["mean"]), float(state["m2"])


class SimulatedRater:
    """A simulated person who compares two segments (or rates one) by a hidden utility.

    Args:
        config: The rater's values and B-Pref knobs.
        seed: Seed or ``numpy.random.Generator`` for its randomness (BT sampling, mistakes).
    """

    def __init__(self, config: RaterConfig, seed: int | np.random.Generator | None = 0):
        self.config = config
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self._stats = _RunningStats()

    @property
    def id(self) -> str:
        """The ``rater`` field of the rows it answers."""
        return f"sim:{self.config.name}"

    @property
    def spread(self) -> float:
        """Running standard deviation of the segment utilities seen so far (1.0 until there is one)."""
        return self._stats.spread

    def utility(self, segment: Segment) -> float:
        """Undiscounted hidden utility of ``segment``."""
        return segment_utility(segment, self.config.profile, self.config.task_weight)

    def _discounted(self, segment: Segment) -> float:
        u = step_utilities(segment, self.config.profile, self.config.task_weight)
        if self.config.gamma == 1.0:
            return float(u.sum())
        weights = self.config.gamma ** np.arange(len(u) - 1, -1, -1, dtype=np.float64)
        return float((weights * u).sum())

    def compare(self, a: Segment, b: Segment) -> float | None:
        """Probability label that ``a`` is preferred: 1.0, 0.0, 0.5 (tie) or None (skipped)."""
        cfg = self.config
        ua, ub = self.utility(a), self.utility(b)
        self._stats.add(ua)
        self._stats.add(ub)
        scale = self._stats.spread if cfg.scale_aware else 1.0
        # Draw both random numbers on every call so the stream does not depend on which branch was taken.
        u_sample, u_mistake = self.rng.random(2)
        if cfg.skip_threshold is not None and max(ua, ub) / scale < cfg.skip_threshold:
            return None
        diff = (self._discounted(a) - self._discounted(b)) / scale
        if cfg.beta is None:
            label = 1.0 if diff > 0 else 0.0 if diff < 0 else 0.5
        else:
            p_a = 1.0 / (1.0 + math.exp(-max(min(cfg.beta * diff, 700.0), -700.0)))
            label = 1.0 if u_sample < p_a else 0.0
        if u_mistake < cfg.epsilon:
            label = 1.0 - label
        # As in B-Pref, the tie test comes last and uses the undiscounted utilities: ties are never "mistaken".
        if abs(ua - ub) / scale < cfg.equal_threshold:
            label = 0.5
        return label

    def label(self, a: Segment, b: Segment, query_id: str = "", meta: dict[str, Any] | None = None) -> Preference:
        """Answer one query as a :class:`Preference` row (``label`` None when skipped)."""
        return Preference(a=a, b=b, label=self.compare(a, b), rater=self.id, query_id=query_id, meta=dict(meta or {}))

    def rate(self, segment: Segment, levels: int = 5) -> int | None:
        """Rate one segment on ``1..levels`` (None when skipped).

        The utility is standardised by the running mean and spread; with ``beta`` set, Gaussian noise of standard
        deviation ``1/beta`` is added; the result falls into one of ``levels`` equally likely bins of a
        standard normal. A mistake (probability ``epsilon``) replaces the rating by a uniformly drawn other level.
        """
        cfg = self.config
        u = self.utility(segment)
        self._stats.add(u)
        noise, u_mistake, u_other = self.rng.standard_normal(), self.rng.random(), self.rng.random()
        scale = self._stats.spread if cfg.scale_aware else 1.0
        if cfg.skip_threshold is not None and u / scale < cfg.skip_threshold:
            return None
        z = (u - self._stats.mean) / self._stats.spread
        if cfg.beta is not None:
            z += noise / cfg.beta
        cdf = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
        if levels < 2:
            raise ValueError(f"levels must be at least 2, got {levels}")
        level = min(int(cdf * levels), levels - 1) + 1
        if u_mistake < cfg.epsilon:
            others = [lv for lv in range(1, levels + 1) if lv != level]
            level = others[min(int(u_other * len(others)), len(others) - 1)]
        return level

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state (random stream and running spread) for exact resume."""
        return {"rng": self.rng.bit_generator.state, "stats": self._stats.state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.rng.bit_generator.state = state["rng"]
        self._stats.load(state["stats"])


def _side(label: float | None) -> int | None:
    if label is None:
        return None
    return 1 if label > 0.5 else -1 if label < 0.5 else 0


class AgreementTally:
    """Running inter-rater agreement; add each query's labels with :meth:`add`, read :meth:`result`.

    Answers fall into three categories (a, tie, b); skipped answers (None) are left out.
    """

    def __init__(self) -> None:
        self.agree = 0
        self.pairs = 0
        self.items = 0
        self.p_sum = 0.0
        self.totals = [0.0, 0.0, 0.0]

    def add(self, row: Sequence[float | None]) -> None:
        """Add one query's labels, one per rater."""
        sides = [s for s in (_side(x) for x in row) if s is not None]
        n = len(sides)
        if n < 2:
            return
        counts = [sides.count(-1), sides.count(0), sides.count(1)]
        same = sum(c * (c - 1) for c in counts)
        self.agree += same // 2
        self.pairs += n * (n - 1) // 2
        self.items += 1
        self.p_sum += same / (n * (n - 1))
        self.totals = [t + c for t, c in zip(self.totals, counts)]

    def result(self) -> dict[str, float]:
        """``agreement``: share of agreeing rater pairs among pairs that both answered a query; ``kappa``: Fleiss'
        kappa (Fleiss, 1971) over queries answered by at least two raters. NaN before any such query."""
        if not self.pairs:
            return {"agreement": float("nan"), "kappa": float("nan")}
        p_bar = self.p_sum / self.items
        total = sum(self.totals)
        p_e = sum((t / total) ** 2 for t in self.totals)
        kappa = 1.0 if p_e >= 1.0 - 1e-12 else (p_bar - p_e) / (1.0 - p_e)
        return {"agreement": self.agree / self.pairs, "kappa": kappa}

    def state(self) -> dict[str, Any]:
        return {
            "agree": self.agree,
            "pairs": self.pairs,
            "items": self.items,
            "p_sum": self.p_sum,
            "totals": list(self.totals),
        }

    def load(self, state: dict[str, Any]) -> None:
        self.agree, self.pairs, self.items = int(state["agree"]), int(state["pairs"]), int(state["items"])
        self.p_sum, self.totals = float(state["p_sum"]), [float(t) for t in state["totals"]]


def agreement(labels: Sequence[Sequence[float | None]]) -> dict[str, float]:
    """Inter-rater agreement over queries, each given as the list of its raters' labels (None = skipped).

    See :meth:`AgreementTally.result` for the two figures returned (``agreement`` and ``kappa``).
    """
    tally = AgreementTally()
    for row in labels:
        tally.add(row)
    return tally.result()


class RaterPool:
    """Several simulated raters, each answering every query, with running inter-rater agreement.

    Args:
        raters: The raters; their ids must be distinct.
    """

    def __init__(self, raters: Sequence[SimulatedRater]):
        if not raters:
            raise ValueError("a rater pool needs at least one rater")
        ids = [r.id for r in raters]
        if len(set(ids)) != len(ids):
            raise ValueError(f"rater names must be distinct in a pool, got {ids}")
        self.raters = list(raters)
        self.tally = AgreementTally()

    @classmethod
    def from_configs(cls, configs: Sequence[RaterConfig], seed: int = 0) -> RaterPool:
        """Build a pool; each rater gets an independent random stream spawned from ``seed``."""
        streams = np.random.SeedSequence(seed).spawn(len(configs))
        return cls([SimulatedRater(c, np.random.default_rng(s)) for c, s in zip(configs, streams)])

    def label(self, a: Segment, b: Segment, query_id: str = "", meta: dict[str, Any] | None = None) -> list[Preference]:
        """Every rater's answer to one query (skipped answers included, with ``label=None``)."""
        rows = [r.label(a, b, query_id, meta) for r in self.raters]
        self.tally.add([row.label for row in rows])
        return rows

    def agreement(self) -> dict[str, float]:
        """:func:`agreement` over every query this pool has answered."""
        return self.tally.result()

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state of every rater and the agreement tally."""
        return {"raters": [r.state_dict() for r in self.raters], "tally": self.tally.state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        for rater, s in zip(self.raters, state["raters"], strict=True):
            rater.load_state_dict(s)
        self.tally.load(state["tally"])
