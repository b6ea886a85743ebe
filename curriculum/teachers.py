"""Teachers decide what the agent trains on next and react to held-out evaluations.

The base class keeps the curriculum's state (per-stage progress, a seeded RNG, moving averages of held-out scores)
and saves it with every checkpoint, so after a resume the teacher asks for exactly the tasks it would have asked for.
A teacher is a short subclass that overrides :meth:`Teacher.next_task`.

Mastery is tracked per stage, and a stage is one concept (one env): infants learn physical concepts event by event,
so no transfer between concepts is assumed. After a stage is mastered it is reviewed (spaced review): each mastered
stage keeps a floor probability of being replayed, raised in proportion to how far its retention has fallen below
the score it was mastered at; when retention falls below ``demote_below`` the stage is demoted and trained again
until re-mastered.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, Protocol

import numpy as np
from upbringing.curriculum.promotion import Verdict
from upbringing.envs.episode import EpisodeStats

Outcome = Literal["level_up", "promotion", "remastered", "not_remastered", "not_mastered"]
"""What a held-out verdict on a training task did: a level up, the stage mastered (promotion), a demoted stage
mastered again or not within its relearning budget, or the stage's budget spent without mastery. Each is also the
name of the run's event."""

ReviewOutcome = Literal["demotion"]
"""What a review's held-out score did: retention fell below ``demote_below`` and the stage is trained again."""


class EpisodeTasks(Protocol):
    """What sets each training episode's task (the red team's sampler): a wrapper for every env of the chunk."""

    def wrap(self, env: Any) -> Any: ...


@dataclass(frozen=True)
class Task:
    """What the next training chunk runs: a stage, one of its levels, whether it is a review of a mastered one, and
    (for teachers that pick them, like :class:`PrioritizedLevelReplay`) the seed of the chunk's envs; None leaves
    the seed to the engine (a function of the run seed and chunk index); and, for teachers that set each episode's
    task (the red team of :mod:`upbringing.curriculum.redteam`), the sampler the chunk's envs draw them from."""

    stage: int
    level: int
    review: bool = False
    seed: int | None = None
    sampler: EpisodeTasks | None = None  # each episode's task, drawn by the red team (curriculum/redteam.py)

    def env_factory(self, factory: Any) -> Any:
        """The stage's env factory for this task: with the sampler's wrapper outermost when there is one."""
        return factory if self.sampler is None else replace(factory, outer=(self.sampler.wrap,))


@dataclass
class StageProgress:
    """Where one stage stands."""

    level: int = 0
    steps: int = 0
    mastered: bool = False
    finished: bool = False
    steps_to_mastery: int | None = None
    skipped: bool = False
    mastery_score: float | None = None  # held-out score when mastered
    retention: float | None = None  # latest held-out score since then
    demotions: int = 0
    relearn_steps: int = 0  # training steps since the last demotion


@dataclass(frozen=True)
class ReviewSettings:
    """Spaced review and demotion.

    Attributes:
        floor: Probability that a chunk replays a mastered stage while retention holds.
        boost: How much that probability rises per unit of retention lost (score at mastery minus now).
        demote_below: Retention score under which a mastered stage is demoted; None: never demote.
    """

    floor: float = 0.1
    boost: float = 1.0
    demote_below: float | None = None


