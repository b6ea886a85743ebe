"""Background seats: who plays the seats of a social game that no learner holds.

:class:`SeatFilling` draws and steps the background players (used by the single-agent views in
:mod:`upbringing.envs.social.solo`); :class:`BackgroundSeats` is the multi-agent counterpart, a ``ParallelEnv`` whose
agents are only the focal seats, so several learner seats (parameter sharing, self-play) can face a fixed population.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv
from upbringing.envs.social.base import SocialEnv
from upbringing.envs.social.players import BackgroundPlayer, PlayerSpec, make_player

OpponentSpecs = Sequence[PlayerSpec] | PlayerSpec


class SeatFilling:
    """The background players of some seats of ``game``, drawn anew every episode.

    Args:
        game: The game whose seats are filled.
        seats: The agents (seat names) to fill, in the order ``opponents`` lists them.
        opponents: One entry for every seat in ``seats``, or one entry for all of them. Each entry is a player name
            (``"tit_for_tat"``, ``"axelrod:Grudger"``), a ``{"name": ..., **kwargs}`` mapping, or a
            :class:`~upbringing.envs.social.players.BackgroundPlayer` (copied per seat).
        opponent_pool: Instead of ``opponents``: candidates from which every seat draws its player each episode.
        opponent_weights: Draw probabilities for ``opponent_pool`` (normalised; uniform when ``None``).
        default: The entries used when neither ``opponents`` nor ``opponent_pool`` is given.

    Raises:
        ValueError: conflicting or malformed arguments, or a player that cannot play this game.
    """

    def __init__(
        self,
        game: SocialEnv,
        seats: Sequence[str],
        opponents: OpponentSpecs | None = None,
        opponent_pool: Sequence[PlayerSpec] | None = None,
        opponent_weights: Sequence[float] | None = None,
        default: Sequence[PlayerSpec] = (),
    ) -> None:
        self.game = game
        self.seats = list(seats)
        if opponents is not None and opponent_pool is not None:
            raise ValueError("give either opponents or opponent_pool, not both")
        if opponent_pool is None:
            if opponent_weights is not None:
                raise ValueError("opponent_weights needs opponent_pool")
            entries = default if opponents is None else opponents
            if isinstance(entries, str | BackgroundPlayer | Mapping):
                entries = [entries]
            entries = list(entries)
            if len(entries) == 1:
                entries = entries * len(self.seats)
            if len(entries) != len(self.seats):
                n = len(self.seats)
                raise ValueError(f"opponents must name 1 or {n} players for {n} seats, got {len(entries)}")
            # One candidate per seat, so the draw always picks it.
            self.candidates = [[self._player(e)] for e in entries]
            self.weights = np.ones(1)
        else:
            pool = list(opponent_pool)
            if not pool:
                raise ValueError("opponent_pool is empty")
            weights = np.ones(len(pool)) if opponent_weights is None else np.asarray(opponent_weights, dtype=float)
            if weights.shape != (len(pool),) or (weights < 0).any() or not weights.sum() > 0:
                raise ValueError(
                    f"opponent_weights must be {len(pool)} non-negative numbers with a positive sum, "
                    f"got {opponent_weights!r}"
                )
            # Every seat gets its own instance of every candidate, so players never share memory across seats.
            self.candidates = [[self._player(e) for e in pool] for _ in self.seats]
            self.weights = weights / weights.sum()
        self.players: dict[str, BackgroundPlayer] = {}

    def _player(self, spec: PlayerSpec) -> BackgroundPlayer:
        player = make_player(spec)
        player.check(self.game.game_kind, self.game.n_players)
        return player

    def draw(self, rng: np.random.Generator) -> dict[str, BackgroundPlayer]:
        """Pick this episode's player for every seat and reset it with a seed drawn from ``rng``."""
        self.players = {}
        for seat, candidates in zip(self.seats, self.candidates):
            pick = int(rng.choice(len(candidates), p=self.weights)) if len(candidates) > 1 else 0
            player = candidates[pick]
            player.reset(seed=int(rng.integers(2**32 - 1)))
            self.players[seat] = player
        return self.players

    @property
    def names(self) -> list[str]:
        """The names of this episode's players, in seat order."""
        return [p.name for p in self.players.values()]

    def actions(self, obs: Mapping[str, np.ndarray], infos: Mapping[str, dict[str, Any]]) -> dict[str, int]:
        """Every background seat's action for the current step, from that seat's observation and info."""
        return {seat: player.act(obs[seat], infos[seat]) for seat, player in self.players.items()}


