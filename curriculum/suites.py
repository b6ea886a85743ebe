"""The evaluation suites: held-out and shifted variants of a stage (unseen splits, unseen opponents, perturbed
physics), as :class:`Variant` objects that :mod:`upbringing.curriculum.evaluation` plays."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from upbringing import envs
from upbringing.envs.social.players import BUILTIN_PLAYERS, make_player

REFERENCE = "in_distribution"
"""The suite that shifts are measured against."""

SUITES: dict[str, str] = {
    "in_distribution": "training configurations, fresh seeds (the reference)",
    "heldout": "the stage's held-out split (unseen parameter bands, held-out story families)",
    "opponents": "background players not seen in training (built-ins and Axelrod strategies)",
    "physics": "unannounced changes of gravity and friction",
}
"""Every suite, with what it shifts."""

SHIFTS = tuple(s for s in SUITES if s != REFERENCE)


@dataclass(frozen=True)
class Variant:
    """One configuration of a suite: env kwargs put on top of the stage's last level, and the split played.

    Attributes:
        label: What the variant changes, in words (``"gravity x1.5"``, ``"axelrod:Prober"``).
        overrides: Env keyword arguments on top of the level's.
        split: ``"train"`` or ``"eval"`` (envs without a split ignore it).
        opponent: Multi-agent stages: the player that holds every seat the learners do not, in place of the stage's
            background population (None: the stage's own population).
    """

    label: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    split: str = "train"
    opponent: str | None = None


PHYSICS_SHIFTS: tuple[Variant, ...] = (
    Variant("gravity x1.5", {"gravity": 1.5}),
    Variant("gravity x0.6", {"gravity": 0.6}),
    Variant("friction x0.5", {"friction": 0.5}),
    Variant("friction x2", {"friction": 2.0}),
)
"""The perturbed worlds of the ``physics`` suite."""

AXELROD_STRATEGIES: tuple[str, ...] = ("TitFor2Tats", "SuspiciousTitForTat", "Alternator", "Prober")
"""Axelrod strategies of the ``opponents`` suite (two-player 2x2 games): forgiving, suspicious, periodic, probing;
none of them is one of the built-in players."""


def _player_names(specs: Any) -> set[str]:
    if specs is None:
        return set()
    if isinstance(specs, str | Mapping):
        specs = [specs]
    names = set()
    for s in specs:
        if isinstance(s, str):
            names.add(s)
        elif isinstance(s, Mapping):
            names.add(str(s.get("name")))
        else:
            names.add(str(getattr(s, "name", s)))
    return names


def _multi_agent(env_id: str) -> bool:
    return envs.spec(env_id).api == "pettingzoo"


def seen_opponents(env_id: str, level_kwargs: Mapping[str, Any], population: Any = None) -> set[str]:
    """Names of the background players a social stage trains against: for a multi-agent stage the players of its
    ``population`` (a :class:`curriculum.population.PopulationConfig`; none without one), else the env's
    ``opponents``/``opponent_pool``, else the game's default opponents."""
    if _multi_agent(env_id):
        return {m.label for m in population.background} if population is not None else set()
    for key in ("opponents", "opponent_pool"):
        if level_kwargs.get(key) is not None:
            return _player_names(level_kwargs[key])
    return _player_names(getattr(envs.spec(env_id).load(), "default_opponents", ()))


def axelrod_available() -> bool:
    """Whether the optional axelrod package is installed."""
    return importlib.util.find_spec("axelrod") is not None


def unseen_opponents(
    env_id: str, level_kwargs: Mapping[str, Any], *, axelrod: bool = True, population: Any = None
) -> list[str]:
    """Background players able to play the stage's game that it never trained against (:func:`seen_opponents`;
    ``population`` is a multi-agent stage's): built-ins first, then :data:`AXELROD_STRATEGIES` (when ``axelrod`` and
    the package is installed)."""
    candidates = list(BUILTIN_PLAYERS)
    if axelrod and axelrod_available():
        candidates += [f"axelrod:{s}" for s in AXELROD_STRATEGIES]
    seen = seen_opponents(env_id, level_kwargs, population)
    game = envs.make(env_id, **level_kwargs) if _multi_agent(env_id) else None
    out = []
    for name in candidates:
        if name in seen:
            continue
        try:  # a player that cannot play this game (kind, number of players) is refused
            if game is not None:
                make_player(name).check(game.game_kind, game.n_players)
            else:
                envs.make(env_id, **{**level_kwargs, **_opponent_overrides(name)}).close()
        except (envs.EnvArgumentError, ValueError, ImportError):
            continue
        out.append(name)
    if game is not None:
        game.close()
    return out


def _opponent_overrides(name: str) -> dict[str, Any]:
    return {"opponents": [name], "opponent_pool": None, "opponent_weights": None}


def suite_variants(
    suite: str, env_id: str, level_kwargs: Mapping[str, Any], *, axelrod: bool = True, population: Any = None
) -> list[Variant]:
    """The variants of ``suite`` for a stage's env at its level (``population``: a multi-agent stage's); empty where
    the suite does not apply.

    Raises:
        ValueError: ``suite`` is not one of :data:`SUITES`.
    """
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose from: {', '.join(SUITES)}")
    params = set(envs.spec(env_id).params())
    has_split = "split" in params
    if suite == "in_distribution":
        return [Variant("training split" if has_split else "fresh seeds", {}, "train")]
    if suite == "heldout":
        return [Variant("held-out split" if has_split else "fresh seeds (no held-out split)", {}, "eval")]
    if suite == "opponents":
        if _multi_agent(env_id):
            names = unseen_opponents(env_id, level_kwargs, axelrod=axelrod, population=population)
            return [Variant(n, opponent=n) for n in names]
        if "opponents" not in params:
            return []
        return [Variant(n, _opponent_overrides(n)) for n in unseen_opponents(env_id, level_kwargs, axelrod=axelrod)]
    if {"gravity", "friction"} <= params:
        return list(PHYSICS_SHIFTS)
    return []
