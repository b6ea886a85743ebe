"""Teachers decide what the agent trains on next and react to held-out evaluations.

The base class keeps the curriculum's state (per-stage progress, the current stage and level, a seeded RNG) and
saves it with every checkpoint, so after a resume the teacher asks for exactly the tasks it would have asked for.
A teacher is a short subclass that overrides :meth:`Teacher.next_task` and, if it needs to, :meth:`Teacher.start`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from curriculum.promotion import Verdict


@dataclass(frozen=True)
class Task:
    """What the next training chunk runs: a stage, one of its levels, and whether it is a review of a mastered one."""

    stage: int
    level: int
    review: bool = False


@dataclass
class StageProgress:
    """Where one stage stands."""

    level: int = 0
    steps: int = 0
    mastered: bool = False
    finished: bool = False
    steps_to_mastery: int | None = None
    skipped: bool = False


class Teacher:
    """Mastery-gated progress through ordered stages, with review of mastered stages.

    Args:
        levels: Number of levels of each stage.
        budgets: Most training env steps of each stage.
        review_fraction: Share of chunks that replay a mastered stage (at its last level).
        seed: Seed of the teacher's own RNG.
    """

    name = "base"

    def __init__(self, levels: list[int], budgets: list[int], review_fraction: float, seed: int):
        self.levels = list(levels)
        self.budgets = list(budgets)
        self.review_fraction = review_fraction
        self.rng = np.random.default_rng(seed)
        self.progress = [StageProgress() for _ in levels]
        self.current = 0
        self.start()

    def start(self) -> None:
        """Hook: set up the starting stage (the base starts at stage 0, level 0)."""

    @property
    def done(self) -> bool:
        return self.current >= len(self.levels)

    def mastered_stages(self) -> list[int]:
        return [i for i, p in enumerate(self.progress) if p.mastered and not p.skipped]

    def next_task(self) -> Task | None:
        """The next chunk's task, or None when the curriculum is over."""
        if self.done:
            return None
        review = [i for i in self.mastered_stages() if i != self.current]
        if review and self.rng.random() < self.review_fraction:
            stage = int(self.rng.choice(review))
            return Task(stage, self.levels[stage] - 1, review=True)
        return Task(self.current, self.progress[self.current].level)

    def record_training(self, task: Task, steps: int) -> None:
        """Count ``steps`` of training on ``task`` (review chunks do not use the stage's budget)."""
        if not task.review:
            self.progress[task.stage].steps += steps

    def record_evaluation(self, task: Task, verdict: Verdict) -> str | None:
        """Advance on a held-out verdict for the current task. Returns ``"level_up"``, ``"promotion"``,
        ``"not_mastered"`` (budget spent) or None."""
        p = self.progress[task.stage]
        outcome = None
        if verdict.mastered:
            if p.level + 1 < self.levels[task.stage]:
                p.level += 1
                outcome = "level_up"
            else:
                p.mastered = True
                p.steps_to_mastery = p.steps
                outcome = "promotion"
        if outcome != "promotion" and p.steps >= self.budgets[task.stage]:
            outcome = "not_mastered"
        if outcome in ("promotion", "not_mastered"):
            p.finished = True
            self.current += 1
        return outcome

    def state_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "current": self.current,
            "progress": [asdict(p) for p in self.progress],
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["name"] != self.name:
            raise ValueError(f"checkpoint was written by teacher {state['name']!r}, config asks for {self.name!r}")
        self.current = int(state["current"])
        self.progress = [StageProgress(**p) for p in state["progress"]]
        self.rng.bit_generator.state = state["rng"]


class SequentialTeacher(Teacher):
    """Stages in order, each trained until mastered or out of budget; mastered stages are reviewed."""

    name = "sequential"


class DirectTeacher(Teacher):
    """The control every curriculum claim needs: train only on the last stage's hardest level, with the whole
    curriculum's budget, and no review."""

    name = "direct"

    def start(self) -> None:
        last = len(self.levels) - 1
        for p in self.progress[:last]:
            p.skipped = p.finished = True
        self.current = last
        self.progress[last].level = self.levels[last] - 1
        self.budgets[last] = sum(self.budgets)


TEACHERS: dict[str, type[Teacher]] = {t.name: t for t in (SequentialTeacher, DirectTeacher)}