class BackgroundSeats(ParallelEnv):
    """A social game in which background players hold every seat but the focal ones; the agents are the focal seats.

    Observations, actions, rewards and infos of the focal seats are the game's own. On the step that ends an
    episode every focal info holds ``social`` (the whole table's metrics) and ``opponents`` (this episode's players).
    ``reset(seed)`` seeds the draw of players, the players and the game from one generator, so an episode is
    determined by its seed.

    Args:
        game: The social game (e.g. ``envs.make("social/PublicGoods-v0", n_players=6)``).
        focal_seats: Indices of the seats that stay agents.
        opponents, opponent_pool, opponent_weights: Who fills the other seats, in seat order (see
            :class:`SeatFilling`).
    """

    def __init__(
        self,
        game: SocialEnv,
        focal_seats: Sequence[int] = (0,),
        opponents: OpponentSpecs | None = None,
        opponent_pool: Sequence[PlayerSpec] | None = None,
        opponent_weights: Sequence[float] | None = None,
    ) -> None:
        n = game.n_players
        focal = sorted(set(focal_seats))
        if not focal or len(focal) != len(list(focal_seats)) or not all(0 <= s < n for s in focal):
            raise ValueError(f"focal_seats must be distinct seat indices in [0, {n - 1}], got {list(focal_seats)!r}")
        if len(focal) == n:
            raise ValueError("every seat is focal: use the game itself")
        self.game = game
        self.possible_agents = [game.possible_agents[s] for s in focal]
        self.agents: list[str] = []
        self.filling = SeatFilling(
            game,
            [a for a in game.possible_agents if a not in self.possible_agents],
            opponents,
            opponent_pool,
            opponent_weights,
        )
        self.metadata = {**game.metadata, "name": f"{game.metadata['name']}_background_seats"}
        self.render_mode = game.render_mode
        self.np_random, _ = seeding.np_random(None)
        self._obs: dict[str, np.ndarray] = {}
        self._infos: dict[str, dict[str, Any]] = {}

    def observation_space(self, agent: str) -> spaces.Space:
        """The game's observation space of ``agent``."""
        return self.game.observation_space(agent)

    def action_space(self, agent: str) -> spaces.Space:
        """The game's action space of ``agent``."""
        return self.game.action_space(agent)

    def reset(self, seed: int | None = None, options: Mapping[str, Any] | None = None) -> tuple[dict, dict]:
        """Draw this episode's background players and start the game."""
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
        self.filling.draw(self.np_random)
        self._obs, self._infos = self.game.reset(seed=int(self.np_random.integers(2**31 - 1)))
        self.agents = list(self.possible_agents)
        infos = {a: {**self._infos[a], "opponents": self.filling.names} for a in self.agents}
        return {a: self._obs[a] for a in self.agents}, infos

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """Step the game with the focal agents' actions and the background players' actions."""
        joint = {**self.filling.actions(self._obs, self._infos), **actions}
        obs, rewards, terminations, truncations, infos = self.game.step(joint)
        self._obs, self._infos = obs, infos
        focal = self.agents
        obs, rewards, terminations, truncations, infos = (
            {a: d[a] for a in focal} for d in (obs, rewards, terminations, truncations, infos)
        )
        if not self.game.agents:
            for a in focal:
                infos[a]["opponents"] = self.filling.names
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def render(self) -> str | None:
        """Render the whole table (see the game's ``render``)."""
        return self.game.render()

    def close(self) -> None:
        """Close the game."""
        self.game.close()
