"""Background players: the fixed co-players that fill the other seats of a social-dilemma game.

A background player sees what a seat sees (its numeric observation and its info dict, whose ``info["game"]`` holds
the game's state in machine-readable form) and returns an action. :class:`BackgroundPlayer` is deliberately small so
that a frozen policy snapshot or another learner can take a seat the same way as the scripted players here.

Built-in players (no extra packages): ``always_cooperate``, ``always_defect``, ``tit_for_tat``,
``generous_tit_for_tat``, ``grim_trigger``, ``random`` (2x2 games; the first two also play public goods),
``fixed_contributor`` (public goods), ``greedy_harvester``, ``sustainable_harvester``, ``proportional_harvester``
(commons). Any strategy of the Axelrod library plays a two-player 2x2 game as ``axelrod:<ClassName>``, or by its name
as Axelrod's tournaments list it (``axelrod:Joss`` is ``FirstByJoss``; see :func:`axelrod_strategy`); the library is
imported only when such a name is used (it is an optional extra and takes many seconds to import).

Build one with :func:`make_player` from a name, a ``{"name": ..., **kwargs}`` mapping (what a YAML config holds) or an
instance.
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

MATRIX, PUBLIC_GOODS, COMMONS = "matrix", "public_goods", "commons"
# Slack when comparing catch amounts with a target amount.
_EPS = 1e-9


class BackgroundPlayer(ABC):
    """A fixed player for one seat of a social-dilemma game.

    The env wrapper calls :meth:`reset` at the start of every episode and :meth:`act` exactly once per step of it, in
    order, so a player may keep its own memory of the game between calls.

    Attributes:
        name: How the player is named in logs and in ``info["opponents"]``.
        games: The game kinds (``info["game"]["kind"]``) the player knows how to play.
    """

    name: str = "player"
    games: ClassVar[frozenset[str]] = frozenset()

    def check(self, kind: str, n_players: int) -> None:
        """Raise ``ValueError`` if this player cannot take a seat in a ``kind`` game of ``n_players`` players."""
        if kind not in self.games:
            raise ValueError(f"background player {self.name!r} plays {sorted(self.games)} games, not {kind!r}")

    def reset(self, seed: int | None = None) -> None:
        """Start a new episode; ``seed`` seeds the player's own randomness."""
        self.rng = np.random.default_rng(seed)

    @abstractmethod
    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> int:
        """The action for the seat's current step, from the seat's observation and info dict."""


def _others_defected(game: Mapping[str, Any]) -> bool:
    last = game["last_actions"]
    return last is not None and any(a == 1 for a in last[1:])


class AlwaysCooperate(BackgroundPlayer):
    """Cooperates in 2x2 games; gives its whole endowment and never punishes in public goods."""

    name = "always_cooperate"
    games = frozenset({MATRIX, PUBLIC_GOODS})

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> int:
        game = info["game"]
        if game["kind"] == PUBLIC_GOODS:
            return len(game["levels"]) - 1 if game["phase"] == "contribute" else 0
        return 0


class AlwaysDefect(BackgroundPlayer):
    """Defects in 2x2 games; gives nothing and never punishes in public goods."""

    name = "always_defect"
    games = frozenset({MATRIX, PUBLIC_GOODS})

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> int:
        return 0 if info["game"]["kind"] == PUBLIC_GOODS else 1


class TitForTat(BackgroundPlayer):
    """Cooperates first, then defects exactly when some other player defected in the last round.

    With two players this is Rapoport's tit-for-tat; with more it retaliates against any defection.
    """

    name = "tit_for_tat"
    games = frozenset({MATRIX})

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> int:
        return 1 if _others_defected(info["game"]) else 0


class GenerousTitForTat(BackgroundPlayer):
    """Tit-for-tat that forgives a defection with probability ``generosity`` (Nowak and Sigmund 1992; 1/3 is their
    value for the default prisoner's dilemma payoffs)."""

    name = "generous_tit_for_tat"
    games = frozenset({MATRIX})

    def __init__(self, generosity: float = 1 / 3) -> None:
        if not 0.0 <= generosity <= 1.0:
            raise ValueError(f"generosity must be a probability, got {generosity!r}")
        self.generosity = float(generosity)
        self.reset()

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> int:
        if not _others_defected(info["game"]):
            return 0
        return 0 if self.rng.random() < self.generosity else 1


