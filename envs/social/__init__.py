"""The social family of environments: living with others. ``SPECS`` lists them (see :class:`envs.registry.EnvSpec`).

Each game is a PettingZoo ``ParallelEnv`` (every seat a learner) and has a single-agent Gymnasium view (``...Solo``:
the learner in one seat, background players from :mod:`upbringing.envs.social.players` in the others). Levels go from
two players and a known horizon to more players, an unknown horizon, punishment or pledges.
"""

from __future__ import annotations

from upbringing.envs.registry import EnvSpec
from upbringing.envs.social.events import COMMONS_EVENTS, MATRIX_CONFLICT_EVENTS, MATRIX_EVENTS, PUBLIC_GOODS_EVENTS

_MATRIX_LEVELS = (
    {"n_players": 2, "horizon": 10},
    {"n_players": 2, "horizon": 50, "continuation": 0.9},
    {"n_players": 4, "horizon": 50, "continuation": 0.9},
)
_PUBLIC_GOODS_LEVELS = (
    {"n_players": 3, "horizon": 10},
    {"n_players": 4, "horizon": 10, "punishment": True},
    {"n_players": 6, "horizon": 15, "punishment": True},
)
_COMMONS_LEVELS = (
    {"n_players": 2, "horizon": 20},
    {"n_players": 4, "horizon": 30, "pledges": True},
    {"n_players": 6, "horizon": 40, "pledges": True, "growth_rate": 0.5},
)

_GAMES = (
    (
        "IteratedPD",
        "matrix:IteratedPD",
        "iterated prisoner's dilemma (R=3, S=0, T=5, P=1 by default), fixed or unknown horizon, 2+ players",
        MATRIX_CONFLICT_EVENTS,
        _MATRIX_LEVELS,
    ),
    (
        "StagHunt",
        "matrix:StagHunt",
        "iterated stag hunt: trust and coordination (R=4, S=0, T=3, P=2 by default), 2+ players",
        MATRIX_EVENTS,
        _MATRIX_LEVELS,
    ),
    (
        "Chicken",
        "matrix:Chicken",
        "iterated game of chicken: swerve or drive on, crashes are conflict (R=3, S=1, T=5, P=0 by default)",
        MATRIX_CONFLICT_EVENTS,
        _MATRIX_LEVELS,
    ),
    (
        "PublicGoods",
        "public_goods:PublicGoods",
        "repeated public goods game with contribution levels, a multiplier and optional costly punishment",
        PUBLIC_GOODS_EVENTS,
        _PUBLIC_GOODS_LEVELS,
    ),
    (
        "Commons",
        "commons:Commons",
        "renewable common-pool resource (logistic regrowth, collapse when overharvested), optional pledges",
        COMMONS_EVENTS,
        _COMMONS_LEVELS,
    ),
)

SPECS: list[EnvSpec] = [
    EnvSpec(
        id=f"social/{name}-v0",
        entry_point=f"upbringing.envs.social.{entry}",
        family="social",
        api="pettingzoo",
        description=description,
        event_names=events,
        levels=levels,
        extra={"metrics": ["efficiency", "equality", "sustainability", "peace", "cooperation_rate"]},
    )
    for name, entry, description, events, levels in _GAMES
] + [
    EnvSpec(
        id=f"social/{name}Solo-v0",
        entry_point=f"upbringing.envs.social.solo:{name}Solo",
        family="social",
        api="gymnasium",
        description=f"{description}; the learner in one seat against background players (opponents=[...])",
        event_names=events,
        levels=levels,
        extra={
            "multi_agent": f"social/{name}-v0",
            "metrics": ["efficiency", "equality", "sustainability", "peace", "cooperation_rate"],
        },
    )
    for name, _, description, events, levels in _GAMES
]
