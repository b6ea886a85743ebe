"""Single-agent Gymnasium views of the social games: the learner in one seat, background players in the others.

:class:`SoloEnv` wraps any :class:`~envs.social.base.SocialEnv` by composition; each registered ``...Solo-v0`` id is
a one-line subclass naming its game. Single-agent learners (and SB3) train against fixed populations with it, and the
curriculum engine vectorizes it like any other Gymnasium env.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from upbringing.envs.arguments import keyword_params
from upbringing.envs.social.base import RENDER_MODES, SocialEnv
from upbringing.envs.social.commons import Commons
from upbringing.envs.social.matrix import Chicken, IteratedPD, StagHunt
from upbringing.envs.social.players import BackgroundPlayer, PlayerSpec
from upbringing.envs.social.public_goods import PublicGoods
from upbringing.envs.social.seats import SeatFilling


class SoloEnv(gym.Env):
    """One seat of a social game as a Gymnasium env; the other seats are played by background players.

    Spaces, rewards and the info contract are those of the learner's seat in the wrapped game (see its docstring).
    ``info["opponents"]`` names the background players of the episode (on reset and on the last step), and the last
    step's info holds the game's social metrics in ``info["social"]``.

    Args:
        opponents: Background players for the other seats, in seat order after the learner's seat; one entry fills
            every other seat. Each is a name (``"tit_for_tat"``, ``"axelrod:Grudger"``), a ``{"name": ..., **kwargs}``
            mapping or a :class:`~upbringing.envs.social.players.BackgroundPlayer`. The game's default opponents when
            neither this nor ``opponent_pool`` is given.
        opponent_pool: Instead of ``opponents``: candidates from which each other seat draws its player anew every
            episode.
        opponent_weights: Draw probabilities for ``opponent_pool`` (normalised; uniform when ``None``).
        seat: The learner's seat index (0 .. n_players - 1).
        render_mode: ``"ansi"``, ``"human"`` or ``None``.
        **game_kwargs: Keyword arguments of the wrapped game (e.g. ``horizon``, ``n_players``, ``pledges``).
    """

    game_cls: ClassVar[type[SocialEnv]]
    default_opponents: ClassVar[tuple[str, ...]] = ()
    metadata: dict[str, Any] = {"render_modes": list(RENDER_MODES), "render_fps": 2}  # noqa: RUF012 (Gymnasium declares an instance attribute)

    def __init__(
        self,
        *,
        opponents: Sequence[PlayerSpec] | PlayerSpec | None = None,
        opponent_pool: Sequence[PlayerSpec] | None = None,
        opponent_weights: Sequence[float] | None = None,
        seat: int = 0,
        render_mode: str | None = None,
        **game_kwargs: Any,
    ) -> None:
        accepted, _ = keyword_params(self.game_cls, skip=("render_mode",))
        unknown = sorted(set(game_kwargs) - set(accepted))
        if unknown:
            raise ValueError(
                f"unknown argument(s) {', '.join(map(repr, unknown))}; accepted: opponents, opponent_pool, "
                f"opponent_weights, seat, render_mode, {', '.join(accepted)}"
            )
        self.game = self.game_cls(render_mode=render_mode, **game_kwargs)
        self.render_mode = render_mode
        n = self.game.n_players
        if isinstance(seat, bool) or not isinstance(seat, int) or not 0 <= seat < n:
            raise ValueError(f"seat must be an int in [0, {n - 1}], got {seat!r}")
        self.agent = self.game.possible_agents[seat]
        self.others = [self.game.possible_agents[(seat + k) % n] for k in range(1, n)]

        self.filling = SeatFilling(
            self.game, self.others, opponents, opponent_pool, opponent_weights, default=self.default_opponents
        )

        self.observation_space = self.game.observation_space(self.agent)
        self.action_space = self.game.action_space(self.agent)
        self._obs: dict[str, np.ndarray] = {}
        self._infos: dict[str, dict[str, Any]] = {}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode: draw the background players, seed them and the game from this env's generator."""
        super().reset(seed=seed)
        self.filling.draw(self.np_random)
        self._obs, self._infos = self.game.reset(seed=int(self.np_random.integers(2**31 - 1)))
        info = dict(self._infos[self.agent])
        info["opponents"] = self.filling.names
        return self._obs[self.agent], info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Play the learner's action with the background players' actions for this step."""
        actions = self.filling.actions(self._obs, self._infos)
        actions[self.agent] = action
        obs, rewards, terminations, truncations, infos = self.game.step(actions)
        self._obs, self._infos = obs, infos
        info = infos[self.agent]
        terminated, truncated = terminations[self.agent], truncations[self.agent]
        if terminated or truncated:
            info["opponents"] = self.filling.names
        return obs[self.agent], float(rewards[self.agent]), terminated, truncated, info

    @property
    def players(self) -> dict[str, BackgroundPlayer]:
        """This episode's background player of every other seat."""
        return self.filling.players

    def render(self) -> str | None:
        """Render the whole table (see the game's ``render``)."""
        return self.game.render()

    def close(self) -> None:
        """Close the wrapped game."""
        self.game.close()


class IteratedPDSolo(SoloEnv):
    """The learner in one seat of :class:`~envs.social.matrix.IteratedPD`; default opponent: tit-for-tat."""

    game_cls = IteratedPD
    default_opponents = ("tit_for_tat",)


class StagHuntSolo(SoloEnv):
    """The learner in one seat of :class:`~envs.social.matrix.StagHunt`; default opponent: tit-for-tat."""

    game_cls = StagHunt
    default_opponents = ("tit_for_tat",)


class ChickenSolo(SoloEnv):
    """The learner in one seat of :class:`~envs.social.matrix.Chicken`; default opponent: tit-for-tat."""

    game_cls = Chicken
    default_opponents = ("tit_for_tat",)


class PublicGoodsSolo(SoloEnv):
    """The learner in one seat of :class:`~envs.social.public_goods.PublicGoods`; default opponents give everything."""

    game_cls = PublicGoods
    default_opponents = ("fixed_contributor",)


class CommonsSolo(SoloEnv):
    """The learner in one seat of :class:`~envs.social.commons.Commons`; default opponents fish sustainably."""

    game_cls = Commons
    default_opponents = ("sustainable_harvester",)
