"""Who holds each seat of a multi-agent stage: focal seats, the background population, one opponent alone.

A stage whose env is a PettingZoo game is a multi-agent stage; its ``population`` block (see
:class:`~upbringing.curriculum.config.PopulationConfig` and :mod:`upbringing.curriculum.population`) says which seats
the learner holds and who fills the others. Here: building one game with its background seats filled, the learner's
rows as a ``VecEnv``, the stage with one player alone in the other seats, playing held-out games, and the checks of
a stage's seating that ``upbringing check`` runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np
from upbringing import envs
from upbringing.agents.base import Agent
from upbringing.agents.team import Team
from upbringing.curriculum.config import PopulationConfig
from upbringing.curriculum.factory import EvalResult, StageEnvFactory
from upbringing.curriculum.playout import Row, play_rows
from upbringing.envs.social.players import BackgroundPlayer, PlayerSpec, make_player
from upbringing.envs.social.seats import BackgroundSeats
from upbringing.envs.social.vec import SeatVecEnv, SeatView, Table


def focal_seats(population: PopulationConfig | None, n_players: int) -> list[int]:
    """The seats the learner holds in a game of ``n_players``."""
    if population is None or population.focal_seats is None:
        return list(range(n_players))
    return sorted(population.focal_seats)


def recent_snapshots(snapshots: Sequence[Any], promotions: int) -> list[Any]:
    """The snapshots of the ``promotions`` most recent promotions (one each, or one of each independent learner),
    oldest first. Snapshots are told apart by their ``step`` (the global step of their promotion), else by position."""
    keys = [getattr(s, "step", i) for i, s in enumerate(snapshots)]
    keep = set(sorted(set(keys))[-promotions:])
    return [s for s, k in zip(snapshots, keys) if k in keep]


def scenario(
    population: PopulationConfig, snapshots: Sequence[BackgroundPlayer] = ()
) -> tuple[list[PlayerSpec], list[float]]:
    """The background pool and draw weights: the configured members, and the snapshots of the ``max_snapshots``
    most recent promotions sharing ``snapshots``'s weight equally (left out until the first one exists)."""
    pool: list[PlayerSpec] = [m.player for m in population.background]
    weights = [m.weight for m in population.background]
    recent = recent_snapshots(list(snapshots), population.max_snapshots)
    if population.snapshots > 0 and recent:
        pool += recent
        weights += [population.snapshots / len(recent)] * len(recent)
    return pool, weights


def make_table(factory: StageEnvFactory, split: str = "train") -> Any:
    """One game of a multi-agent stage as a ``ParallelEnv`` of its focal seats (background seats filled inside: by
    the factory's ``opponent`` when it has one, else drawn from the stage's population)."""

    game = envs.make(factory.stage.env, **factory.env_kwargs(split))
    population = factory.stage.population
    focal = focal_seats(population, game.n_players)
    if len(focal) == game.n_players:
        return game
    if factory.opponent is not None:
        return BackgroundSeats(game, focal, opponents=factory.opponent)
    assert population is not None  # focal seats other than all of them come from a population
    pool, weights = scenario(population, factory.background)
    return BackgroundSeats(game, focal, opponent_pool=pool, opponent_weights=weights)


def against(factory: StageEnvFactory, player: PlayerSpec, n_players: int) -> StageEnvFactory:
    """The stage with ``player`` alone in every seat the learners do not hold, instead of its population and
    snapshots (a column of the cross-play matrix, a variant of the ``opponents`` evaluation suite).

    The focal seats are the configured ones, or the first seat when every seat is focal.
    """
    population = factory.stage.population or PopulationConfig()
    focal = focal_seats(population, n_players)
    alone = focal if len(focal) < n_players else [0]
    stage = factory.stage.model_copy(update={"population": population.model_copy(update={"focal_seats": alone})})
    return replace(factory, stage=stage, background=(), opponent=player)


def learner_seats(stage: Any, level_kwargs: dict[str, Any]) -> list[str]:
    """The names of the focal seats of a multi-agent stage's game (``player_0``, ...), in seat order: with
    independent learners, who holds which learner."""

    game = envs.make(stage.env, **level_kwargs)
    names = [game.possible_agents[s] for s in focal_seats(stage.population, game.n_players)]
    game.close()
    return names


