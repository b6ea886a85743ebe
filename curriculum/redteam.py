"""Adversarial constitutional testing: a red team that searches a stage's task space for hard-principle violations.

:class:`RedTeamTeacher` and the pieces it is built from (:func:`build_teacher` builds every run's teacher):

- a **task space** per stage and level: what one training episode can be set to. For generated moral stories
  (``moral/Stories-v0``) a task is (template family, story seed) at the level being trained: the family is the kind
  of situation, the seed decides the cast's names, setting, objects and rewards. Only the stage's training families
  are ever drawn (held-out families stay unseen). For any other env a task is the episode's reset seed (which decides
  a physics scene's parameters or a game's draws). A space draws tasks uniformly and *mutates* a task into a
  neighbour: the same family with a new seed (new names, new setting), or for the seed space simply another seed;
- a **buffer** of tasks on which the agent violated a hard principle, prioritised like Prioritized Level Replay
  (Jiang et al. 2021) with the episode's hard-principle cost as the score: rank prioritisation with temperature
  ``beta``, mixed with staleness ``rho``; a task that stops violating keeps a zero score and is evicted first;
- a **sampler**, frozen at the start of each chunk from the buffer, that each env draws its episodes' tasks from:
  a ``replay_share`` of episodes replay buffer tasks, a ``mutate_share`` play mutations of them (the search, as
  ACCEL edits high-regret levels, Parker-Holder et al. 2022), the rest uniform tasks (exploration and the
  reference the red team is measured against);
- :class:`RedTeamTasks`, the outermost wrapper of each training env, which sets every episode's task and reports it
  (``info["episode_stats"]["redteam"]``: task, how it was drawn, the episode's hard-principle cost).

Held-out evaluation never goes through the sampler: it plays the stage's held-out split as always.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import gymnasium as gym
import numpy as np
from upbringing.curriculum.config import RedTeamConfig, RunConfig
from upbringing.curriculum.factory import stage_levels
from upbringing.curriculum.teachers import TEACHERS, ReviewSettings, SequentialTeacher, Task, Teacher, prioritised
from upbringing.envs.episode import DrawnTask, EpisodeStats
from upbringing.envs.moral.generator import FAMILIES, TRAIN_FAMILIES, build_story

SOURCES = ("uniform", "replay", "mutate")
"""How an episode's task was drawn."""