class GrimTrigger(BackgroundPlayer):
    """Cooperates until any other player defects, then defects for the rest of the episode."""

    name = "grim_trigger"
    games = frozenset({MATRIX})

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.triggered = False

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> int:
        self.triggered = self.triggered or _others_defected(info["game"])
        return 1 if self.triggered else 0


class RandomPlayer(BackgroundPlayer):
    """Cooperates with probability ``p_cooperate`` in 2x2 games; elsewhere picks uniformly among the valid actions."""

    name = "random"
    games = frozenset({MATRIX, PUBLIC_GOODS, COMMONS})

    def __init__(self, p_cooperate: float = 0.5) -> None:
        if not 0.0 <= p_cooperate <= 1.0:
            raise ValueError(f"p_cooperate must be a probability, got {p_cooperate!r}")
        self.p_cooperate = float(p_cooperate)
        self.reset()

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> int:
        if info["game"]["kind"] == MATRIX:
            return 0 if self.rng.random() < self.p_cooperate else 1
        return int(self.rng.choice(np.flatnonzero(info["action_mask"])))


class FixedContributor(BackgroundPlayer):
    """Public goods: always gives the contribution level nearest ``fraction`` of the endowment.

    With ``punish_below`` set, in the punishment step it punishes the lowest contributor among those who gave less
    than that fraction of the endowment (the first such seat on a tie); otherwise it never punishes.
    """

    name = "fixed_contributor"
    games = frozenset({PUBLIC_GOODS})

    def __init__(self, fraction: float = 1.0, punish_below: float | None = None) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must lie in [0, 1], got {fraction!r}")
        if punish_below is not None and not 0.0 <= punish_below <= 1.0:
            raise ValueError(f"punish_below must lie in [0, 1] or be None, got {punish_below!r}")
        self.fraction = float(fraction)
        self.punish_below = punish_below
        self.reset()

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> int:
        game = info["game"]
        if game["phase"] == "contribute":
            levels = np.asarray(game["levels"]) / game["endowment"]
            return int(np.argmin(np.abs(levels - self.fraction)))
        if self.punish_below is None:
            return 0
        gifts = np.asarray(game["contributions"][1:]) / game["endowment"]
        low = np.flatnonzero(gifts < self.punish_below - _EPS)
        if low.size == 0:
            return 0
        return int(low[np.argmin(gifts[low])]) + 1


class _Harvester(BackgroundPlayer):
    """A commons player that aims at a target catch; it pledges honestly what it is about to catch."""

    games = frozenset({COMMONS})

    @abstractmethod
    def target(self, game: Mapping[str, Any]) -> float:
        """How much to catch at the current stock."""

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> int:
        game = info["game"]
        levels = np.asarray(game["levels"])
        # The largest catch level that does not exceed the target.
        return int(np.flatnonzero(levels <= self.target(game) + _EPS)[-1])


class GreedyHarvester(_Harvester):
    """Catches as much as it can every round."""

    name = "greedy_harvester"

    def target(self, game: Mapping[str, Any]) -> float:
        return float(game["levels"][-1])


class SustainableHarvester(_Harvester):
    """Catches no more than its sustainable share (its part of the stock above half the capacity)."""

    name = "sustainable_harvester"

    def target(self, game: Mapping[str, Any]) -> float:
        return float(game["sustainable_share"])


class ProportionalHarvester(_Harvester):
    """Catches ``fraction`` of the current stock each round."""

    name = "proportional_harvester"

    def __init__(self, fraction: float = 0.05) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must lie in [0, 1], got {fraction!r}")
        self.fraction = float(fraction)
        self.reset()

    def target(self, game: Mapping[str, Any]) -> float:
        return self.fraction * float(game["stock"])


def _axelrod() -> Any:
    try:
        return importlib.import_module("axelrod")
    except ImportError as err:
        raise ImportError(
            "axelrod strategies need the optional axelrod package: pip install 'upbringing[axelrod]'"
        ) from err