def learner_seed(run_seed: int, stage: int, seat: int) -> int:
    """The seed of the independent learner of focal seat ``seat`` (1, 2, ...) in stage ``stage``."""
    return int(np.random.SeedSequence([run_seed, 0x1EA4, stage, seat]).generate_state(1)[0])


def make_population_vec_env(factory: StageEnvFactory, n_rows: int) -> Any:
    """A ``VecEnv`` of ``n_rows`` learner rows: ``n_rows / focal seats`` games played side by side."""

    n_focal = len(make_table(factory).possible_agents)
    if n_rows % n_focal:
        raise ValueError(f"{factory.stage.name}: n_envs ({n_rows}) must be a multiple of the focal seats ({n_focal})")
    return SeatVecEnv(lambda: make_table(factory), n_rows // n_focal, factory.wrap)


def check_stage(stage: Any, n_envs: int, levels: Sequence[dict[str, Any]]) -> list[str]:
    """What is wrong with a multi-agent stage at any of its levels (seats out of range, unfit players, a batch that
    the focal seats do not divide)."""

    population = stage.population
    problems: list[str] = []
    seatings: set[tuple[int, ...]] = set()
    for j, kwargs in enumerate(levels):
        game = envs.make(stage.env, **kwargs)
        n = game.n_players
        game.close()
        focal = focal_seats(population, n)
        if any(s >= n for s in focal):
            problems.append(f"level {j}: focal_seats {focal} do not fit a game of {n} players")
            continue
        if population is not None and population.independent:
            seatings.add(tuple(focal))
        if len(focal) < n and (population is None or not population.background):
            problems.append(f"level {j}: seats {sorted(set(range(n)) - set(focal))} need a background population")
        if n_envs % len(focal):
            problems.append(f"level {j}: curriculum.n_envs ({n_envs}) must be a multiple of {len(focal)} focal seats")
        if population is not None and len(focal) < n:
            game = envs.make(stage.env, **kwargs)
            for m in population.background:
                try:
                    make_player(m.player).check(game.game_kind, n)
                except (ValueError, ImportError) as err:  # ImportError: an axelrod: name without the extra
                    problems.append(f"level {j}: background {m.label}: {err}")
            game.close()
    if len(seatings) > 1:
        problems.append(
            f"independent learners need the same focal seats at every level (one learner each), got "
            f"{' / '.join(str(list(s)) for s in sorted(seatings))}: set focal_seats or keep n_players"
        )
    return sorted(set(problems), key=problems.index)


def _play_tables(tables: Sequence[Table], seats: Sequence[tuple[int, str]], chosen: dict[int, int]) -> None:
    """Each table plays the joint action its rows chose (``seats[i]``: row i's table and seat)."""
    for t, table in enumerate(tables):
        joint = {seat: chosen[i] for i, (tt, seat) in enumerate(seats) if tt == t and i in chosen}
        if joint:
            table.play(joint)


def evaluate_population(
    agent: Agent, factory: StageEnvFactory, seeds: Sequence[int], metric: str, batch: int = 8, max_steps: int = 10_000
) -> EvalResult:
    """Play one held-out game per seed with ``agent`` in every focal seat, acting deterministically (a
    :class:`Team`: each member in its own seat).

    Every focal seat of every game is one entry of the result (its return, success and episode statistics, whose
    ``social`` holds the whole table's metrics).
    """

    result = EvalResult([], [], [], [], [])
    seeds = list(seeds)
    for start in range(0, len(seeds), batch):
        tables = [Table(make_table(factory, "eval")) for _ in seeds[start : start + batch]]
        seats = [(t, seat) for t, table in enumerate(tables) for seat in table.seats]
        rows = [
            Row(
                factory.wrap(SeatView(tables[t], seat)),
                seeds[start + t],  # the table's first seat starts the game with this seed
                agent.members[seat] if isinstance(agent, Team) else agent,
            )
            for t, seat in seats
        ]
        play = partial(_play_tables, tables, seats)
        play_rows(rows, result, metric, factory.stage.env, before_step=play, max_steps=max_steps)
        for table in tables:
            table.close()
    return result
