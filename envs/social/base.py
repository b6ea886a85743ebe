"""What every social-dilemma env shares: seats, spaces, seeding, the episode record and the metrics it reports.

A game subclasses :class:`SocialEnv` and implements :meth:`SocialEnv._start` and :meth:`SocialEnv._play`; the base
turns what they return into PettingZoo's dicts, scales rewards, keeps the raw payoffs for the social metrics and
puts those metrics in every agent's ``info["social"]`` on the step that ends the episode.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv
from upbringing.envs.arguments import check_int
from upbringing.envs.social.metrics import social_metrics

RENDER_MODES = ("ansi", "human")


@dataclass
class Outcome:
    """What one step of a game produced, seat by seat (seat order = ``possible_agents`` order).

    Attributes:
        obs: Array ``(players, obs_dim)`` of the next observations.
        payoffs: Raw payoff of each seat on this step (game points).
        events: Ground-truth events of each seat on this step.
        texts: The text view of each seat after this step (``None`` when the text view is off).
        views: The machine-readable view of each seat (``info["game"]``), which scripted players read.
        action_masks: The valid actions of each seat for the next step.
        terminated: The game ended by its own rules (horizon reached, resource gone, continuation draw).
        truncated: The game was cut off at the round cap of an unknown-horizon game.
        extra_info: Further per-seat info entries (e.g. ``success`` at the end).
    """

    obs: np.ndarray
    payoffs: list[float]
    events: list[dict[str, float]]
    texts: list[str] | None
    views: list[dict[str, Any]]
    action_masks: list[np.ndarray]
    terminated: bool = False
    truncated: bool = False
    extra_info: list[dict[str, Any]] | None = None


@dataclass
class EpisodeRecord:
    """The raw material of the social metrics, filled in as an episode runs."""

    payoffs: list[list[float]] = field(default_factory=list)
    cooperation: list[float] = field(default_factory=list)
    conflict: list[bool] = field(default_factory=list)


MAX_PLAYERS = 64
"""Most players a game seats (observations grow with the table; a bigger one is a typo, not an experiment)."""
MAX_HORIZON = 100_000
"""Most rounds a game runs."""
MAX_HISTORY = 1_000
"""Most past rounds an observation shows."""
MAX_LEVELS = 100
"""Most amounts a contribution or harvest action can choose between."""


def relative_seats(seat: int, n: int) -> list[int]:
    """Seats as ``seat`` sees them: itself first, then the others in table order after it."""
    return [(seat + k) % n for k in range(n)]


def frozen(array: np.ndarray) -> np.ndarray:
    """Make ``array`` read-only: a template that infos receive copies of."""
    array.setflags(write=False)
    return array


class SocialEnv(ParallelEnv):
    """Base of the social-dilemma ``ParallelEnv``s: ``n_players`` seats named ``player_0`` ... ``player_{n-1}``.

    Subclasses set :attr:`game_kind`, :attr:`event_names`, :attr:`metadata`, call :meth:`_setup` in ``__init__``, and
    implement :meth:`_start` (new episode) and :meth:`_play` (one step from every seat's action).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "social",
        "render_modes": list(RENDER_MODES),
        "is_parallelizable": True,
    }
    #: ``matrix``, ``public_goods`` or ``commons``: which scripted players can take a seat.
    game_kind: ClassVar[str] = ""
    event_names: ClassVar[tuple[str, ...]] = ()

    def _setup(
        self,
        n_players: int,
        obs_dim: int,
        n_actions: int,
        reward_scale: float,
        text_view: bool,
        render_mode: str | None,
    ) -> None:
        """Declare the seats, spaces and views; every observation entry lies in [0, 1]."""
        n_players = check_int("n_players", n_players, 2, MAX_PLAYERS)
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(f"render_mode must be one of {RENDER_MODES} or None, got {render_mode!r}")
        self.n_players = n_players
        self.possible_agents = [f"player_{i}" for i in range(n_players)]
        self.agents: list[str] = []
        self.render_mode = render_mode
        self.text_view = bool(text_view)
        self.reward_scale = float(reward_scale)
        # Spaces are built once: PettingZoo requires the same object on every call (so seeding them sticks).
        self._observation_spaces = {
            a: spaces.Box(0.0, 1.0, shape=(obs_dim,), dtype=np.float32) for a in self.possible_agents
        }
        self._action_spaces = {a: spaces.Discrete(n_actions) for a in self.possible_agents}
        self.np_random, self._np_random_seed = seeding.np_random(None)
        self.record = EpisodeRecord()

    def observation_space(self, agent: str) -> spaces.Box:
        """The numeric observation of ``agent`` (a float32 ``Box``)."""
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        """The actions of ``agent``; which are valid now is in ``info["action_mask"]``."""
        return self._action_spaces[agent]

    # -- the game's hooks -------------------------------------------------------------------------------------------

    @abstractmethod
    def _start(self) -> Outcome:
        """Start a new episode (``self.np_random`` is seeded); return the first observations and views."""

    @abstractmethod
    def _play(self, actions: list[int]) -> Outcome:
        """Play one step from every seat's action (any int; invalid ones are handled as the env documents)."""

    @abstractmethod
    def _metrics_horizon(self) -> int:
        """The length :func:`~envs.social.metrics.sustainability` normalises by."""

    def _optimum(self) -> float | None:
        """Collective return had everyone cooperated through the episode just played, if defined."""
        return None

    def _extra_metrics(self) -> dict[str, float]:
        """Game-specific entries added to ``info["social"]``."""
        return {}

    @abstractmethod
    def _render_text(self) -> str:
        """The whole table's state in plain language (what ``render()`` shows)."""

    # -- the PettingZoo API -----------------------------------------------------------------------------------------

    def reset(
        self, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start an episode; with ``seed``, re-seed the env's random generator first (as Gymnasium's ``reset``)."""
        if seed is not None:
            self.np_random, self._np_random_seed = seeding.np_random(seed)
        self.agents = list(self.possible_agents)
        self.record = EpisodeRecord()
        out = self._start()
        obs = {a: out.obs[i] for i, a in enumerate(self.agents)}
        infos = self._infos(out, at_reset=True)
        if self.render_mode == "human":
            self.render()
        return obs, infos

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """Play one step; ``actions`` must name every live agent."""
        if not self.agents:
            raise RuntimeError("the episode is over; call reset() first")
        try:
            acts = [int(actions[a]) for a in self.possible_agents]
        except KeyError as err:
            raise KeyError(f"no action given for {err.args[0]!r}; every agent acts on every step") from None
        out = self._play(acts)
        self.record.payoffs.append(out.payoffs)
        agents = self.agents
        scale = self.reward_scale
        obs = {a: out.obs[i] for i, a in enumerate(agents)}
        rewards = {a: out.payoffs[i] * scale for i, a in enumerate(agents)}
        terms = dict.fromkeys(agents, out.terminated)
        truncs = dict.fromkeys(agents, out.truncated and not out.terminated)
        infos = self._infos(out)
        if out.terminated or out.truncated:
            social = self.episode_metrics()
            for info in infos.values():
                info["social"] = dict(social)
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terms, truncs, infos

    def _infos(self, out: Outcome, at_reset: bool = False) -> dict[str, dict[str, Any]]:
        infos = {}
        for i, agent in enumerate(self.possible_agents):
            info: dict[str, Any] = {
                # Copies: every call must hand out new objects, since callers keep (and may change) what they get.
                "action_mask": out.action_masks[i].copy(),
                "events": {} if at_reset else out.events[i],
                "game": out.views[i],
            }
            if not at_reset:
                info["payoff"] = out.payoffs[i]
            if out.texts is not None:
                info["text"] = out.texts[i]
                info["action_texts"] = self._action_texts(i, out.views[i])
            if out.extra_info is not None:
                info.update(out.extra_info[i])
            infos[agent] = info
        return infos

    @abstractmethod
    def _action_texts(self, seat: int, view: dict[str, Any]) -> tuple[str, ...]:
        """One text per action for ``seat`` in its current phase."""

    def episode_metrics(self) -> dict[str, float]:
        """The social metrics of the episode so far (what ``info["social"]`` holds at its end)."""
        metrics = social_metrics(
            self.record.payoffs, self.record.cooperation, self.record.conflict, self._metrics_horizon(), self._optimum()
        )
        metrics.update(self._extra_metrics())
        return metrics

    def render(self) -> str | None:
        """``ansi``: return the table's state as text; ``human``: print it; no render mode: return ``None``."""
        if self.render_mode is None:
            return None
        text = self._render_text()
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        """Nothing to release: the games hold no external resources."""