class Teacher:
    """Mastery-gated progress through ordered stages, with spaced review of mastered stages and demotion.

    Args:
        levels: Number of levels of each stage.
        budgets: Most training env steps of each stage.
        review: Spaced review and demotion settings.
        seed: Seed of the teacher's own RNG.
        ema: Smoothing of the fast and slow moving averages of each stage's held-out score.
    """

    name = "base"

    def __init__(
        self,
        levels: list[int],
        budgets: list[int],
        review: ReviewSettings,
        seed: int,
        ema: tuple[float, float] = (0.5, 0.1),
    ):
        self.levels = list(levels)
        self.budgets = list(budgets)
        self.review = review
        self.rng = np.random.default_rng(seed)
        self.ema_fast, self.ema_slow = ema
        self.progress = [StageProgress() for _ in levels]
        self.current = 0
        self.demoted: list[int] = []
        self.fast = [None] * len(levels)  # type: list[float | None]
        self.slow = [None] * len(levels)  # type: list[float | None]
        self.start()

    def start(self) -> None:
        """Hook: set up the starting state (the base starts at stage 0, level 0)."""

    # ----------------------------------------------------------------------------------------- what to train next
    @property
    def done(self) -> bool:
        return all(p.finished for p in self.progress) and not self.demoted

    def mastered_stages(self) -> list[int]:
        return [i for i, p in enumerate(self.progress) if p.mastered and not p.skipped]

    def review_probability(self, exclude: int | None = None) -> dict[int, float]:
        """Chance that the next chunk replays each mastered stage: the floor, shared, plus each stage's retention
        deficit times ``boost`` (capped so at least some chunks still go to new learning)."""
        stages = [i for i in self.mastered_stages() if i != exclude and i not in self.demoted]
        if not stages:
            return {}
        probs = {}
        for i in stages:
            p = self.progress[i]
            deficit = 0.0
            if p.retention is not None and p.mastery_score is not None:
                deficit = max(0.0, p.mastery_score - p.retention)
            probs[i] = self.review.floor / len(stages) + self.review.boost * deficit
        total = sum(probs.values())
        cap = 0.9
        return {i: v * cap / total for i, v in probs.items()} if total > cap else probs

    def _review_or(self, task: Task, exclude: int) -> Task:
        probs = self.review_probability(exclude)
        u = self.rng.random()
        for stage, p in probs.items():
            if u < p:
                return Task(stage, self.levels[stage] - 1, review=True)
            u -= p
        return task

    def _unfinished(self) -> list[int]:
        return [i for i, p in enumerate(self.progress) if not p.finished]

    def next_task(self) -> Task | None:
        """The next chunk's task, or None when the curriculum is over. The base: demoted stages first, then the
        first unfinished stage, with spaced review of mastered ones."""
        if self.demoted:
            stage = self.demoted[0]
            return self._review_or(Task(stage, self.progress[stage].level), stage)
        unfinished = self._unfinished()
        if not unfinished:
            return None
        self.current = unfinished[0]
        return self._review_or(Task(self.current, self.progress[self.current].level), self.current)

    # ----------------------------------------------------------------------------------------- what happened
    def record_training(self, task: Task, steps: int) -> None:
        """Count ``steps`` of training on ``task`` (review chunks do not use the stage's budget)."""
        if not task.review:
            self.progress[task.stage].steps += steps
            if task.stage in self.demoted:
                self.progress[task.stage].relearn_steps += steps

    def record_update(self, task: Task, metrics: dict[str, float]) -> None:
        """Hook: the agent's ``train/`` metrics after a chunk of ``task`` (PLR scores levels by them)."""

    def record_episodes(self, task: Task, episodes: list[EpisodeStats]) -> dict[str, float]:
        """Hook: the statistics of the episodes a chunk of ``task`` finished (the red team scores its tasks by
        them); returns metrics to log."""
        return {}

    def observe(self, stage: int, score: float) -> None:
        """A held-out score of ``stage``: update its fast and slow moving averages."""
        f, s = self.fast[stage], self.slow[stage]
        self.fast[stage] = score if f is None else (1 - self.ema_fast) * f + self.ema_fast * score
        self.slow[stage] = score if s is None else (1 - self.ema_slow) * s + self.ema_slow * score

    def record_evaluation(self, task: Task, verdict: Verdict, score: float) -> Outcome | None:
        """Advance on a held-out verdict for a training task; returns its :data:`Outcome`, or None."""
        p = self.progress[task.stage]
        self.observe(task.stage, score)
        if task.stage in self.demoted:
            if verdict.mastered:
                self.demoted.remove(task.stage)
                p.mastery_score, p.retention = score, score
                return "remastered"
            if p.relearn_steps >= self.budgets[task.stage] // 2:  # relearning gets half the stage's budget
                self.demoted.remove(task.stage)
                p.retention = score
                return "not_remastered"
            return None
        outcome: Outcome | None = None
        if verdict.mastered:
            if p.level + 1 < self.levels[task.stage]:
                p.level += 1
                outcome = "level_up"
            else:
                p.mastered = True
                p.steps_to_mastery = p.steps
                p.mastery_score = p.retention = score
                outcome = "promotion"
        if outcome != "promotion" and p.steps >= self.budgets[task.stage]:
            outcome = "not_mastered"
        if outcome in ("promotion", "not_mastered"):
            p.finished = True
        return outcome

    def record_review(self, stage: int, score: float) -> ReviewOutcome | None:
        """A held-out score of a mastered stage after a review chunk (its retention). Returns ``"demotion"`` when
        retention fell below ``demote_below``: the stage is trained again until re-mastered."""
        p = self.progress[stage]
        self.observe(stage, score)
        p.retention = score
        below = self.review.demote_below
        if below is not None and score < below and stage not in self.demoted:
            self.demoted.append(stage)
            p.demotions += 1
            p.relearn_steps = 0
            return "demotion"
        return None

    # ----------------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "current": self.current,
            "progress": [asdict(p) for p in self.progress],
            "demoted": list(self.demoted),
            "fast": list(self.fast),
            "slow": list(self.slow),
            "budgets": list(self.budgets),
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["name"] != self.name:
            raise ValueError(f"checkpoint was written by teacher {state['name']!r}, config asks for {self.name!r}")
        self.current = int(state["current"])
        self.progress = [StageProgress(**p) for p in state["progress"]]
        self.demoted = list(state["demoted"])
        self.fast = list(state["fast"])
        self.slow = list(state["slow"])
        self.budgets = list(state["budgets"])
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


