"""Several seats of PettingZoo games as rows of one Stable-Baselines3 ``VecEnv`` (parameter sharing).

DESIGN.md: "multi-agent stages look like single-agent batches to the learner". A :class:`Table` holds one
``ParallelEnv`` (a whole game, or a :class:`~envs.social.seats.BackgroundSeats` whose agents are the focal seats). Each
of its agents is seen through a :class:`SeatView`, a ``gymnasium.Env`` that any single-agent wrapper stack can wrap
(numeric view, reward terms, constitutional shaping, episode statistics), and :class:`SeatVecEnv` lays the seats of
all tables side by side as rows. On every step the vector env first plays the joint action of each table, then steps
every row's wrapper stack, whose innermost :class:`SeatView` hands back that seat's share of the joint step. The
learner therefore sees an ordinary ``VecEnv`` with text in its infos and ``reset_infos``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv
from stable_baselines3.common.vec_env import DummyVecEnv


def valid_action(action: int, n_actions: int, mask: np.ndarray | None) -> int:
    """``action`` if the seat may take it, else its first valid action (the rule of ``agents.sb3.NumericView``)."""
    a = int(action)
    if a >= n_actions or a < 0 or (mask is not None and not mask[a]):
        return int(np.flatnonzero(mask)[0]) if mask is not None else 0
    return a


def _returning(env: gym.Env) -> Callable[[], gym.Env]:
    """A factory that hands back ``env`` itself (``DummyVecEnv`` builds its envs from factories)."""
    return lambda: env


class Table:
    """One ``ParallelEnv`` whose seats are stepped together; its agents all end their episodes together.

    Args:
        env: The game (every agent is a learner seat).
    """

    def __init__(self, env: ParallelEnv) -> None:
        self.env = env
        self.seats = list(env.possible_agents)
        self.episode = 0  # episodes started so far; a seat asking for a reset of the current one starts the next
        self._obs: dict[str, Any] = {}
        self._infos: dict[str, dict[str, Any]] = {}
        self._steps: dict[str, tuple[Any, float, bool, bool, dict[str, Any]]] = {}

    def reset(self, seat: str, seat_episode: int, seed: int | None) -> tuple[Any, dict[str, Any], int]:
        """The first observation and info of ``seat`` in a fresh episode, starting one if the seat is the first of
        its table to ask (``seat_episode``: the episode the seat is on); return them with the episode number."""
        if seat_episode == self.episode:
            self._obs, infos = self.env.reset(seed=seed)
            self._infos = {a: dict(i) for a, i in infos.items()}
            # The last joint step's results stay: seats of this table that finished may not have read theirs yet.
            self.episode += 1
        return self._obs[seat], dict(self._infos[seat]), self.episode

    def play(self, actions: dict[str, int]) -> None:
        """Step the game with every seat's action (invalid ones replaced by the seat's first valid action)."""
        joint = {
            seat: valid_action(a, int(self.env.action_space(seat).n), self._infos[seat].get("action_mask"))
            for seat, a in actions.items()
        }
        obs, rewards, terms, truncs, infos = self.env.step(joint)
        self._steps = {s: (obs[s], float(rewards[s]), bool(terms[s]), bool(truncs[s]), infos[s]) for s in joint}
        self._obs, self._infos = obs, infos

    def result(self, seat: str) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """``seat``'s observation, reward, termination, truncation and info of the last joint step."""
        return self._steps[seat]

    def close(self) -> None:
        """Close the game."""
        self.env.close()


class SeatView(gym.Env):
    """One seat of a :class:`Table` as a ``gymnasium.Env`` (what single-agent wrappers wrap).

    ``step`` returns the seat's share of the joint step that :meth:`Table.play` has already made; the action it is
    given is the one the table played (the table applies the same validity rule as the wrappers above).
    """

    def __init__(self, table: Table, seat: str) -> None:
        self.table = table
        self.seat = seat
        self.observation_space = table.env.observation_space(seat)
        self.action_space = table.env.action_space(seat)
        self.metadata = dict(getattr(table.env, "metadata", {}))
        self._episode = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        obs, info, self._episode = self.table.reset(self.seat, self._episode, seed)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        return self.table.result(self.seat)

    def close(self) -> None:
        if self.seat == self.table.seats[0]:
            self.table.close()


class SeatVecEnv(DummyVecEnv):
    """Every seat of ``n_tables`` tables as one row of a ``VecEnv`` (rows of a table are adjacent, in seat order).

    ``seed(s)`` seeds table ``t`` with the seed of its first row (``s + t * seats``), so a chunk is determined by its
    seed; the other rows' seeds are unused.

    Args:
        make_table: Builds one table's ``ParallelEnv``.
        n_tables: How many tables (games played side by side).
        wrap: Builds a row's wrapper stack around its :class:`SeatView`.
    """

    def __init__(self, make_table: Callable[[], ParallelEnv], n_tables: int, wrap: Callable[[gym.Env], gym.Env]):
        self.tables = [Table(make_table()) for _ in range(n_tables)]
        self.rows = [(t, seat) for t, table in enumerate(self.tables) for seat in table.seats]
        rows = [wrap(SeatView(self.tables[t], seat)) for t, seat in self.rows]
        super().__init__([_returning(env) for env in rows])

    def step_wait(self):
        for t, table in enumerate(self.tables):
            table.play({seat: int(self.actions[i]) for i, (tt, seat) in enumerate(self.rows) if tt == t})
        return super().step_wait()


__all__ = ["SeatVecEnv", "SeatView", "Table", "valid_action"]