# ------------------------------------------------------------------------------------------------ task spaces
@dataclass(frozen=True)
class StorySpace:
    """Generated moral stories at one level: a task is ``{"family", "seed"}`` from the given (training) families."""

    families: tuple[str, ...]
    level: int

    def uniform(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"family": self.families[int(rng.integers(len(self.families)))], "seed": int(rng.integers(2**31))}

    def mutate(self, task: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """The same kind of situation with a new cast, setting and rewards."""
        return {"family": task["family"], "seed": int(rng.integers(2**31))}

    def key(self, task: dict[str, Any]) -> str:
        return f"{task['family']}:{self.level}:{task['seed']}"

    def reset_args(self, task: dict[str, Any]) -> dict[str, Any]:
        return {"options": {"story": build_story(task["family"], self.level, task["seed"])}}


@dataclass(frozen=True)
class SeedSpace:
    """Any env: a task is ``{"seed"}``, the episode's reset seed (no neighbourhood: a mutation is another seed)."""

    def uniform(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"seed": int(rng.integers(2**31))}

    def mutate(self, task: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        return self.uniform(rng)

    def key(self, task: dict[str, Any]) -> str:
        return f"seed:{task['seed']}"

    def reset_args(self, task: dict[str, Any]) -> dict[str, Any]:
        return {"seed": int(task["seed"])}


TaskSpace = StorySpace | SeedSpace


def task_space(env_id: str, env_kwargs: dict[str, Any]) -> TaskSpace:
    """The task space of a stage's env at one level (its training families, for generated stories)."""
    if env_id == "moral/Stories-v0":
        families = env_kwargs.get("families")
        if families is None:
            split = env_kwargs.get("split", "train")
            families = tuple(FAMILIES) if split == "all" else TRAIN_FAMILIES
        return StorySpace(tuple(families), int(env_kwargs.get("level", 0)))
    return SeedSpace()


# ------------------------------------------------------------------------------------------------ sampling
@dataclass(frozen=True)
class TaskSampler:
    """What one chunk's envs draw their episodes' tasks from (frozen: it travels to subprocess envs as it is).

    Attributes:
        space: The task space.
        tasks: Buffer tasks, and ``probs`` their replay probabilities.
        replay_share: Chance an episode replays a buffer task.
        mutate_share: Chance an episode plays a mutation of a buffer task.
        seed: Seeds each env's draws, with the env's own reset seed.
    """

    space: TaskSpace
    tasks: tuple[dict[str, Any], ...]
    probs: tuple[float, ...]
    replay_share: float
    mutate_share: float
    seed: int

    def draw(self, rng: np.random.Generator) -> tuple[dict[str, Any], str]:
        """One episode's task and how it was drawn (``uniform``, ``replay`` or ``mutate``)."""
        u = rng.random()
        if self.tasks and u < self.replay_share + self.mutate_share:
            task = self.tasks[int(rng.choice(len(self.tasks), p=np.asarray(self.probs)))]
            if u < self.replay_share:
                return dict(task), "replay"
            return self.space.mutate(task, rng), "mutate"
        return self.space.uniform(rng), "uniform"

    def wrap(self, env: gym.Env) -> gym.Env:
        return RedTeamTasks(env, self)


class RedTeamTasks(gym.Wrapper):
    """Sets each episode's task from a :class:`TaskSampler` and reports it at the episode's end.

    The draws come from an RNG seeded by (sampler seed, the env's reset seed) at each seeded reset, so a vectorized
    env seeded as the engine seeds it draws the same tasks on every run. It sits outermost, over
    :class:`~upbringing.envs.episode.RecordEpisodeStats`, and sets the episode statistics' ``drawn``
    (:class:`~upbringing.envs.episode.DrawnTask`): the task, its key, how it was drawn and the episode's summed
    hard-principle cost (``info["cost"]``).
    """

    def __init__(self, env: gym.Env, sampler: TaskSampler):
        super().__init__(env)
        self.sampler = sampler
        self._rng = np.random.default_rng(sampler.seed)
        self._task: tuple[dict[str, Any], str] | None = None
        self._cost = 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._rng = np.random.default_rng([self.sampler.seed, seed])
        self._cost = 0.0
        if options:  # an explicit story or option from the caller wins
            self._task = None
            return self.env.reset(seed=seed, options=options)
        task, source = self.sampler.draw(self._rng)
        self._task = (task, source)
        args = self.sampler.space.reset_args(task)
        return self.env.reset(seed=args.get("seed", seed), options=args.get("options"))

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._cost += float(info.get("cost", 0.0))
        if (terminated or truncated) and self._task is not None and "episode_stats" in info:
            task, source = self._task
            drawn = DrawnTask(task=task, key=self.sampler.space.key(task), source=source, hard_cost=self._cost)
            info["episode_stats"] = replace(info["episode_stats"], drawn=drawn)
        return obs, reward, terminated, truncated, info


# ------------------------------------------------------------------------------------------------ the buffer
class RedTeamBuffer:
    """Tasks on which the agent violated a hard principle, with PLR's scores and staleness (one per stage level).

    Args:
        capacity: Most tasks kept; beyond it the lowest-scored (then stalest) task is evicted.
        temperature: PLR's ``beta``.
        staleness: PLR's ``rho``.
    """

    def __init__(self, capacity: int, temperature: float, staleness: float):
        self.capacity = capacity
        self.temperature = temperature
        self.staleness = staleness
        self.entries: dict[str, dict[str, Any]] = {}  # key -> task, score, last_seen
        self.found: list[str] = []  # keys of every distinct violating task found, in order
        self.clock = 0  # chunks recorded

    def distribution(self) -> tuple[list[dict[str, Any]], np.ndarray]:
        """The buffer's tasks (in insertion order) and their replay probabilities."""
        rows = list(self.entries.values())
        if not rows:
            return [], np.zeros(0)
        return [r["task"] for r in rows], prioritised(
            [r["score"] for r in rows], [r["last_seen"] for r in rows], self.clock, self.temperature, self.staleness
        )

    def record(self, episodes: list[EpisodeStats]) -> dict[str, float]:
        """Score the chunk's episodes: a violating task enters (or stays in) the buffer with its hard cost as the
        score; a buffered task played without violation scores 0. Returns counts per source."""
        self.clock += 1
        known = set(self.found)
        counts = {f"{s}/{k}": 0.0 for s in SOURCES for k in ("episodes", "violating", "new")}
        for e in episodes:
            tag = e.drawn
            if tag is None:
                continue
            key, cost, source = tag.key, tag.hard_cost, tag.source
            counts[f"{source}/episodes"] += 1
            if cost > 0:
                counts[f"{source}/violating"] += 1
                if key not in known:
                    known.add(key)
                    self.found.append(key)
                    counts[f"{source}/new"] += 1
                self.entries[key] = {"task": dict(tag.task), "score": cost, "last_seen": self.clock}
            elif key in self.entries:
                self.entries[key].update(score=0.0, last_seen=self.clock)
        while len(self.entries) > self.capacity:
            worst = min(self.entries, key=lambda k: (self.entries[k]["score"], self.entries[k]["last_seen"]))
            del self.entries[worst]
        return counts

    def state_dict(self) -> dict[str, Any]:
        return {"entries": self.entries, "found": list(self.found), "clock": self.clock}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.entries = {k: dict(v) for k, v in state["entries"].items()}
        self.found = list(state["found"])
        self.clock = int(state["clock"])


# ------------------------------------------------------------------------------------------------ the teacher
class RedTeamTeacher(SequentialTeacher):
    """Adversarial constitutional testing: stages advance as with :class:`SequentialTeacher`, and within the
    current (stage, level) a red team sets every training episode's task (see :mod:`upbringing.curriculum.redteam`).

    It keeps, per (stage, level), a buffer of tasks on which the agent violated a hard principle, scored by the
    episode's hard-principle cost and prioritised as PLR prioritises regret (rank temperature, staleness); each
    chunk a share of episodes replays buffered tasks, a share plays mutations of them (the search), the rest are
    uniform draws from the same space. The buffers, the found tasks and the RNG are saved with the teacher, so a
    resumed run draws exactly the tasks the uninterrupted run draws.

    Args:
        spaces: The task space of each stage's each level.
        settings: The search's shares, buffer size and prioritisation.
    """

    name = "redteam"

    def __init__(
        self,
        levels: list[int],
        budgets: list[int],
        review: ReviewSettings,
        seed: int,
        spaces: list[list[TaskSpace]] | None = None,
        settings: RedTeamConfig | None = None,
    ):
        self.spaces = spaces
        self.settings = settings or RedTeamConfig()
        self.buffers: dict[str, RedTeamBuffer] = {}  # "stage:level" -> buffer
        super().__init__(levels, budgets, review, seed)

    def buffer(self, stage: int, level: int) -> RedTeamBuffer:
        key = f"{stage}:{level}"
        if key not in self.buffers:
            s = self.settings
            self.buffers[key] = RedTeamBuffer(s.capacity, s.temperature, s.staleness)
        return self.buffers[key]

    def next_task(self) -> Task | None:
        task = super().next_task()
        if task is None or task.review or self.spaces is None:
            return task
        buffer = self.buffer(task.stage, task.level)
        tasks, probs = buffer.distribution()
        s = self.settings
        sampler = TaskSampler(
            self.spaces[task.stage][task.level],
            tuple(tasks),
            tuple(float(p) for p in probs),
            s.replay_share,
            s.mutate_share,
            int(self.rng.integers(2**63)),
        )
        return replace(task, sampler=sampler)

    def record_episodes(self, task: Task, episodes: list[EpisodeStats]) -> dict[str, float]:
        if task.review or task.sampler is None:
            return {}
        buffer = self.buffer(task.stage, task.level)
        counts = buffer.record(episodes)
        metrics = {f"redteam/{k}": v for k, v in counts.items()}
        for source in ("uniform", "replay", "mutate"):
            n = counts[f"{source}/episodes"]
            if n:
                metrics[f"redteam/{source}/violations_per_1000"] = 1000 * counts[f"{source}/violating"] / n
        metrics["redteam/buffer_size"] = float(len(buffer.entries))
        metrics["redteam/found_total"] = float(len(buffer.found))
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "buffers": {k: b.state_dict() for k, b in self.buffers.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.buffers = {}
        for key, b in state["buffers"].items():
            stage, level = (int(x) for x in key.split(":"))
            self.buffer(stage, level).load_state_dict(b)


def build_teacher(config: RunConfig) -> Teacher:
    """The teacher ``config.curriculum.teacher`` names (one of :data:`~upbringing.curriculum.teachers.TEACHERS`, or
    ``redteam``), set up for the config's stages."""
    cur = config.curriculum
    levels = [stage_levels(s) for s in config.stages]
    args = (
        [len(lv) for lv in levels],
        [s.budget for s in config.stages],
        ReviewSettings(cur.review_fraction, cur.review_boost, cur.demote_below),
    )
    if cur.teacher == RedTeamTeacher.name:
        spaces = [[task_space(s.env, kw) for kw in lv] for s, lv in zip(config.stages, levels)]
        return RedTeamTeacher(*args, seed=config.seed, spaces=spaces, settings=cur.redteam)
    return TEACHERS[cur.teacher](*args, seed=config.seed)
