"""Constitutional reward shaping: one named reward term per active principle, plus Safety-Gymnasium-style costs.

:class:`ConstitutionalShaping` (a Gymnasium wrapper; multi-agent stages are shaped per learner seat, on the
single-agent view each seat plays) judges every step with the principles active in its
:class:`~constitutions.constitution.Context` and adds, per principle, the term ``constitution/<id>`` (recorded in
``info["reward_terms"]``, so the reward equals the sum of its terms):

- hard: ``-lambda_k * cost_k`` with the principle's current Lagrange multiplier;
- soft: ``-weight * cost``;
- aspirational: ``+bonus * virtue``.

It also writes ``info["costs"]`` (the judged cost of every active hard and soft principle, by id, 0 when not
violated), ``info["cost"]`` (the sum of the active *hard* principles' costs only: the constraint cost, as in
Safety-Gymnasium) and ``info["virtues"]`` (the judged virtue of every active aspirational principle).

Priorities settle conflicts between principles judged on the same step, in the reward terms only (costs and
virtues always report what the judges measured): an aspirational bonus is withheld when a principle of higher
priority is violated on that step (no credit for a kept promise that harmed someone), and a soft penalty is waived
when an aspirational principle of higher priority is fulfilled and itself not outranked by a hard violation (a white
lie that saved a life). Hard constraints are never waived.

Tension between tiers: where the env previews each action's events (``env.unwrapped.preview_events()``, the story
engine does), :class:`ConstitutionalShaping` also writes ``info["tension"]`` on every step with at least two valid
actions: ``{"steps": 1.0, "<hard>__<aspirational>": 1.0 if the pair pulls the choice apart there else 0.0}`` (the
definition and its limits are in :mod:`upbringing.constitutions.tension`). It adds nothing to the reward.

Multipliers: the wrapper reads them from a :class:`~constitutions.lagrangian.Multipliers` object on every step. In
one process (``DummyVecEnv``), pass the :class:`~constitutions.lagrangian.Lagrangian` (or its ``multipliers``) and
every update is seen at once. In a ``SubprocVecEnv`` each worker holds a pickled copy: the engine updates the
multipliers once per chunk, between chunks, and builds each chunk's envs afresh, so every worker starts a chunk with
the current values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
from upbringing.constitutions.constitution import Constitution, Context
from upbringing.constitutions.lagrangian import Lagrangian, Multipliers
from upbringing.constitutions.tension import Preview, TensionPlan, env_previews
from upbringing.envs.terms import AddRewardTerms

_HARD, _SOFT, _ASPIRATIONAL = 0, 1, 2
_TIER_CODE = {"hard": _HARD, "soft": _SOFT, "aspirational": _ASPIRATIONAL}
_NO_EVENTS: Mapping[str, float] = {}


def as_multipliers(multipliers: Multipliers | Lagrangian | Mapping[str, float] | None) -> Multipliers:
    """The shared :class:`Multipliers` behind ``multipliers`` (a fixed copy for a plain mapping; zeros for None)."""
    if isinstance(multipliers, Multipliers):
        return multipliers
    if isinstance(multipliers, Lagrangian):
        return multipliers.multipliers
    return Multipliers(multipliers)


class ShapingPlan:
    """The principles of a constitution active in one context, compiled for cheap per-step evaluation.

    Args:
        constitution: The constitution.
        context: Where the agent is; decides the active principles (layers).
    """

    def __init__(self, constitution: Constitution, context: Context):
        active = constitution.active(context)
        self.ids = tuple(p.id for p in active)
        self.term_names = tuple(f"constitution/{p.id}" for p in active)
        self._tiers = tuple(_TIER_CODE[p.tier] for p in active)
        self._judges = tuple(constitution.judges[p.id] for p in active)
        self._coefs = tuple(p.coefficient for p in active)
        self._priorities = tuple(p.priority for p in active)
        self._items = tuple(zip(self.ids, self.term_names, self._tiers, self._judges, self._coefs))
        self.needs_text = any(j.needs_text for j in self._judges)
        # only when priorities differ can principles outrank each other
        self._ranked = len(set(self._priorities)) > 1
        self._virtue_index = tuple(k for k, t in enumerate(self._tiers) if t == _ASPIRATIONAL)
        # a step without events costs nothing unless some rule fires on absent events (e.g. `not: ...`)
        self._quiet_when_empty = not self.needs_text and all(j.cost(_NO_EVENTS) == 0.0 for j in self._judges)
        self._zero_terms = dict.fromkeys(self.term_names, 0.0)
        self._zero_costs = {i: 0.0 for i, t in zip(self.ids, self._tiers) if t != _ASPIRATIONAL}
        self._zero_virtues = {i: 0.0 for i, t in zip(self.ids, self._tiers) if t == _ASPIRATIONAL}

    def evaluate(
        self,
        events: Mapping[str, float] | None,
        lambdas: Mapping[str, float],
        situation: str | None = None,
        action: str | None = None,
    ) -> tuple[dict[str, float], dict[str, float], dict[str, float], float]:
        """Judge one step.

        Args:
            events: The step's ``info["events"]``.
            lambdas: Current multipliers of hard principles, by id.
            situation: The situation text the action was chosen in (model judges only).
            action: The chosen action's text (model judges only).

        Returns:
            ``(terms, costs, virtues, cost)``: reward terms by name, hard+soft costs by id, aspirational virtues by
            id, and the hard principles' summed cost.
        """
        if not events and self._quiet_when_empty:
            return dict(self._zero_terms), dict(self._zero_costs), dict(self._zero_virtues), 0.0
        events = events or _NO_EVENTS
        values = [judge.cost(events, situation, action) for judge in self._judges]
        terms: dict[str, float] = {}
        costs: dict[str, float] = {}
        virtues: dict[str, float] = {}
        hard_cost = 0.0
        # a conflict needs a virtue shown on this step (to waive a penalty or to be withheld): rare, so check first
        if self._ranked and any(values[k] > 0.0 for k in self._virtue_index):
            waived, withheld = self._conflicts(values)
        else:
            waived = withheld = set()
        for k, (pid, name, tier, _judge, coef) in enumerate(self._items):
            v = values[k]
            if tier == _HARD:
                costs[pid] = v
                hard_cost += v
                terms[name] = -lambdas.get(pid, 0.0) * v
            elif tier == _SOFT:
                costs[pid] = v
                terms[name] = 0.0 if k in waived else -coef * v
            else:
                virtues[pid] = v
                terms[name] = 0.0 if k in withheld else coef * v
        return terms, costs, virtues, hard_cost

    def _conflicts(self, values: list[float]) -> tuple[set[int], set[int]]:
        """Indices of soft penalties waived and aspirational bonuses withheld on this step (see module docs)."""
        tiers, prio = self._tiers, self._priorities
        top_hard = max((prio[k] for k, v in enumerate(values) if v > 0 and tiers[k] == _HARD), default=None)
        top_virtue = max(
            (
                prio[k]
                for k, v in enumerate(values)
                if v > 0 and tiers[k] == _ASPIRATIONAL and (top_hard is None or prio[k] >= top_hard)
            ),
            default=None,
        )
        waived = {
            k
            for k, v in enumerate(values)
            if v > 0 and tiers[k] == _SOFT and top_virtue is not None and prio[k] < top_virtue
        }
        top_violation = max(
            (prio[k] for k, v in enumerate(values) if v > 0 and tiers[k] != _ASPIRATIONAL and k not in waived),
            default=None,
        )
        withheld = {
            k
            for k, v in enumerate(values)
            if v > 0 and tiers[k] == _ASPIRATIONAL and top_violation is not None and prio[k] < top_violation
        }
        return waived, withheld


def _action_text(action_texts: Any, action: Any) -> str | None:
    if action_texts is None:
        return None
    try:
        return str(action_texts[int(action)])
    except (IndexError, TypeError, ValueError):
        return None


def _judge_step(plan: Any, multipliers: Any, info: dict[str, Any], situation: Any, act: Any) -> dict[str, float]:
    """Judge one step (one agent's, for PettingZoo): write ``costs``, ``cost`` and ``virtues`` into ``info`` and
    return the reward terms, for both shaping wrappers."""
    terms, costs, virtues, cost = plan.evaluate(info.get("events"), multipliers.values, situation, act)
    info["costs"], info["cost"], info["virtues"] = costs, cost, virtues
    return terms


class ConstitutionalShaping(AddRewardTerms):
    """Add one ``constitution/<id>`` reward term per active principle to a Gymnasium env (see the module docs).

    Sets ``info["costs"]`` (active hard and soft principles' judged costs by id), ``info["cost"]`` (the sum over
    active hard principles only) and ``info["virtues"]`` (active aspirational principles) on every step.

    Args:
        env: The env (its infos keep the :mod:`upbringing.envs.contract`).
        constitution: The constitution to apply.
        context: Where the agent is; decides which principles are active.
        multipliers: Multipliers of hard principles: a :class:`~constitutions.lagrangian.Lagrangian` or its shared
            :class:`~constitutions.lagrangian.Multipliers` (updates are seen at once), a fixed mapping, or None (all
            zero: hard principles are measured but cost nothing).
    """

    def __init__(
        self,
        env: gym.Env,
        constitution: Constitution,
        context: Context,
        multipliers: Multipliers | Lagrangian | Mapping[str, float] | None = None,
    ):
        super().__init__(env)
        self.constitution = constitution
        self.context = context
        self.plan = ShapingPlan(constitution, context)
        self.multipliers = as_multipliers(multipliers)
        self.tension = TensionPlan(constitution, context)
        self._situation: str | None = None
        self._action_texts: Any = None
        self._previews: list[Preview] | None = None

    def _remember(self, info: dict[str, Any]) -> None:
        # model judges read the situation the action was chosen in: the text shown before this step
        if self.plan.needs_text or self.tension.needs_text:
            self._situation = info.get("text")
            self._action_texts = info.get("action_texts")
        # what each action would do from here, previewed before the next one is taken
        self._previews = env_previews(self.env) if self.tension.active else None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._remember(info)
        return obs, info

    def step(self, action: Any):
        out = super().step(action)
        self._remember(out[4])
        return out

    def terms(self, action: Any, info: dict[str, Any]) -> dict[str, float]:
        if self._previews is not None:
            tension = self.tension.judge(self._previews, self._situation, self._action_texts)
            if tension is not None:
                info["tension"] = tension
        if self.plan.needs_text:
            situation, act = self._situation, _action_text(self._action_texts, action)
        else:
            situation = act = None
        return _judge_step(self.plan, self.multipliers, info, situation, act)
