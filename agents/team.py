"""Independent learners as one agent: each focal seat of a multi-agent game held by its own agent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from upbringing.agents.base import Agent


class Team(Agent):
    """Independent learners: each focal seat of a multi-agent stage held by its own agent, all learning at once.

    Rows of the stage's ``VecEnv`` are the focal seats of games played side by side (rows of a game adjacent, in seat
    order), so row ``i`` belongs to the ``i % len(members)``-th member. :meth:`learn` steps the ``VecEnv`` itself:
    every step each member acts for its own rows and is then told what happened to them (:class:`agents.base.Lockstep`);
    a member updates its policy whenever it has collected a whole rollout of its rows, from those rows only.

    Why a lockstep loop and not each agent's own ``learn``: SB3's ``learn`` (and the LM agent's) drives the env
    itself, so several of them cannot share one game unless they run in threads, which would make the order in which
    they draw from the global random generators, and so the run, depend on scheduling. Here the members act and
    update in seat order, one after another: the same seed gives the same run, and since a chunk holds whole
    rollouts of every member, nothing is left half-collected at a checkpoint (each member's own saved state is all
    there is).

    The members are separate agents (own weights, optimizer, counters, random streams); the team owns no state.

    Args:
        members: The agent holding each focal seat, by seat name (``player_0``, ...), in seat order.
    """

    def __init__(self, members: Mapping[str, Agent]) -> None:
        if len(members) < 2 or len({id(a) for a in members.values()}) != len(members):
            raise ValueError("a team needs two or more distinct agents, one per focal seat")
        self.members = dict(members)
        self.uses_text = any(a.uses_text for a in self.members.values())  # type: ignore[misc]  # per team: any member reads text

    def _rows(self, n: int) -> list[np.ndarray]:
        k = len(self.members)
        if n % k:
            raise ValueError(f"{n} rows do not hold whole games of {k} focal seats")
        return [np.arange(j, n, k) for j in range(k)]

    def act(self, obs: np.ndarray, infos: Sequence[dict[str, Any]], deterministic: bool = False) -> np.ndarray:
        """Each member's actions for its rows of a whole batch of games (row ``i``: member ``i % len(members)``)."""
        out = np.zeros(len(obs), dtype=np.int64)
        for rows, agent in zip(self._rows(len(obs)), self.members.values()):
            out[rows] = agent.act(obs[rows], [infos[i] for i in rows], deterministic)
        return out

    def learn(self, venv: Any, steps: int) -> dict[str, float]:
        """Reset ``venv`` and play ``steps`` env steps (all rows together), every member learning from its rows.

        Returns:
            Each member's ``train/`` metrics of its last update as ``train/<seat>/...``, and each seat's mean episode
            return (``train/<seat>/episode_return``) and cooperation per step (``train/<seat>/cooperation``, in games
            that count each choice as ``cooperated`` or ``defected``) over the finished episodes.
        """
        n = venv.num_envs
        rows = self._rows(n)
        seats = list(self.members)
        learners = [agent.lockstep(len(r)) for agent, r in zip(self.members.values(), rows)]
        obs = venv.reset()
        infos = [dict(i) for i in venv.reset_infos]
        metrics: dict[str, float] = {}
        returns: dict[str, list[float]] = {seat: [] for seat in seats}
        cooperation: dict[str, list[float]] = {seat: [] for seat in seats}
        for _ in range(steps // n):
            actions = np.zeros(n, dtype=np.int64)
            for r, learner in zip(rows, learners):
                actions[r] = learner.act(obs[r], [infos[i] for i in r])
            obs, rewards, dones, step_infos = venv.step(actions)
            reset_infos = venv.reset_infos
            for seat, r, learner in zip(seats, rows, learners):
                update = learner.observe(
                    obs[r], rewards[r], dones[r], [step_infos[i] for i in r], [reset_infos[i] for i in r]
                )
                if update is not None:
                    metrics.update({f"train/{seat}/{k.removeprefix('train/')}": v for k, v in update.items()})
                for i in r:
                    stats = step_infos[i].get("episode_stats") if dones[i] else None
                    if stats is not None:
                        returns[seat].append(stats.episode_return)
                        events = stats.events
                        if "cooperated" in events or "defected" in events:  # games that count choices as either
                            cooperation[seat].append(events.get("cooperated", 0.0) / max(stats.length, 1))
            infos = [dict(reset_infos[i]) if dones[i] else dict(step_infos[i]) for i in range(n)]
        partial = [seat for seat, learner in zip(seats, learners) if learner.collected]
        if partial:
            raise ValueError(
                f"{steps} steps of {n} rows end mid-rollout for {', '.join(partial)}: "
                "curriculum.chunk_steps must be a multiple of curriculum.n_envs x agent.n_steps"
            )
        for seat in seats:
            if returns[seat]:
                metrics[f"train/{seat}/episode_return"] = float(np.mean(returns[seat]))
            if cooperation[seat]:
                metrics[f"train/{seat}/cooperation"] = float(np.mean(cooperation[seat]))
        return metrics

    def save(self, path: Path) -> None:
        """Each member's full state in ``path/<seat>``."""
        for seat, agent in self.members.items():
            agent.save(Path(path) / seat)

    def load(self, path: Path) -> None:
        """Restore what :meth:`save` wrote."""
        for seat, agent in self.members.items():
            agent.load(Path(path) / seat)
