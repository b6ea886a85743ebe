"""A renewable common-pool resource (a shared fishing lake) with optional non-binding pledges.

After the common-pool resource model of Perolat et al. (2017) and the sustainability study of LLM societies by Piatti
et al. (2024, "Cooperate or Collapse", GovSim): the stock regrows by a logistic law, so regrowth depends on what is
left, and harvesting it below a critical level destroys it for everyone.
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
from upbringing.envs.social.events import COMMONS_EVENTS


def _tons(amount: float) -> str:
    """An amount of fish as people write it: at most two decimals, no trailing zeros."""
    return f"{amount:.2f}".rstrip("0").rstrip(".")


# Slack for float comparisons of harvest amounts (amounts are sums of a few multiples of the level step).
_EPS = 1e-9


class Commons(SocialEnv):
    """``n_players`` fishers share a lake. Each round every fisher chooses how much to catch; the catch is taken
    (shared out in proportion to the requests when they exceed the stock), then the rest regrows logistically:
    ``s <- min(capacity, s + growth_rate * s * (1 - s / capacity))``. Regrowth is fastest at half the capacity, so
    the most a group can take every round for ever is ``growth_rate * capacity / 4`` (the maximum sustainable yield).
    If the catch leaves less than ``collapse_below``, the fish population collapses for good: the episode ends
    (terminated, ``success=False``). Reaching the end of the season with fish left is success.

    Rounds and steps:
        One step per round; with ``pledges=True`` each round starts with a pledge step in which everyone announces
        (without obligation) how much they will catch, then the harvest step.

    Spaces:
        Actions: ``Discrete(levels)``: action ``a`` catches (or pledges) ``a / (levels - 1) * max_harvest``. An action
        outside the range catches nothing.
        Observation (per agent, float32 in [0, 1]): stock / capacity, rounds played / horizon, 1 in a pledge step,
        the sustainable share / max_harvest, the last round's catches / max_harvest (the agent first, then the others
        in seat order after it), this round's pledges / max_harvest (same order; zeros before they are made).

    Rewards:
        The fish caught (0 in pledge steps), divided by ``max_harvest`` when ``normalize_reward``; ``info["payoff"]``
        holds the raw catch.

    The sustainable share is each fisher's equal part of the stock above half the capacity: ``max(0, s -
    capacity / 2) / n_players``. Catching no more than it keeps the stock at its most productive level.

    Events (harvest step): ``overharvested`` ((catch - sustainable share) / max_harvest, when positive), with pledges
    ``kept_pledge`` (1, caught no more than pledged) or ``broke_pledge`` ((catch requested - pledge) / max_harvest),
    and ``resource_collapsed`` (1, for everyone, on the step the stock collapses).

    ``info["game"]``: ``kind``, ``round``, ``horizon``, ``phase`` (``pledge`` | ``harvest``), ``stock``,
    ``capacity``, ``growth_rate``, ``collapse_below``, ``levels`` (the catch amounts), ``sustainable_share``,
    ``last_harvests`` and ``pledges`` (relative seats, the agent first; ``None`` when there are none yet).

    Social metrics: cooperation rate is the share of catches within the sustainable share; ``sustainability`` is the
    mean time of catches (Perolat et al.) and ``survival`` the share of the season the stock lasted; ``final_stock``
    is the stock left / capacity. There is no aggressive act in this game, so ``peace`` is 1.

    Version history: v0: initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {**SocialEnv.metadata, "name": "commons_v0"}
    game_kind: ClassVar[str] = "commons"
    event_names: ClassVar[tuple[str, ...]] = COMMONS_EVENTS

    def __init__(
        self,
        *,
        n_players: int = 4,
        capacity: float = 100.0,
        initial_stock: float | None = None,
        growth_rate: float = 1.0,
        collapse_below: float = 5.0,
        max_harvest: float | None = None,
        levels: int = 5,
        horizon: int = 30,
        pledges: bool = False,
        history_window: int = 3,
        normalize_reward: bool = True,
        text_view: bool = True,
        render_mode: str | None = None,
    ) -> None:
        """Build the lake.

        Args:
            n_players: Number of fishers (2 or more).
            capacity: The most fish the lake holds.
            initial_stock: Fish at the start; the capacity when ``None``.
            growth_rate: Logistic growth rate (0 < rate <= 1 keeps the stock below capacity without overshoot).
            collapse_below: A catch that leaves less than this destroys the stock.
            max_harvest: The most one fisher can catch in a round; ``0.4 * capacity / n_players`` when ``None``
                (so unrestrained fishing takes 40% a round, well above the sustainable yield).
            levels: Number of catch choices, evenly spaced from 0 to ``max_harvest`` (>= 2).
            horizon: Rounds in the season.
            pledges: Add a non-binding pledge step before every harvest.
            history_window: Rounds of history in the text view.
            normalize_reward: Divide catches by ``max_harvest`` to get the reward.
            text_view: Put ``text`` and ``action_texts`` in the infos.
            render_mode: ``"ansi"``, ``"human"`` or ``None``.
        """
        n = check_int("n_players", n_players, 2, MAX_PLAYERS)
        self.capacity = check_number("capacity", capacity, 0.0)
        if self.capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity!r}")
        self.initial_stock = (
            self.capacity if initial_stock is None else check_number("initial_stock", initial_stock, 0.0, self.capacity)
        )
        self.growth_rate = check_number("growth_rate", growth_rate, 0.0, 1.0)
        self.collapse_below = check_number("collapse_below", collapse_below, 0.0, self.capacity)
        if self.initial_stock < self.collapse_below:
            raise ValueError(f"initial_stock {self.initial_stock:g} is below collapse_below {self.collapse_below:g}")
        default_max = 0.4 * self.capacity / n
        self.max_harvest = default_max if max_harvest is None else check_number("max_harvest", max_harvest, 0.0)
        if self.max_harvest <= 0:
            raise ValueError(f"max_harvest must be positive, got {max_harvest!r}")
        self.levels = check_int("levels", levels, 2, MAX_LEVELS)
        self.horizon = check_int("horizon", horizon, 1, MAX_HORIZON)
        self.pledges = bool(pledges)
        self.history_window = check_int("history_window", history_window, 1, MAX_HISTORY)
        self.amounts = tuple(self.max_harvest * k / (self.levels - 1) for k in range(self.levels))
        self._setup(
            n,
            obs_dim=4 + 2 * n,
            n_actions=self.levels,
            reward_scale=1.0 / self.max_harvest if normalize_reward else 1.0,
            text_view=text_view,
            render_mode=render_mode,
        )
        self._relative = [relative_seats(i, n) for i in range(n)]
        self._relative_array = np.asarray(self._relative)
        self._mask = frozen(np.ones(self.levels, dtype=np.int8))
        self._harvest_texts = tuple(f"Catch {_tons(a)} tons" for a in self.amounts)
        self._pledge_texts = tuple(f"Announce that you will catch {_tons(a)} tons" for a in self.amounts)
        self._intros = [self._intro(i) for i in range(n)]

    # -- text -------------------------------------------------------------------------------------------------------

    def _intro(self, seat: int) -> str:
        amounts = ", ".join(_tons(a) for a in self.amounts[:-1]) + f" or {_tons(self.amounts[-1])}"
        lines = [
            f"You are {self.possible_agents[seat]}, one of {self.n_players} fishers sharing a lake that holds at most "
            f"{self.capacity:g} tons of fish. Every round each fisher chooses how much to catch: {amounts} tons.",
            "After the catch the remaining fish regrow, fastest when about half the lake is full. If the catch leaves "
            f"less than {self.collapse_below:g} tons, the fish die out for good and nobody catches anything again.",
        ]
        if self.pledges:
            lines.append(
                "Before each catch every fisher announces how much they will catch; announcements do not bind."
            )
        lines.append(f"The season lasts {self.horizon} rounds.")
        return "\n".join(lines)

    def _share(self) -> float:
        return max(0.0, self._stock - self.capacity / 2) / self.n_players

    def _text(self, seat: int, over: bool) -> str:
        total = self._totals[seat]
        if over:
            fate = "The fish died out" if self._collapsed else f"{self._stock:.1f} tons of fish are left"
            status = f"The season is over after {self._round} rounds. {fate}. You caught {_tons(total)} tons in all."
        else:
            status = (
                f"Round {self._round + 1} of {self.horizon}. The lake holds {self._stock:.1f} tons. Catching at most "
                f"{self._share():.1f} tons each keeps it at its most productive level. "
                f"You have caught {_tons(total)} tons."
            )
            if self._phase == "pledge":
                status += " Announce how much you will catch."
            elif self._pledged is not None:
                rel = self._relative[seat]
                others = ", ".join(f"{self.possible_agents[s]} {_tons(self._pledged[s])}" for s in rel[1:])
                status += f" Announcements this round: you {_tons(self._pledged[seat])}; {others}. Now catch."
        parts = [self._intros[seat], status]
        if self._lines[seat]:
            parts.append("Recent rounds:")
            parts.extend(self._lines[seat])
        return "\n".join(parts)

    def _action_texts(self, seat: int, view: dict[str, Any]) -> tuple[str, ...]:
        return self._pledge_texts if view["phase"] == "pledge" else self._harvest_texts

    def _render_text(self) -> str:
        catches = ", ".join(f"{a} {_tons(t)}" for a, t in zip(self.possible_agents, self._totals))
        state = "collapsed" if self._collapsed else f"stock {self._stock:.1f}/{self.capacity:g}"
        return f"commons, round {self._round}/{self.horizon} ({self._phase}): {state}; caught so far: {catches}"

    # -- dynamics ---------------------------------------------------------------------------------------------------

    def _observe(self) -> np.ndarray:
        n, m = self.n_players, self.max_harvest
        obs = np.zeros((n, 4 + 2 * n), dtype=np.float32)
        obs[:, 0] = self._stock / self.capacity
        obs[:, 1] = self._round / self.horizon
        obs[:, 2] = 1.0 if self._phase == "pledge" else 0.0
        obs[:, 3] = min(self._share() / m, 1.0)
        if self._last is not None:
            obs[:, 4 : 4 + n] = np.minimum(np.asarray(self._last)[self._relative_array] / m, 1.0)
        if self._pledged is not None:
            obs[:, 4 + n :] = np.asarray(self._pledged)[self._relative_array] / m
        return obs

    def _views(self) -> list[dict[str, Any]]:
        share = self._share()
        views = []
        for i in range(self.n_players):
            rel = self._relative[i]
            views.append(
                {
                    "kind": "commons",
                    "round": self._round,
                    "horizon": self.horizon,
                    "phase": self._phase,
                    "stock": self._stock,
                    "capacity": self.capacity,
                    "growth_rate": self.growth_rate,
                    "collapse_below": self.collapse_below,
                    "levels": self.amounts,
                    "sustainable_share": share,
                    "last_harvests": None if self._last is None else tuple(self._last[s] for s in rel),
                    "pledges": None if self._pledged is None else tuple(self._pledged[s] for s in rel),
                }
            )
        return views

    def _outcome(self, pays: list[float], events: list[dict[str, float]], over: bool) -> Outcome:
        n = self.n_players
        texts = [self._text(i, over) for i in range(n)] if self.text_view else None
        extra = [{"success": not self._collapsed} for _ in range(n)] if over else None
        return Outcome(
            self._observe(), pays, events, texts, self._views(), [self._mask] * n, terminated=over, extra_info=extra
        )

    def _start(self) -> Outcome:
        n = self.n_players
        self._round = 0
        self._stock = self.initial_stock
        self._collapsed = False
        self._phase = "pledge" if self.pledges else "harvest"
        self._last: list[float] | None = None
        self._pledged: list[float] | None = None
        self._totals = [0.0] * n
        self._lines: list[deque[str]] = [deque(maxlen=self.history_window) for _ in range(n)]
        return self._outcome([0.0] * n, [{} for _ in range(n)], over=False)

    def _amount(self, action: int) -> float:
        return self.amounts[action] if 0 <= action < self.levels else 0.0

    def _play(self, actions: list[int]) -> Outcome:
        n = self.n_players
        if self._phase == "pledge":
            self._pledged = [self._amount(a) for a in actions]
            self._phase = "harvest"
            return self._outcome([0.0] * n, [{} for _ in range(n)], over=False)

        requests = [self._amount(a) for a in actions]
        wanted = sum(requests)
        # Requests beyond the stock are shared out in proportion to what each fisher asked for.
        ratio = min(1.0, self._stock / wanted) if wanted > 0 else 0.0
        catches = [r * ratio for r in requests]
        share = self._share()
        left = self._stock - sum(catches)
        collapsed = left < self.collapse_below
        events = []
        for i, catch in enumerate(catches):
            event: dict[str, float] = {}
            over_share = catch - share
            if over_share > _EPS:
                event["overharvested"] = over_share / self.max_harvest
            if self._pledged is not None:
                broken = requests[i] - self._pledged[i]
                if broken > _EPS:
                    event["broke_pledge"] = broken / self.max_harvest
                else:
                    event["kept_pledge"] = 1.0
            if collapsed:
                event["resource_collapsed"] = 1.0
            events.append(event)
            self._totals[i] += catch
            self.record.cooperation.append(0.0 if over_share > _EPS else 1.0)
        self.record.conflict.append(False)
        if collapsed:
            self._stock, self._collapsed = 0.0, True
        else:
            g = self.growth_rate * left * (1.0 - left / self.capacity)
            self._stock = min(self.capacity, left + g)
        self._round += 1
        if self.text_view:
            names = self.possible_agents
            for i in range(n):
                rel = self._relative[i]
                others = ", ".join(f"{names[s]} {_tons(catches[s])}" for s in rel[1:])
                line = f"Round {self._round}: you caught {_tons(catches[i])}; {others}."
                if self._pledged is not None:
                    line += f" You had announced {_tons(self._pledged[i])}."
                line += " The fish died out." if collapsed else f" {self._stock:.1f} tons after regrowth."
                self._lines[i].append(line)
        self._last = catches
        self._pledged = None
        self._phase = "pledge" if self.pledges else "harvest"
        return self._outcome(catches, events, over=collapsed or self._round >= self.horizon)

    def _metrics_horizon(self) -> int:
        return self.horizon * (2 if self.pledges else 1)

    def _extra_metrics(self) -> dict[str, float]:
        survived = self._round - (1 if self._collapsed else 0)
        return {"survival": survived / self.horizon, "final_stock": self._stock / self.capacity}
