"""Repeated public goods game with optional costly punishment (Fehr and Gächter 2000, "Cooperation and punishment
in public goods experiments").
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

import numpy as np
from upbringing.envs.arguments import check_int, check_number
from upbringing.envs.social.base import (
    MAX_HISTORY,
    MAX_HORIZON,
    MAX_LEVELS,
    MAX_PLAYERS,
    Outcome,
    SocialEnv,
    frozen,
    relative_seats,
)
from upbringing.envs.social.events import PUBLIC_GOODS_EVENTS


class PublicGoods(SocialEnv):
    """``n_players`` players each receive an endowment every round and choose how much of it to put into a common
    pot; the pot is multiplied and shared equally. With ``1 < multiplier < n_players`` everyone gains most by giving
    nothing while the others give all, yet all giving everything beats all giving nothing.

    Rounds and steps:
        Without punishment a round is one step (contribute). With ``punishment=True`` each round has a second step:
        everyone sees the contributions and may pay ``punishment_cost`` to take ``punishment_fine`` from one other
        player. The game ends (terminated) after ``horizon`` rounds.

    Spaces:
        Actions: ``Discrete(max(levels, n_players))`` with punishment, else ``Discrete(levels)``. Contribution step:
        action ``a < levels`` puts ``a / (levels - 1)`` of the endowment into the pot. Punishment step: 0 punishes
        no one, ``k`` in ``1 .. n_players - 1`` punishes the k-th other player in seat order after the agent.
        ``info["action_mask"]`` marks the actions valid in the current step; any other action contributes nothing
        (contribution step) or punishes no one (punishment step).
        Observation (per agent, float32 in [0, 1]): rounds played / horizon, 1 in a punishment step, the
        contributions / endowment of the round being judged (punishment step) or of the last round (the agent first,
        then the others in seat order after it), and the punishments each seat received last round / (n - 1).

    Rewards:
        Contribution step: ``endowment - contribution + multiplier * pot / n_players``; punishment step:
        ``-punishment_cost`` for punishing and ``-punishment_fine`` per punisher. Divided by the largest possible
        absolute step payoff when ``normalize_reward``; ``info["payoff"]`` holds the raw payoff.

    Events: contribution step: ``cooperated`` (share of the endowment given, when positive), ``defected`` (gave
    nothing), ``free_rode`` ((others' mean contribution - own) / endowment, when positive); punishment step:
    ``punished`` (1 when the agent punished), ``was_punished`` (number of punishers), ``punished_contributor``
    (1 when the agent punished someone who gave at least as much as it did: antisocial punishment, Herrmann et al.
    2008).

    ``info["game"]``: ``kind``, ``round``, ``horizon``, ``phase`` (``contribute`` | ``punish``), ``endowment``,
    ``levels`` (the contribution amounts), ``multiplier``, ``punishment``, ``contributions`` (relative seats, this
    round's in a punishment step, last round's otherwise; ``None`` before the first), ``received`` (punishments per
    relative seat last round).

    Social metrics: cooperation rate is the mean share of the endowment given; peace is the share of rounds in which
    no one punished.

    Version history: v0: initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {**SocialEnv.metadata, "name": "public_goods_v0"}
    game_kind: ClassVar[str] = "public_goods"
    event_names: ClassVar[tuple[str, ...]] = PUBLIC_GOODS_EVENTS

    def __init__(
        self,
        *,
        n_players: int = 4,
        endowment: float = 10.0,
        multiplier: float = 1.6,
        levels: int = 5,
        horizon: int = 10,
        punishment: bool = False,
        punishment_cost: float = 1.0,
        punishment_fine: float = 3.0,
        history_window: int = 3,
        normalize_reward: bool = True,
        text_view: bool = True,
        render_mode: str | None = None,
    ) -> None:
        """Build the game.

        Args:
            n_players: Number of players (2 or more).
            endowment: Points each player receives every round.
            multiplier: Factor applied to the pot before it is shared (a social dilemma when 1 < it < n_players).
            levels: Number of contribution choices, evenly spaced from nothing to the whole endowment (>= 2).
            horizon: Number of rounds.
            punishment: Add the costly punishment step to every round.
            punishment_cost: What punishing costs the punisher.
            punishment_fine: What each punishment takes from the punished player.
            history_window: Rounds of history in the text view.
            normalize_reward: Divide payoffs by the largest possible absolute step payoff to get the reward.
            text_view: Put ``text`` and ``action_texts`` in the infos.
            render_mode: ``"ansi"``, ``"human"`` or ``None``.
        """
        n = check_int("n_players", n_players, 2, MAX_PLAYERS)
        self.endowment = check_number("endowment", endowment, 0.0)
        if self.endowment <= 0:
            raise ValueError(f"endowment must be positive, got {endowment!r}")
        self.multiplier = check_number("multiplier", multiplier, 0.0)
        self.levels = check_int("levels", levels, 2, MAX_LEVELS)
        self.horizon = check_int("horizon", horizon, 1, MAX_HORIZON)
        self.punishment = bool(punishment)
        self.punishment_cost = check_number("punishment_cost", punishment_cost, 0.0)
        self.punishment_fine = check_number("punishment_fine", punishment_fine, 0.0)
        self.history_window = check_int("history_window", history_window, 1, MAX_HISTORY)
        self.amounts = tuple(self.endowment * k / (self.levels - 1) for k in range(self.levels))
        n_actions = max(self.levels, n) if self.punishment else self.levels
        best = self.endowment + self.multiplier * self.endowment * (n - 1) / n
        worst = self.punishment_cost + self.punishment_fine * (n - 1) if self.punishment else 0.0
        self._setup(
            n,
            obs_dim=2 + 2 * n,
            n_actions=n_actions,
            reward_scale=1.0 / max(best, worst) if normalize_reward else 1.0,
            text_view=text_view,
            render_mode=render_mode,
        )
        self._relative = [relative_seats(i, n) for i in range(n)]
        self._contribute_mask = frozen(np.array([1] * self.levels + [0] * (n_actions - self.levels), dtype=np.int8))
        self._punish_mask = frozen(np.array([1] * n + [0] * (n_actions - n), dtype=np.int8))
        self._contribute_texts = tuple(f"Put {a:g} into the pot" for a in self.amounts) + ("(not available now)",) * (
            n_actions - self.levels
        )
        self._intros = [self._intro(i) for i in range(n)]

    # -- text -------------------------------------------------------------------------------------------------------

    def _intro(self, seat: int) -> str:
        n = self.n_players
        amounts = ", ".join(f"{a:g}" for a in self.amounts[:-1]) + f" or {self.amounts[-1]:g}"
        lines = [
            f"You are {self.possible_agents[seat]}, one of {n} players in a public goods game. Every round each "
            f"player receives {self.endowment:g} points and chooses how much to put into a common pot: {amounts}. "
            f"The pot is multiplied by {self.multiplier:g} and shared equally among all {n} players; you keep what "
            "you do not put in.",
        ]
        if self.punishment:
            lines.append(
                f"After the contributions are shown, each player may pay {self.punishment_cost:g} point(s) to take "
                f"{self.punishment_fine:g} points from one other player."
            )
        lines.append(f"The game lasts {self.horizon} rounds.")
        return "\n".join(lines)

    def _contribution_words(self, seat: int, contributions: list[float]) -> str:
        rel = self._relative[seat]
        others = ", ".join(f"{self.possible_agents[s]} {contributions[s]:g}" for s in rel[1:])
        return f"you put in {contributions[seat]:g}; {others}"

    def _text(self, seat: int, over: bool) -> str:
        total = self._totals[seat]
        if over:
            status = f"The game is over after {self._round} rounds. Your total: {total:g} points."
        elif self._phase == "punish":
            status = (
                f"Round {self._round + 1} of {self.horizon}: {self._contribution_words(seat, self._contributions)}. "
                f"You may now punish one player. Your total so far: {total:g} points."
            )
        else:
            status = (
                f"Round {self._round + 1} of {self.horizon}: choose your contribution. "
                f"Your total so far: {total:g} points."
            )
        parts = [self._intros[seat], status]
        if self._lines[seat]:
            parts.append("Recent rounds:")
            parts.extend(self._lines[seat])
        return "\n".join(parts)

    def _action_texts(self, seat: int, view: dict[str, Any]) -> tuple[str, ...]:
        if view["phase"] == "contribute":
            return self._contribute_texts
        names = self.possible_agents
        texts = ["Punish no one"]
        texts += [f"Punish {names[s]} (put in {self._contributions[s]:g})" for s in self._relative[seat][1:]]
        texts += ["(not available now)"] * (self.action_space(names[seat]).n - self.n_players)
        return tuple(texts)

    def _render_text(self) -> str:
        head = f"public goods, round {self._round}/{self.horizon} ({self._phase})"
        if not self._contributions:
            return f"{head}: no contributions yet."
        rows = ", ".join(
            f"{a} gave {c:g} (total {t:g})" for a, c, t in zip(self.possible_agents, self._contributions, self._totals)
        )
        return f"{head}: {rows}"

    # -- dynamics ---------------------------------------------------------------------------------------------------

    def _observe(self) -> np.ndarray:
        n, e = self.n_players, self.endowment
        obs = np.zeros((n, 2 + 2 * n), dtype=np.float32)
        obs[:, 0] = self._round / self.horizon
        obs[:, 1] = 1.0 if self._phase == "punish" else 0.0
        contributions = np.asarray(self._contributions or [0.0] * n) / e
        received = np.asarray(self._received) / (n - 1)
        rel = np.asarray(self._relative)
        obs[:, 2 : 2 + n] = contributions[rel]
        obs[:, 2 + n :] = received[rel]
        return obs

    def _views(self) -> list[dict[str, Any]]:
        views = []
        for i in range(self.n_players):
            rel = self._relative[i]
            views.append(
                {
                    "kind": "public_goods",
                    "round": self._round,
                    "horizon": self.horizon,
                    "phase": self._phase,
                    "endowment": self.endowment,
                    "levels": self.amounts,
                    "multiplier": self.multiplier,
                    "punishment": self.punishment,
                    "contributions": None if not self._contributions else tuple(self._contributions[s] for s in rel),
                    "received": tuple(self._received[s] for s in rel),
                }
            )
        return views

    def _masks(self) -> list[np.ndarray]:
        return [self._punish_mask if self._phase == "punish" else self._contribute_mask] * self.n_players

    def _outcome(self, pays: list[float], events: list[dict[str, float]], over: bool) -> Outcome:
        texts = [self._text(i, over) for i in range(self.n_players)] if self.text_view else None
        return Outcome(self._observe(), pays, events, texts, self._views(), self._masks(), terminated=over)

    def _start(self) -> Outcome:
        n = self.n_players
        self._round = 0
        self._phase = "contribute"
        self._contributions: list[float] = []
        self._received = [0.0] * n
        self._totals = [0.0] * n
        self._lines: list[deque[str]] = [deque(maxlen=self.history_window) for _ in range(n)]
        return self._outcome([0.0] * n, [{} for _ in range(n)], over=False)

    def _play(self, actions: list[int]) -> Outcome:
        if self._phase == "contribute":
            return self._contribute(actions)
        return self._punish(actions)

    def _contribute(self, actions: list[int]) -> Outcome:
        n, e = self.n_players, self.endowment
        gifts = [self.amounts[a] if 0 <= a < self.levels else 0.0 for a in actions]
        pot = sum(gifts)
        share = self.multiplier * pot / n
        pays, events = [], []
        for i, gift in enumerate(gifts):
            pays.append(e - gift + share)
            others_mean = (pot - gift) / (n - 1)
            event: dict[str, float] = {"cooperated": gift / e} if gift > 0 else {"defected": 1.0}
            if others_mean > gift:
                event["free_rode"] = (others_mean - gift) / e
            events.append(event)
            self._totals[i] += pays[i]
        self.record.cooperation.extend(g / e for g in gifts)
        self._contributions = gifts
        if self.punishment:
            self._phase = "punish"
            return self._outcome(pays, events, over=False)
        self._received = [0.0] * n
        return self._end_round(pays, events, punishers={})

    def _punish(self, actions: list[int]) -> Outcome:
        n = self.n_players
        targets = {}
        for i, a in enumerate(actions):
            if 1 <= a < n:
                targets[i] = self._relative[i][a]
        received = [0.0] * n
        for target in targets.values():
            received[target] += 1.0
        pays, events = [], []
        for i in range(n):
            event: dict[str, float] = {}
            pay = 0.0 - self.punishment_fine * received[i]
            if i in targets:
                pay -= self.punishment_cost
                event["punished"] = 1.0
                if self._contributions[targets[i]] >= self._contributions[i]:
                    event["punished_contributor"] = 1.0
            if received[i]:
                event["was_punished"] = received[i]
            pays.append(pay)
            events.append(event)
            self._totals[i] += pay
        self._received = received
        return self._end_round(pays, events, punishers=targets)

    def _end_round(self, pays: list[float], events: list[dict[str, float]], punishers: dict[int, int]) -> Outcome:
        self._round += 1
        self.record.conflict.append(bool(punishers))
        if self.text_view:
            names = self.possible_agents
            for i in range(self.n_players):
                line = f"Round {self._round}: {self._contribution_words(i, self._contributions)}."
                by = [names[p] for p, t in punishers.items() if t == i]
                if i in punishers:
                    line += f" You punished {names[punishers[i]]}."
                if by:
                    line += f" Punished by {', '.join(by)}."
                line += f" Your total: {self._totals[i]:g} points."
                self._lines[i].append(line)
        self._phase = "contribute"
        return self._outcome(pays, events, over=self._round >= self.horizon)

    def _metrics_horizon(self) -> int:
        return self.horizon * (2 if self.punishment else 1)

    def _optimum(self) -> float | None:
        return self.n_players * self.multiplier * self.endowment * self._round