class UniformTeacher(Teacher):
    """Domain randomisation: every chunk trains a stage drawn uniformly from those not yet finished (each at its
    own current level), so there is no order and no separate review."""

    name = "uniform"

    def next_task(self) -> Task | None:
        if self.demoted:
            stage = self.demoted[0]
            return Task(stage, self.progress[stage].level)
        unfinished = self._unfinished()
        if not unfinished:
            return None
        stage = int(self.rng.choice(unfinished))
        return Task(stage, self.progress[stage].level)


class LearningProgressTeacher(Teacher):
    """Sample stages by absolute learning progress, |fast - slow| moving averages of their held-out scores
    (Teacher-Student Curriculum Learning, Matiisen et al. 2017; ALP-GMM, Portelas et al. 2019).

    A stage whose score is changing, up or down, is sampled most, so a stage being forgotten comes back. Mastered
    stages stay in the pool (the absolute value notices forgetting) until every stage is finished; an ``epsilon``
    share of chunks, and any stage never scored yet, are explored uniformly.
    """

    name = "learning_progress"
    epsilon = 0.1

    def _progress(self, stage: int) -> float:
        fast, slow = self.fast[stage], self.slow[stage]
        return abs(fast - slow) if fast is not None and slow is not None else np.inf

    def progress_weights(self, pool: list[int]) -> np.ndarray:
        """Sampling probabilities over ``pool`` from absolute learning progress."""
        lp = np.array([self._progress(i) for i in pool], dtype=float)
        if np.isinf(lp).any():  # unexplored stages first
            w = np.isinf(lp).astype(float)
        elif lp.sum() <= 0:
            w = np.ones(len(pool))
        else:
            w = lp
        w = w / w.sum()
        return (1 - self.epsilon) * w + self.epsilon / len(pool)

    def next_task(self) -> Task | None:
        if self.done:
            return None
        pool = [i for i, p in enumerate(self.progress) if not p.skipped]
        stage = int(self.rng.choice(pool, p=self.progress_weights(pool)))
        p = self.progress[stage]
        if p.finished and stage not in self.demoted:  # a finished stage comes back as review (no budget)
            return Task(stage, self.levels[stage] - 1, review=True)
        return Task(stage, p.level)


def prioritised(
    scores: list[float | None], last_seen: list[int], clock: int, temperature: float, staleness: float
) -> np.ndarray:
    """Prioritized Level Replay's replay distribution (Jiang et al. 2021): ``(1 - rho) P_S + rho P_C`` over the
    entries with a score; ``P_S`` ranks scores (rank 1 the highest) as ``(1 / rank) ** (1 / beta)``, ``P_C``
    favours the entries unseen for longest (``clock - last_seen``). Entries without a score get zero."""
    seen = np.array([s is not None for s in scores])
    values = np.array([s if s is not None else -np.inf for s in scores], dtype=float)
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    h = np.where(seen, (1.0 / ranks) ** (1.0 / temperature), 0.0)
    p_score = h / h.sum()
    stale = np.where(seen, clock - np.array(last_seen, dtype=float), 0.0)
    p_stale = stale / stale.sum() if stale.sum() > 0 else p_score
    return (1 - staleness) * p_score + staleness * p_stale


