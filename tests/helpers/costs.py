"""Per-episode costs accumulated step by step from the shaping wrapper's infos: a test harness for learners written
in the tests (the engine reads finished episodes from :class:`upbringing.envs.episode.EpisodeStats`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from upbringing.constitutions import EpisodeRecord


class _Open:
    __slots__ = ("costs", "env_return", "length", "virtues")

    def __init__(self) -> None:
        self.costs: dict[str, float] = {}
        self.virtues: dict[str, float] = {}
        self.env_return = 0.0
        self.length = 0


def _accumulate(total: dict[str, float], step: Mapping[str, float] | None) -> None:
    if step:
        for k, v in step.items():
            total[k] = total.get(k, 0.0) + float(v)


class EpisodeCostTracker:
    """Accumulate per-episode costs for a batch of envs, from infos or per-step cost dicts."""

    def __init__(self) -> None:
        self._open: dict[int, _Open] = {}
        self._finished: list[EpisodeRecord] = []

    def add(
        self,
        index: int,
        costs: Mapping[str, float] | None,
        done: bool,
        virtues: Mapping[str, float] | None = None,
        env_reward: float = 0.0,
        success: bool | None = None,
    ) -> EpisodeRecord | None:
        """Record one step of env ``index``; returns the finished episode's record when ``done``."""
        acc = self._open.get(index)
        if acc is None:
            acc = self._open[index] = _Open()
        _accumulate(acc.costs, costs)
        _accumulate(acc.virtues, virtues)
        acc.env_return += float(env_reward)
        acc.length += 1
        if not done:
            return None
        del self._open[index]
        record = EpisodeRecord(acc.costs, acc.virtues, acc.env_return, acc.length, success)
        self._finished.append(record)
        return record

    def add_info(self, index: int, info: Mapping[str, Any], done: bool) -> EpisodeRecord | None:
        """Record one step of env ``index`` from its info dict (as the shaping wrapper left it)."""
        terms = info.get("reward_terms")
        env_reward = terms.get("env", 0.0) if terms else 0.0
        success = info.get("success") if done else None
        return self.add(
            index, info.get("costs"), done, info.get("virtues"), env_reward, None if success is None else bool(success)
        )

    def observe(self, infos: Sequence[Mapping[str, Any]], dones: Iterable[Any]) -> None:
        """Record one vectorized step: env ``i``'s info and done flag (SB3 ``VecEnv`` order)."""
        for i, (info, done) in enumerate(zip(infos, dones)):
            self.add_info(i, info, bool(done))

    def pop(self) -> list[EpisodeRecord]:
        """The episodes finished since the last pop (episodes still running keep accumulating)."""
        out, self._finished = self._finished, []
        return out

    def discard_running(self) -> None:
        """Forget the episodes still running (their envs were reset); finished episodes stay until popped."""
        self._open.clear()