def _key(name: str) -> str:
    """``"First by Joss"``, ``"first-by-joss"`` and ``"FirstByJoss"`` alike: lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


@functools.cache
def axelrod_names() -> tuple[dict[str, type], dict[str, type]]:
    """The Axelrod library's strategies by every name a person may use, built from the library's own data.

    Returns ``(classes, aliases)``: ``classes`` by class name (``FirstByJoss``); ``aliases`` by :func:`_key` of the
    class name, of the strategy's own ``name`` (``"First by Joss"``), and of the entrant as the tournaments list them
    (``"Joss"``, ``"Stein and Rapoport"`` or ``"Stein-Rapoport"``: the ``name`` without its ``"First by "`` /
    ``"Second by "``). The first tournament wins where both had an entrant of that name (``Grofman`` is
    ``FirstByGrofman``); a key two strategies share otherwise is left out (it would be a guess).
    """
    axl = _axelrod()
    # Cheating strategies are looked up too, so that asking for one is refused with its reason, not as unknown.
    classes = {s.__name__: s for s in (*axl.all_strategies, *axl.cheating_strategies)}
    found: dict[str, set[str]] = {}
    for cls in classes.values():
        for name in (cls.__name__, getattr(cls, "name", cls.__name__)):
            found.setdefault(_key(name), set()).add(cls.__name__)
    aliases = {k: classes[next(iter(v))] for k, v in found.items() if len(v) == 1}
    first = {s.__name__ for s in getattr(axl, "axelrod_first_strategies", ())}
    for prefix, in_tournament in (
        ("First by ", lambda c: c.__name__ in first or c.__name__.startswith("FirstBy")),
        ("Second by ", lambda c: c.__name__.startswith("SecondBy")),
    ):
        entrants: dict[str, set[str]] = {}
        for cls in classes.values():
            name = getattr(cls, "name", "")
            if in_tournament(cls) and name.startswith(prefix):
                entrant = name[len(prefix) :]  # "Stein and Rapoport" is also written "Stein-Rapoport"
                for spelling in {entrant, entrant.replace(" and ", " ")}:
                    entrants.setdefault(_key(spelling), set()).add(cls.__name__)
        for k, v in entrants.items():
            if len(v) == 1 and k not in found:
                aliases.setdefault(k, classes[next(iter(v))])
    return classes, aliases


def axelrod_strategy(name: str) -> type:
    """The Axelrod strategy class a person means by ``name``: its class name (``FirstByJoss``), its own name
    (``"First by Joss"``) or the entrant's name as the tournament lists it (``Joss``), in any case and spacing.

    Raises:
        ValueError: no strategy has that name; the message suggests the closest real names.
    """
    classes, aliases = axelrod_names()
    cls = classes.get(name) or aliases.get(_key(name))
    if cls is not None:
        return cls
    # Hints from real matches: the close ones among class names, the strategies' own names and the entrants' names.
    spelled: dict[str, str] = {}
    for cls in classes.values():
        own = getattr(cls, "name", cls.__name__)
        for text in (cls.__name__, own, own.partition(" by ")[2] if own.startswith(("First by", "Second by")) else ""):
            if text:
                spelled.setdefault(text.lower(), cls.__name__)
    for k, cls in aliases.items():
        spelled.setdefault(k, cls.__name__)
    close = difflib.get_close_matches(name.lower(), list(spelled), n=8, cutoff=0.6)
    hints = list(dict.fromkeys(spelled[c] for c in close))[:3]
    hint = f"; did you mean {', '.join(hints)}?" if hints else ""
    raise ValueError(f"axelrod has no strategy {name!r}{hint}")


class AxelrodPlayer(BackgroundPlayer):
    """A strategy of the Axelrod library in a two-player 2x2 game, stepped one round at a time.

    It plays exactly as in ``axelrod.Match((other, strategy), turns=horizon, game=Game(R, S, T, P), seed=seed)``
    against the same sequence of the other seat's actions (``seed`` being the one given to :meth:`reset`): the
    strategy is reset and given the match attributes (known length, or infinite when the horizon is unknown; the game's
    payoffs; no noise) like ``Match.play`` does, and a stochastic strategy is seeded from ``seed`` the way ``Match``
    seeds its players. Action 0 is Axelrod's ``C``, 1 is ``D``.

    Args:
        strategy: The strategy as :func:`axelrod_strategy` reads it: its class name in the ``axelrod`` package
            (``"Grudger"``, ``"GTFT"``, ``"FirstByJoss"``), its own name (``"First by Joss"``) or the tournament
            entrant's (``"Joss"``).
        **kwargs: Passed to the strategy's constructor (e.g. ``p=0.2`` for ``GTFT``).
    """

    games = frozenset({MATRIX})

    def __init__(self, strategy: str, **kwargs: Any) -> None:
        axl = _axelrod()
        cls = axelrod_strategy(strategy)
        strategy = cls.__name__
        try:
            self.strategy = cls(**kwargs)
        except (TypeError, ValueError) as err:
            raise ValueError(f"axelrod:{strategy}: {err}") from None
        # Strategies that read or rewrite their opponent's code or state need a real axelrod opponent object.
        for flag in ("inspects_source", "manipulates_source", "manipulates_state"):
            if axl.Classifiers[flag](self.strategy):
                raise ValueError(f"axelrod:{strategy} {flag.replace('_', ' ')} of its opponent; it cannot take a seat")
        self.name = f"axelrod:{strategy}"
        self._actions = (axl.Action.C, axl.Action.D)
        self.reset()

    def check(self, kind: str, n_players: int) -> None:
        super().check(kind, n_players)
        if n_players != 2:
            raise ValueError(f"{self.name} plays two-player games only, not {n_players} players")

    def reset(self, seed: int | None = None) -> None:
        self.seed = seed
        self._started = False

    def _start(self, game: Mapping[str, Any]) -> None:
        axl, p = _axelrod(), game["payoffs"]
        attributes = {
            "length": float("inf") if game["horizon"] is None else game["horizon"],
            "game": axl.Game(r=p["R"], s=p["S"], t=p["T"], p=p["P"]),
            "noise": 0,
        }
        # The same order of steps as axelrod.Match.play: reset, match attributes, then a seed for stochastic players
        # drawn from the match's generator (first draw, as the other seat, a fixed action sequence, is deterministic).
        self.strategy.reset()
        self.strategy.set_match_attributes(**attributes)
        if axl.Classifiers["stochastic"](self.strategy):
            self.strategy.set_seed(axl.RandomGenerator(seed=self.seed).random_seed_int())
        self.other = axl.MockPlayer()
        self.other.set_match_attributes(**attributes)
        self._started = True

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> int:
        game = info["game"]
        if not self._started:
            self._start(game)
        last = game["last_actions"]
        if last is not None:
            mine, theirs = self._actions[last[0]], self._actions[last[1]]
            self.strategy.update_history(mine, theirs)
            self.other.update_history(theirs, mine)
        return 0 if self.strategy.strategy(self.other) == self._actions[0] else 1


BUILTIN_PLAYERS: dict[str, type[BackgroundPlayer]] = {
    cls.name: cls
    for cls in (
        AlwaysCooperate,
        AlwaysDefect,
        TitForTat,
        GenerousTitForTat,
        GrimTrigger,
        RandomPlayer,
        FixedContributor,
        GreedyHarvester,
        SustainableHarvester,
        ProportionalHarvester,
    )
}

PlayerSpec = str | Mapping[str, Any] | BackgroundPlayer


def make_player(spec: PlayerSpec) -> BackgroundPlayer:
    """Build a background player from a name, a ``{"name": ..., **kwargs}`` mapping or an instance (copied).

    Names are the built-ins (``BUILTIN_PLAYERS``) or ``axelrod:<ClassName>``.

    Raises:
        ValueError: unknown name or bad arguments (the message lists what is accepted).
    """
    if isinstance(spec, BackgroundPlayer):
        # A copy, so one instance given for several seats never shares its memory between them.
        return copy.deepcopy(spec)
    if isinstance(spec, Mapping):
        kwargs = dict(spec)
        name = kwargs.pop("name", None)
        if not isinstance(name, str):
            raise ValueError(f"a background player given as a mapping needs a 'name' string, got {spec!r}")
    elif isinstance(spec, str):
        name, kwargs = spec, {}
    else:
        raise ValueError(f"a background player is a name, a mapping with 'name', or a BackgroundPlayer; got {spec!r}")
    if name.startswith("axelrod:"):
        return AxelrodPlayer(name.removeprefix("axelrod:"), **kwargs)
    cls = BUILTIN_PLAYERS.get(name)
    if cls is None:
        raise ValueError(
            f"unknown background player {name!r}; built-ins: {', '.join(BUILTIN_PLAYERS)}, or axelrod:<ClassName>"
        )
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"background player {name!r}: {err}") from None
