"""Judges: how a principle measures one step. A judge returns a cost >= 0 (for aspirational principles: how much of
the virtue was shown), from the step's ground-truth events and, for model judges, the text of situation + action.

- :class:`RuleJudge` evaluates a compiled :mod:`upbringing.constitutions.rules` condition over ``info["events"]``;
- :class:`~constitutions.model_judges.EmbeddingJudge`, :class:`~constitutions.model_judges.ClassifierJudge` and
  :class:`~constitutions.model_judges.NLIJudge` score the text with a model (imported lazily, results cached).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar, Literal

from upbringing.constitutions.rules import Condition

Measure = Literal["indicator", "magnitude"]
TextInput = Literal["situation_and_action", "action", "situation"]


def compose_text(situation: str | None, action: str | None, mode: TextInput = "situation_and_action") -> str:
    """The text a model judge reads: the situation, the chosen action, or both (``"<situation>\\nAction: <act>"``).

    Without a separate action text (e.g. a feedback segment's text, which already holds both), every mode reads the
    situation text.
    """
    if mode == "action":
        return action or situation or ""
    if mode == "situation" or not action:
        return situation or ""
    if not situation:
        return f"Action: {action}"
    return f"{situation}\nAction: {action}"


class Judge(ABC):
    """Measures how much one step violates (or, for aspirational principles, fulfils) a principle.

    Attributes:
        needs_text: True if the judge reads the text view (so the shaping wrapper keeps the last situation text).
    """

    needs_text: ClassVar[bool] = False

    @abstractmethod
    def cost(self, events: Mapping[str, float], situation: str | None = None, action: str | None = None) -> float:
        """The step's cost (>= 0) given its ``info["events"]`` and the text of the situation and chosen action."""


class RuleJudge(Judge):
    """A declarative rule over ``info["events"]``.

    Args:
        condition: The compiled condition (see :func:`upbringing.constitutions.rules.compile_condition`).
        measure: ``indicator``: cost 1 on a step where the condition holds; ``magnitude``: the summed magnitudes of
            the events the condition names (outside ``not``) on a step where it holds.
    """

    def __init__(self, condition: Condition, measure: Measure = "indicator"):
        self.condition = condition
        self.measure = measure
        self._names = condition.names

    def cost(self, events: Mapping[str, float], situation: str | None = None, action: str | None = None) -> float:
        if not self.condition(events):
            return 0.0
        if self.measure == "indicator":
            return 1.0
        total = 0.0
        for name in self._names:
            total += events.get(name, 0.0)
        # a cost is never negative: a negative magnitude would turn a constraint into a reward
        return total if total > 0.0 else 0.0

    def __repr__(self) -> str:
        return f"RuleJudge({self.condition!r}, measure={self.measure!r})"
