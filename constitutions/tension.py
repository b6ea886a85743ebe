"""Tension between tiers: steps where a hard principle and an aspirational principle pull the choice apart.

It tells a constitution's author where their principles disagree about what to do, as opposed to where the agent
misbehaves: a hard rule that forbids the only generous action, a promise that can be kept only by doing harm.

Definition (per step, per pair of an active hard principle ``h`` and an active aspirational principle ``a``). The
env previews the events each valid action would report (``env.unwrapped.preview_events()``, one mapping per action
of the ``Discrete`` space, None for a closed slot). ``h`` *requires* the valid actions of least ``h``-cost; ``a``
*prefers* the valid actions of most ``a``-virtue; a principle that scores every valid action alike has no opinion
there. The pair is **in tension** at the step when both have an opinion and no action is both required by ``h`` and
preferred by ``a``: whatever the agent does, it breaks what ``h`` requires or forgoes what ``a`` prefers. The rate of
a pair is (steps in tension) / (steps judged), a step being judged when it has previews of at least two valid actions.
It does not depend on the action the agent took: it measures the situations, not the agent.

Limits:

- Only envs that preview their actions are judged. The story engine (``moral/Stories-v0`` and the hand-written
  story envs) previews exactly, since a step reports the chosen choice's annotations; Ink stories, social and
  physics envs preview nothing, so their steps are never judged (no metric rather than a guess).
- One step only: an action whose consequence comes later (a lie found out two scenes on) is judged by the events it
  reports now, so delayed tension is missed.
- Model judges read the situation text and each action's text; rule judges read the previewed events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from upbringing.constitutions.constitution import Constitution, Context
from upbringing.constitutions.judges import Judge

STEPS = "steps"
"""Key of ``info["tension"]`` counting judged steps (pair keys always hold ``__``, so they never collide)."""
Preview = Mapping[str, float] | None


def pair_name(hard: str, aspirational: str) -> str:
    """``<hard>__<aspirational>``: the key of a pair in ``info["tension"]`` and its metric's last part."""
    return f"{hard}__{aspirational}"


def env_previews(env: Any) -> list[Preview] | None:
    """The events each action of ``env`` would report now: ``env.unwrapped.preview_events()`` (None: no preview)."""
    preview = getattr(env.unwrapped, "preview_events", None)
    return list(preview()) if callable(preview) else None


def _best(scores: list[float], actions: list[int], lowest: bool) -> frozenset[int] | None:
    """The actions with the best score, or None when every action scores alike (no opinion)."""
    lo, hi = min(scores), max(scores)
    if lo == hi:
        return None
    target = lo if lowest else hi
    return frozenset(k for k, s in zip(actions, scores) if s == target)


class TensionPlan:
    """The hard x aspirational principle pairs active in a context, and their tension at a previewed step.

    Args:
        constitution: The constitution.
        context: Where the agent is; decides the active principles.
    """

    def __init__(self, constitution: Constitution, context: Context):
        active = constitution.active(context)
        self.hard: tuple[tuple[str, Judge], ...] = tuple(
            (p.id, constitution.judges[p.id]) for p in active if p.tier == "hard"
        )
        self.aspirational: tuple[tuple[str, Judge], ...] = tuple(
            (p.id, constitution.judges[p.id]) for p in active if p.tier == "aspirational"
        )
        self.pairs = tuple(pair_name(h, a) for h, _ in self.hard for a, _ in self.aspirational)
        self.needs_text = any(j.needs_text for _, j in (*self.hard, *self.aspirational))

    @property
    def active(self) -> bool:
        """Whether there is any pair to judge (at least one hard and one aspirational principle)."""
        return bool(self.pairs)

    def judge(
        self,
        previews: Sequence[Preview],
        situation: str | None = None,
        action_texts: Sequence[str] | None = None,
    ) -> dict[str, float] | None:
        """The step's tension: ``{"steps": 1.0, "<h>__<a>": 1.0 | 0.0, ...}``, or None when the step is not judged.

        Args:
            previews: Events per action (None for a closed slot).
            situation: The situation text (model judges only).
            action_texts: Each action's text (model judges only).
        """
        actions = [k for k, events in enumerate(previews) if events is not None]
        if not self.active or len(actions) < 2:
            return None

        def scores(judge: Judge) -> list[float]:
            out = []
            for k in actions:
                text = action_texts[k] if self.needs_text and action_texts is not None else None
                out.append(judge.cost(previews[k] or {}, situation if self.needs_text else None, text))
            return out

        required = {h: _best(scores(j), actions, lowest=True) for h, j in self.hard}
        preferred = {a: _best(scores(j), actions, lowest=False) for a, j in self.aspirational}
        out = {STEPS: 1.0}
        for h, _ in self.hard:
            for a, _ in self.aspirational:
                need, want = required[h], preferred[a]
                out[pair_name(h, a)] = float(need is not None and want is not None and not need & want)
        return out


def tension_rates(totals: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Rate per pair over episodes' summed ``info["tension"]``: steps in tension / steps judged (pairs of episodes
    with judged steps only; empty when nothing was judged)."""
    steps = sum(t.get(STEPS, 0.0) for t in totals)
    if steps <= 0:
        return {}
    names = sorted({k for t in totals for k in t if k != STEPS})
    return {k: sum(t.get(k, 0.0) for t in totals) / steps for k in names}


def tension_metrics(totals: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """``constitution/tension/<hard>__<aspirational>`` rates, and ``constitution/tension/steps`` judged."""
    rates = tension_rates(totals)
    if not rates:
        return {}
    out = {f"constitution/tension/{k}": v for k, v in rates.items()}
    out[f"constitution/tension/{STEPS}"] = float(sum(t.get(STEPS, 0.0) for t in totals))
    return out
