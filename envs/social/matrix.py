"""Iterated symmetric 2x2 games: prisoner's dilemma, stag hunt and chicken, for 2 or more players.

One implementation, :class:`MatrixGameEnv`; the three games differ only in their default payoffs, their words and
whether mutual defection is open conflict. With more than two players everyone plays the 2x2 game against every other
player at once and earns the mean of those payoffs (the usual n-person extension, e.g. Axelrod's tournaments use the
same pairwise scoring), so the payoff matrix keeps its meaning for any group size.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from upbringing.envs.arguments import check_int, check_number
from upbringing.envs.social.base import (
    MAX_HISTORY,
    MAX_HORIZON,
    MAX_PLAYERS,
    Outcome,
    SocialEnv,
    frozen,
    relative_seats,
)
from upbringing.envs.social.events import MATRIX_CONFLICT_EVENTS, MATRIX_EVENTS

PAYOFF_KEYS = ("R", "S", "T", "P")


def _check_payoffs(payoffs: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(payoffs, Mapping) or set(payoffs) != set(PAYOFF_KEYS):
        raise ValueError(
            f"payoffs must map exactly R (both cooperate), S (cooperate against defect), T (defect against "
            f"cooperate), P (both defect) to numbers, got {payoffs!r}"
        )
    out = {}
    for key in PAYOFF_KEYS:
        value = payoffs[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
            raise ValueError(f"payoff {key} must be a finite number, got {value!r}")
        out[key] = float(value)
    return out


class MatrixGameEnv(SocialEnv):
    """An iterated symmetric 2x2 game between ``n_players`` players, all choosing at the same time each round.

    Spaces:
        Actions: ``Discrete(2)``; 0 is the cooperative choice, 1 the selfish one. Any value other than 0 is played as 1.
        Observation (per agent, float32 in [0, 1]): the last ``history_window`` rounds, most recent first, each as one
        one-hot pair per player (the agent itself first, then the others in seat order after it; zeros before the
        first round), then the number of rounds played divided by ``horizon``.

    Rewards:
        Each round an agent earns the mean of its 2x2 payoffs against every other player (``R``: both cooperate,
        ``S``: it cooperates and the other defects, ``T``: it defects against a cooperator, ``P``: both defect). The
        reward is that payoff divided by the largest absolute payoff when ``normalize_reward`` (so it lies in
        [-1, 1]); ``info["payoff"]`` always holds the raw payoff.

    Horizon:
        Fixed (``continuation=None``): the game ends (terminated) after ``horizon`` rounds, which agents are told.
        Unknown: after each round the game goes on with probability ``continuation`` (ends terminated); ``horizon``
        then caps its length (a capped game ends truncated).

    Events (per agent and round): ``cooperated`` / ``defected`` (1), ``betrayed_cooperator`` (number of cooperating
    players the agent defected against), ``was_betrayed`` (number of players who defected against the cooperating
    agent), and where mutual defection is conflict, ``conflict`` (number of other defectors the defecting agent clashed
    with).

    ``info["game"]`` (what scripted background players read): ``kind``, ``round`` (rounds played), ``horizon``
    (``None`` when unknown), ``continuation``, ``payoffs``, ``last_actions`` and ``last_payoffs`` (the last round,
    seats relative to the agent, the agent first; ``None`` before the first round).

    Version history: v0: initial version.
    """

    game_kind: ClassVar[str] = "matrix"
    title: ClassVar[str] = "2x2 game"
    default_payoffs: ClassVar[dict[str, float]] = {"R": 3.0, "S": 0.0, "T": 5.0, "P": 1.0}
    #: The two actions as the agent is offered them.
    action_labels: ClassVar[tuple[str, str]] = ("Cooperate", "Defect")
    #: The two actions in the past tense, for the history lines.
    past_tense: ClassVar[tuple[str, str]] = ("cooperated", "defected")
    #: Whether a round in which two or more players defect counts as conflict (for the events and ``peace``).
    mutual_defection_is_conflict: ClassVar[bool] = True
    event_names: ClassVar[tuple[str, ...]] = MATRIX_CONFLICT_EVENTS

    def __init__(
        self,
        *,
        payoffs: Mapping[str, float] | None = None,
        n_players: int = 2,
        horizon: int = 10,
        continuation: float | None = None,
        history_window: int = 5,
        normalize_reward: bool = True,
        text_view: bool = True,
        render_mode: str | None = None,
    ) -> None:
        """Build the game.

        Args:
            payoffs: ``{"R", "S", "T", "P"}`` payoffs of the 2x2 game; the game's defaults when ``None``.
            n_players: Number of players (2 or more).
            horizon: Rounds in a fixed-horizon game; the cap on rounds when ``continuation`` is set.
            continuation: Probability that another round follows each round (unknown horizon); ``None``: fixed.
            history_window: Rounds of history in the observation and the text view.
            normalize_reward: Divide payoffs by the largest absolute payoff to get the reward.
            text_view: Put ``text`` and ``action_texts`` in the infos (numeric-only learners can turn it off).
            render_mode: ``"ansi"``, ``"human"`` or ``None``.
        """
        self.payoffs = _check_payoffs(self.default_payoffs if payoffs is None else payoffs)
        n = check_int("n_players", n_players, 2, MAX_PLAYERS)
        self.horizon = check_int("horizon", horizon, 1, MAX_HORIZON)
        self.history_window = check_int("history_window", history_window, 1, MAX_HISTORY)
        self.continuation = None if continuation is None else check_number("continuation", continuation, 0.0, 1.0)
        if self.continuation in (0.0, 1.0):
            raise ValueError(f"continuation must lie strictly between 0 and 1, got {continuation!r}")
        largest = max(abs(v) for v in self.payoffs.values()) or 1.0
        self._setup(
            n,
            obs_dim=self.history_window * 2 * n + 1,
            n_actions=2,
            reward_scale=1.0 / largest if normalize_reward else 1.0,
            text_view=text_view,
            render_mode=render_mode,
        )
        p = self.payoffs
        # _matrix[my action][their action] is my payoff against one other player.
        self._matrix = ((p["R"], p["S"]), (p["T"], p["P"]))
        self._relative = [relative_seats(i, n) for i in range(n)]
        self._relative_array = np.array(self._relative)
        self._rows = np.repeat(np.arange(n), n).reshape(n, n)
        self._cols = 2 * np.arange(n)[None, :].repeat(n, axis=0)
        self._mask = frozen(np.ones(2, dtype=np.int8))
        self._intros = [self._intro(i) for i in range(n)]

    # -- text -------------------------------------------------------------------------------------------------------

    def _intro(self, seat: int) -> str:
        p, (c, d) = self.payoffs, self.past_tense
        n = self.n_players
        others = "the other player" if n == 2 else f"each of the {n - 1} other players"
        lines = [
            f"You are {self.possible_agents[seat]}, one of {n} players in a repeated {self.title}. Every round all "
            f"players choose at the same time: {self.action_labels[0].lower()} or {self.action_labels[1].lower()}.",
            f"Points per round against {others}"
            + (" (you get the mean over them)" if n > 2 else "")
            + f": both {c}: {p['R']:g} each; you {c} and they {d}: you {p['S']:g}, they {p['T']:g}; "
            f"you {d} and they {c}: you {p['T']:g}, they {p['S']:g}; both {d}: {p['P']:g} each.",
        ]
        if self.continuation is None:
            lines.append(f"The game lasts {self.horizon} rounds.")
        else:
            lines.append(
                f"After each round the game goes on with probability {self.continuation:g}; "
                "nobody knows which round is the last."
            )
        return "\n".join(lines)

    def _history_line(self, seat: int, joint: tuple[int, ...], payoff: float) -> str:
        words = self.past_tense
        others = ", ".join(f"{self.possible_agents[s]} {words[joint[s]]}" for s in self._relative[seat][1:])
        return f"Round {self._round}: you {words[joint[seat]]}; {others}. You got {payoff:g} points."

    def _text(self, seat: int, over: bool) -> str:
        total = self._totals[seat]
        if over:
            status = f"The game is over after {self._round} rounds. Your total: {total:g} points."
        else:
            of = f" of {self.horizon}" if self.continuation is None else ""
            status = f"Round {self._round + 1}{of} is next. Your total so far: {total:g} points."
        parts = [self._intros[seat], status]
        if self._lines[seat]:
            parts.append("Recent rounds:")
            parts.extend(self._lines[seat])
        return "\n".join(parts)

    def _action_texts(self, seat: int, view: dict[str, Any]) -> tuple[str, ...]:
        return self.action_labels

    def _render_text(self) -> str:
        head = f"{self.title}, round {self._round}" + (f"/{self.horizon}" if self.continuation is None else "")
        if not self._history:
            return head + ": no rounds played yet."
        words = self.past_tense
        last = self._history[-1]
        moves = ", ".join(
            f"{a} {words[last[i]]} (total {self._totals[i]:g})" for i, a in enumerate(self.possible_agents)
        )
        return f"{head}: {moves}"

    # -- dynamics ---------------------------------------------------------------------------------------------------

    def _views(self, last: tuple[int, ...] | None, pays: list[float] | None) -> list[dict[str, Any]]:
        horizon = self.horizon if self.continuation is None else None
        views = []
        for i in range(self.n_players):
            rel = self._relative[i]
            views.append(
                {
                    "kind": "matrix",
                    "round": self._round,
                    "horizon": horizon,
                    "continuation": self.continuation,
                    "payoffs": dict(self.payoffs),
                    "last_actions": None if last is None else tuple(last[s] for s in rel),
                    "last_payoffs": None if pays is None else tuple(pays[s] for s in rel),
                }
            )
        return views

    def _start(self) -> Outcome:
        n = self.n_players
        self._round = 0
        self._totals = [0.0] * n
        self._history: list[tuple[int, ...]] = []
        self._lines: list[deque[str]] = [deque(maxlen=self.history_window) for _ in range(n)]
        # The length of an unknown-horizon game is drawn up front; agents never see it.
        if self.continuation is None:
            self._length, self._capped = self.horizon, False
        else:
            drawn = int(self.np_random.geometric(1.0 - self.continuation))
            self._length, self._capped = min(drawn, self.horizon), drawn > self.horizon
        self._obs = np.zeros((n, self.observation_space(self.possible_agents[0]).shape[0]), dtype=np.float32)
        texts = [self._text(i, False) for i in range(n)] if self.text_view else None
        return Outcome(self._obs, [0.0] * n, [{} for _ in range(n)], texts, self._views(None, None), [self._mask] * n)

    def _play(self, actions: list[int]) -> Outcome:
        n = self.n_players
        joint = tuple(0 if a == 0 else 1 for a in actions)
        defectors = sum(joint)
        cooperators = n - defectors
        conflict = self.mutual_defection_is_conflict and defectors >= 2
        pays, events = [], []
        for i, mine in enumerate(joint):
            other_c = cooperators - (1 - mine)
            other_d = n - 1 - other_c
            row = self._matrix[mine]
            pays.append((other_c * row[0] + other_d * row[1]) / (n - 1))
            if mine == 0:
                event = {"cooperated": 1.0}
                if other_d:
                    event["was_betrayed"] = float(other_d)
            else:
                event = {"defected": 1.0}
                if other_c:
                    event["betrayed_cooperator"] = float(other_c)
                if conflict and other_d:
                    event["conflict"] = float(other_d)
            events.append(event)
            self._totals[i] += pays[i]
        self._round += 1
        self._history.append(joint)
        self.record.cooperation.extend(1.0 - a for a in joint)
        self.record.conflict.append(conflict)

        # Shift the history window back one round and write the newest round in front.
        k, block = self.history_window, 2 * n
        obs = np.zeros_like(self._obs)
        if k > 1:
            obs[:, block : block * k] = self._obs[:, : block * (k - 1)]
        obs[self._rows, self._cols + np.asarray(joint)[self._relative_array]] = 1.0
        obs[:, -1] = self._round / self.horizon
        self._obs = obs

        over = self._round >= self._length
        texts = None
        if self.text_view:
            for i in range(n):
                self._lines[i].append(self._history_line(i, joint, pays[i]))
            texts = [self._text(i, over) for i in range(n)]
        return Outcome(
            obs,
            pays,
            events,
            texts,
            self._views(joint, pays),
            [self._mask] * n,
            terminated=over and not self._capped,
            truncated=over and self._capped,
        )

    def _metrics_horizon(self) -> int:
        return self.horizon if self.continuation is None else max(self._round, 1)

    def _optimum(self) -> float | None:
        return self.n_players * self.payoffs["R"] * self._round


class IteratedPD(MatrixGameEnv):
    """Iterated prisoner's dilemma (default R=3, S=0, T=5, P=1): defecting pays more whatever the others do, yet
    everyone cooperating beats everyone defecting. Mutual defection counts as conflict. See :class:`MatrixGameEnv`.
    """

    metadata: ClassVar[dict[str, Any]] = {**SocialEnv.metadata, "name": "iterated_pd_v0"}
    title = "prisoner's dilemma"


class StagHunt(MatrixGameEnv):
    """Iterated stag hunt (default R=4, S=0, T=3, P=2): hunting the stag together pays best, but a lone stag hunter
    gets nothing while hare hunters are safe. A trust/coordination problem; no outcome counts as conflict. See
    :class:`MatrixGameEnv`.
    """

    metadata: ClassVar[dict[str, Any]] = {**SocialEnv.metadata, "name": "stag_hunt_v0"}
    title = "stag hunt"
    default_payoffs: ClassVar[dict[str, float]] = {"R": 4.0, "S": 0.0, "T": 3.0, "P": 2.0}
    action_labels = ("Hunt the stag (pays only if the others hunt it too)", "Hunt a hare (safe on your own)")
    past_tense = ("hunted the stag", "hunted a hare")
    mutual_defection_is_conflict = False
    event_names = MATRIX_EVENTS


class Chicken(MatrixGameEnv):
    """Iterated chicken (default R=3, S=1, T=5, P=0): driving straight on wins against a swerver, but two drivers
    going straight crash, the worst outcome for both (counted as conflict). See :class:`MatrixGameEnv`.
    """

    metadata: ClassVar[dict[str, Any]] = {**SocialEnv.metadata, "name": "chicken_v0"}
    title = "game of chicken"
    default_payoffs: ClassVar[dict[str, float]] = {"R": 3.0, "S": 1.0, "T": 5.0, "P": 0.0}
    action_labels = ("Swerve", "Drive straight on")
    past_tense = ("swerved", "drove straight on")