@dataclass(frozen=True)
class PLRSettings:
    """Prioritized Level Replay's settings (Jiang et al. 2021, defaults from their Procgen experiments).

    Attributes:
        n_seeds: Size of each (stage, level)'s pool of env seeds: PLR's finite set of training levels.
        temperature: Beta of the rank prioritisation, P(l) proportional to (1 / rank(score_l)) ** (1 / beta).
        staleness: Rho, the weight of the staleness distribution mixed into the replay distribution.
        replay_probability: P, the chance a chunk replays a seen seed rather than trying an unseen one.
    """

    n_seeds: int = 50
    temperature: float = 0.1
    staleness: float = 0.1
    replay_probability: float = 0.5


class PrioritizedLevelReplay(SequentialTeacher):
    """Prioritized Level Replay (Jiang, Grefenstette and Rocktaeschel, 2021) over each stage's env seeds.

    Stages and their difficulty levels advance as with :class:`SequentialTeacher` (mastery-gated, spaced review);
    within the current (stage, level), each chunk's env seed is PLR's choice from a pool of ``n_seeds`` seeds.
    Each seed's score is the agent's mean positive GAE advantage on its last chunk (``train/positive_value_loss``,
    the paper's "positive value loss", the best of the scores they compared). With probability
    ``replay_probability`` (once a seed has been tried) the chunk replays a seen seed drawn from
    ``(1 - rho) P_S + rho P_C``: ``P_S`` rank-prioritises scores with temperature ``beta``, ``P_C`` favours seeds
    unseen for longest (staleness ``c - C_i``); otherwise it tries an unseen seed uniformly. The scores, last-seen
    counters and the seed pools are saved with the teacher, so a resumed run picks the same seeds.
    """

    name = "plr"
    settings = PLRSettings()

    def start(self) -> None:
        self.seed_rng = np.random.default_rng(self.rng.integers(2**63))
        self.pools: dict[str, dict[str, Any]] = {}  # "stage:level" -> seeds, scores, last_seen, chunks
        self.pending: tuple[str, int] | None = None  # the pool and seed index the last task trained

    def _pool(self, stage: int, level: int) -> dict[str, Any]:
        key = f"{stage}:{level}"
        if key not in self.pools:
            seeds = np.random.SeedSequence([int(self.seed_rng.integers(2**63)), stage, level])
            self.pools[key] = {
                "seeds": [int(s) for s in seeds.generate_state(self.settings.n_seeds)],
                "scores": [None] * self.settings.n_seeds,
                "last_seen": [0] * self.settings.n_seeds,
                "chunks": 0,
            }
        return self.pools[key]

    def replay_distribution(self, pool: dict[str, Any]) -> np.ndarray:
        """P_replay over the pool's seeds (zero for seeds never tried)."""
        cfg = self.settings
        return prioritised(pool["scores"], pool["last_seen"], pool["chunks"], cfg.temperature, cfg.staleness)

    def next_task(self) -> Task | None:
        task = super().next_task()
        if task is None or task.review:
            return task
        pool = self._pool(task.stage, task.level)
        seen = [i for i, s in enumerate(pool["scores"]) if s is not None]
        unseen = [i for i, s in enumerate(pool["scores"]) if s is None]
        if seen and (not unseen or self.rng.random() < self.settings.replay_probability):
            index = int(self.rng.choice(len(pool["seeds"]), p=self.replay_distribution(pool)))
        else:
            index = int(self.rng.choice(unseen))
        self.pending = (f"{task.stage}:{task.level}", index)
        return replace(task, seed=pool["seeds"][index])

    def record_update(self, task: Task, metrics: dict[str, float]) -> None:
        if task.review or self.pending is None:
            return
        key, index = self.pending
        self.pending = None
        pool = self.pools[key]
        pool["chunks"] += 1
        pool["last_seen"][index] = pool["chunks"]
        score = metrics.get("train/positive_value_loss")
        pool["scores"][index] = float(score) if score is not None and np.isfinite(score) else 0.0

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "seed_rng": self.seed_rng.bit_generator.state,
            "pools": self.pools,
            "pending": list(self.pending) if self.pending is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.seed_rng.bit_generator.state = state["seed_rng"]
        self.pools = {k: dict(v) for k, v in state["pools"].items()}
        self.pending = tuple(state["pending"]) if state["pending"] is not None else None  # type: ignore[assignment]


TEACHERS: dict[str, type[Teacher]] = {
    t.name: t
    for t in (
        SequentialTeacher,
        DirectTeacher,
        UniformTeacher,
        LearningProgressTeacher,
        PrioritizedLevelReplay,
    )
}
