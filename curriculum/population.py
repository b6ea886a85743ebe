"""Multi-agent stages: who holds each seat, frozen past selves, and the cross-play evaluation.

A stage whose env is a PettingZoo game is a multi-agent stage. Its ``population`` block says which seats are focal
(held by the learner, each one row of the learner's batch: self-play with parameter sharing) and who fills the others:
background players (built-ins, ``axelrod:<Name>``) and frozen past selves of the learner (snapshots saved at each
promotion), drawn anew every episode in the configured proportions, as in Melting Pot's scenarios (Leibo et al. 2021,
"Scalable evaluation of multi-agent reinforcement learning with Melting Pot"). Without a ``population`` block every
seat is focal.

With ``independent: true`` the focal seats are held by independent learners instead (Tan 1993, "Multi-agent
reinforcement learning: independent vs. cooperative agents"; IPPO, de Witt et al. 2020): the run's agent holds the
first focal seat and every other focal seat has a learner of its own, an agent of the same config with its own
weights and optimizer that learns only from its seat's experience. They play and learn in the same games at the same
time, as one :class:`Team`.

At the end of a run :func:`crossplay` plays every trained member (the learners and their snapshots) against the
stage's own scenario, against each background player alone and, for independent learners, against each learner alone,
with the social metrics of every pairing, and :func:`exploitability` reads off the learner's score against
``always_defect`` and its cooperation with ``tit_for_tat``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from upbringing.agents.base import Agent
from upbringing.envs.social.players import COMMONS, MATRIX, PUBLIC_GOODS, BackgroundPlayer, PlayerSpec, make_player

if TYPE_CHECKING:
    from upbringing.curriculum.stage_envs import EvalResult, StageEnvFactory

SNAPSHOTS = "snapshots"
CROSSPLAY_FILE = "crossplay.json"


class BackgroundMember(BaseModel):
    """One member of a stage's background population."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    player: str | dict[str, Any] = Field(
        description="A background player: a name (tit_for_tat, axelrod:Grudger) or {name: ..., **kwargs}."
    )
    weight: float = Field(default=1.0, ge=0.0, description="Relative chance a background seat draws it each episode.")

    @property
    def label(self) -> str:
        """The player's name as the cross-play matrix shows it."""
        return self.player if isinstance(self.player, str) else str(self.player.get("name", "player"))


class PopulationConfig(BaseModel):
    """Who holds the seats of a multi-agent stage."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    focal_seats: list[int] | None = Field(
        default=None, description="Seat indices the learner holds (parameter sharing); None = every seat (self-play)."
    )
    background: list[BackgroundMember] = Field(
        default_factory=list, description="Players drawn per episode for the other seats, with relative weights."
    )
    snapshots: float = Field(
        default=0.0,
        ge=0.0,
        description="Relative weight of frozen past selves (saved at each promotion) in the background draw.",
    )
    max_snapshots: int = Field(default=3, gt=0, description="How many of the most recent snapshots take part.")
    snapshot_sampling: bool = Field(
        default=False, description="Snapshots sample their actions (True) or play their most likely one (False)."
    )
    crossplay_opponents: list[str | dict[str, Any]] = Field(
        default_factory=lambda: ["always_defect", "tit_for_tat"],
        description="Extra players each trained member meets in the cross-play matrix (unfit ones are skipped).",
    )
    crossplay_episodes: int = Field(default=10, gt=0, description="Episodes per cell of the cross-play matrix.")
    independent: bool = Field(
        default=False,
        description="Independent learners: the run's agent holds the first focal seat and each other focal seat its "
        "own agent of the same config (own weights, optimizer, seat's experience only); False = one shared policy.",
    )

    @model_validator(mode="after")
    def _seats_and_fallback(self) -> PopulationConfig:
        if self.focal_seats is not None:
            if not self.focal_seats or len(set(self.focal_seats)) != len(self.focal_seats):
                raise ValueError("focal_seats must be a non-empty list of distinct seat indices")
            if any(s < 0 for s in self.focal_seats):
                raise ValueError("focal_seats must be seat indices >= 0")
            if self.independent and len(self.focal_seats) < 2:
                raise ValueError(
                    f"independent learners need two or more focal seats, got focal_seats {self.focal_seats}"
                )
        if self.snapshots > 0 and not self.background:
            raise ValueError("snapshots need a background to draw from before the first promotion saves one")
        if self.background and not sum(m.weight for m in self.background) > 0:
            raise ValueError("the background weights must have a positive sum")
        return self


# ----------------------------------------------------------------------------------------------- scenarios


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
    from upbringing import envs
    from upbringing.envs.social.seats import BackgroundSeats

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
    from upbringing import envs

    game = envs.make(stage.env, **level_kwargs)
    names = [game.possible_agents[s] for s in focal_seats(stage.population, game.n_players)]
    game.close()
    return names


def learner_seed(run_seed: int, stage: int, seat: int) -> int:
    """The seed of the independent learner of focal seat ``seat`` (1, 2, ...) in stage ``stage``."""
    return int(np.random.SeedSequence([run_seed, 0x1EA4, stage, seat]).generate_state(1)[0])


def make_population_vec_env(factory: StageEnvFactory, n_rows: int) -> Any:
    """A ``VecEnv`` of ``n_rows`` learner rows: ``n_rows / focal seats`` games played side by side."""
    from upbringing.envs.social.vec import SeatVecEnv

    n_focal = len(make_table(factory).possible_agents)
    if n_rows % n_focal:
        raise ValueError(f"{factory.stage.name}: n_envs ({n_rows}) must be a multiple of the focal seats ({n_focal})")
    return SeatVecEnv(lambda: make_table(factory), n_rows // n_focal, factory.wrap)


def check_stage(stage: Any, n_envs: int, levels: Sequence[dict[str, Any]]) -> list[str]:
    """What is wrong with a multi-agent stage at any of its levels (seats out of range, unfit players, a batch that
    the focal seats do not divide)."""
    from upbringing import envs

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


# ----------------------------------------------------------------------------------------------- snapshots


class SnapshotPlayer(BackgroundPlayer):
    """A frozen past self of the learner in a background seat: it owns its own agent, loaded from a snapshot.

    Nothing ever trains that agent (the engine trains only its learners), so the snapshot's weights stay exactly as
    saved. Copies made for several seats share the agent (it is read-only) but not their random state.

    The cross-play matrix also seats live learners this way, to play against each other (their weights do not
    change while it is played).

    Args:
        agent: The snapshot's agent.
        name: How it is named in logs and the cross-play matrix.
        numeric: ``(obs_dim, n_actions, task, n_tasks)`` of the learner's numeric view, for numeric agents: the
            snapshot sees observations exactly as the learner saw them.
        deterministic: Play the most likely action (True) or sample one.
        step: The global step of the promotion it was saved at (None for a live learner).
    """

    games = frozenset({MATRIX, PUBLIC_GOODS, COMMONS})

    def __init__(
        self,
        agent: Agent,
        name: str,
        numeric: tuple[int, int, int, int] | None = None,
        deterministic: bool = True,
        step: int | None = None,
    ) -> None:
        self.agent = agent
        self.name = name
        self.numeric = numeric
        self.deterministic = deterministic
        self.step = step
        self.reset()

    def _view(self, observation: np.ndarray) -> np.ndarray:
        if self.numeric is None:
            return np.asarray(observation)
        obs_dim, _, task, n_tasks = self.numeric
        out = np.zeros(obs_dim + n_tasks, dtype=np.float32)
        flat = np.asarray(observation, dtype=np.float32).ravel()
        out[: flat.size] = flat
        out[obs_dim + task] = 1.0
        return out

    def act(self, observation: np.ndarray, info: Any) -> int:
        from upbringing.envs.social.vec import valid_action

        action = self.agent.act(self._view(observation)[None], [info], deterministic=self.deterministic)[0]
        n = len(info.get("action_texts", [])) or int(action) + 1
        return valid_action(int(action), n, info.get("action_mask"))

    def __deepcopy__(self, memo: dict[int, Any]) -> SnapshotPlayer:
        clone = copy.copy(self)
        clone.rng = copy.deepcopy(self.rng, memo)
        return clone


@dataclass(frozen=True)
class Snapshot:
    """A frozen copy of a learner, saved in the run folder when it was promoted."""

    name: str  # <stage>-L<level>@<global step>, and :<seat> for an independent learner other than the run's agent
    path: Path
    step: int


# <step>-<stage>-L<level>, and .<seat> for an independent learner (stage names may hold '-' and '.', never '/')
_SNAPSHOT_DIR = re.compile(r"^(?P<step>\d+)-(?P<stage>.+)-L(?P<level>\d+)(?:\.(?P<seat>\w+))?$")


class Snapshots:
    """The learners' frozen past selves in ``<run>/snapshots/``: saved at promotions, loaded once each.

    Args:
        root: The snapshots folder.
        build: Builds a fresh agent of the learner's kind (its weights are then loaded from the snapshot).
    """

    def __init__(self, root: Path, build: Callable[[], Agent]) -> None:
        self.root = Path(root)
        self.build = build
        self._agents: dict[Path, Agent] = {}

    def save(self, agent: Agent, stage: str, level: int, step: int, seat: str | None = None) -> Snapshot:
        """Freeze ``agent`` as it is now; ``seat`` names the seat of an independent learner other than the run's
        agent."""
        suffix = f".{seat}" if seat else ""
        path = self.root / f"{step:012d}-{stage}-L{level}{suffix}"
        agent.save(path)
        return Snapshot(f"{stage}-L{level}@{step}" + (f":{seat}" if seat else ""), path, step)

    def available(self, step: int | None = None) -> list[Snapshot]:
        """The snapshots saved up to global step ``step`` (all when None), oldest first. A resumed run ignores any
        saved after its checkpoint, which it will save again."""
        out = []
        for path in sorted(self.root.iterdir()) if self.root.exists() else []:
            match = _SNAPSHOT_DIR.match(path.name)
            if match is None or not path.is_dir():
                continue
            at, seat = int(match["step"]), match["seat"]
            if step is None or at <= step:
                name = f"{match['stage']}-L{match['level']}@{at}" + (f":{seat}" if seat else "")
                out.append(Snapshot(name, path, at))
        return out

    def agent(self, snapshot: Snapshot) -> Agent:
        """The snapshot's own agent (loaded on first use, then reused). Building it leaves the global random
        generators as they were (an SB3 model reseeds them when built), so when a snapshot is first loaded does not
        change what training draws (exact resume)."""
        if snapshot.path not in self._agents:
            with global_rngs_kept():
                agent = self.build()
                agent.load(snapshot.path)
            self._agents[snapshot.path] = agent
        return self._agents[snapshot.path]

    def player(
        self, snapshot: Snapshot, numeric: tuple[int, int, int, int] | None, deterministic: bool = True
    ) -> SnapshotPlayer:
        """The snapshot as a background player."""
        return SnapshotPlayer(
            self.agent(snapshot), f"snapshot:{snapshot.name}", numeric, deterministic, step=snapshot.step
        )


@contextmanager
def global_rngs_kept() -> Iterator[None]:
    """Restore Python's, NumPy's and torch's global random states on exit (building an SB3 model reseeds them,
    loading an LM agent sets torch's)."""
    import random

    import torch

    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


# ----------------------------------------------------------------------------------------------- independent learners


class Team(Agent):
    """Independent learners: each focal seat of a multi-agent stage held by its own agent, all learning at once.

    Rows of the stage's ``VecEnv`` are the focal seats of games played side by side (rows of a game adjacent, in seat
    order), so row ``i`` belongs to the ``i % len(members)``-th member. :meth:`learn` steps the ``VecEnv`` itself:
    every step each member acts for its own rows and is then told what happened to them (:class:`agents.base.Lockstep`);
    a member updates its policy whenever it has collected a whole rollout of its rows, from those rows only.

    Why a lockstep loop and not each agent's own ``learn``: SB3's ``learn`` (and the LM agent's) drives the env
    itself, so several of them cannot share one game unless they run in threads, which would make the order in which
    they draw from the global random generators, and so the run, depend on scheduling. Here the members act and
    update in seat order, one after another: the same seed gives the same run, and since a chunk holds whole
    rollouts of every member, nothing is left half-collected at a checkpoint (each member's own saved state is all
    there is).

    The members are separate agents (own weights, optimizer, counters, random streams); the team owns no state.

    Args:
        members: The agent holding each focal seat, by seat name (``player_0``, ...), in seat order.
    """

    def __init__(self, members: Mapping[str, Agent]) -> None:
        if len(members) < 2 or len({id(a) for a in members.values()}) != len(members):
            raise ValueError("a team needs two or more distinct agents, one per focal seat")
        self.members = dict(members)
        self.uses_text = any(a.uses_text for a in self.members.values())  # type: ignore[misc]

    def _rows(self, n: int) -> list[np.ndarray]:
        k = len(self.members)
        if n % k:
            raise ValueError(f"{n} rows do not hold whole games of {k} focal seats")
        return [np.arange(j, n, k) for j in range(k)]

    def act(self, obs: np.ndarray, infos: Sequence[dict[str, Any]], deterministic: bool = False) -> np.ndarray:
        """Each member's actions for its rows of a whole batch of games (row ``i``: member ``i % len(members)``)."""
        out = np.zeros(len(obs), dtype=np.int64)
        for rows, agent in zip(self._rows(len(obs)), self.members.values()):
            out[rows] = agent.act(obs[rows], [infos[i] for i in rows], deterministic)
        return out

    def learn(self, venv: Any, steps: int) -> dict[str, float]:
        """Reset ``venv`` and play ``steps`` env steps (all rows together), every member learning from its rows.

        Returns:
            Each member's ``train/`` metrics of its last update as ``train/<seat>/...``, and each seat's mean episode
            return (``train/<seat>/episode_return``) and cooperation per step (``train/<seat>/cooperation``, in games
            that count each choice as ``cooperated`` or ``defected``) over the finished episodes.
        """
        n = venv.num_envs
        rows = self._rows(n)
        seats = list(self.members)
        learners = [agent.lockstep(len(r)) for agent, r in zip(self.members.values(), rows)]
        obs = venv.reset()
        infos = [dict(i) for i in venv.reset_infos]
        metrics: dict[str, float] = {}
        returns: dict[str, list[float]] = {seat: [] for seat in seats}
        cooperation: dict[str, list[float]] = {seat: [] for seat in seats}
        for _ in range(steps // n):
            actions = np.zeros(n, dtype=np.int64)
            for r, learner in zip(rows, learners):
                actions[r] = learner.act(obs[r], [infos[i] for i in r])
            obs, rewards, dones, step_infos = venv.step(actions)
            reset_infos = venv.reset_infos
            for seat, r, learner in zip(seats, rows, learners):
                update = learner.observe(
                    obs[r], rewards[r], dones[r], [step_infos[i] for i in r], [reset_infos[i] for i in r]
                )
                if update is not None:
                    metrics.update({f"train/{seat}/{k.removeprefix('train/')}": v for k, v in update.items()})
                for i in r:
                    stats = step_infos[i].get("episode_stats") if dones[i] else None
                    if stats is not None:
                        returns[seat].append(stats["return"])
                        events = stats["events"]
                        if "cooperated" in events or "defected" in events:  # games that count choices as either
                            cooperation[seat].append(events.get("cooperated", 0.0) / max(stats["length"], 1))
            infos = [dict(reset_infos[i]) if dones[i] else dict(step_infos[i]) for i in range(n)]
        partial = [seat for seat, learner in zip(seats, learners) if learner.collected]
        if partial:
            raise ValueError(
                f"{steps} steps of {n} rows end mid-rollout for {', '.join(partial)}: "
                "curriculum.chunk_steps must be a multiple of curriculum.n_envs x agent.n_steps"
            )
        for seat in seats:
            if returns[seat]:
                metrics[f"train/{seat}/episode_return"] = float(np.mean(returns[seat]))
            if cooperation[seat]:
                metrics[f"train/{seat}/cooperation"] = float(np.mean(cooperation[seat]))
        return metrics

    def save(self, path: Path) -> None:
        """Each member's full state in ``path/<seat>``."""
        for seat, agent in self.members.items():
            agent.save(Path(path) / seat)

    def load(self, path: Path) -> None:
        """Restore what :meth:`save` wrote."""
        for seat, agent in self.members.items():
            agent.load(Path(path) / seat)


# ----------------------------------------------------------------------------------------------- evaluation


def evaluate_population(
    agent: Agent, factory: StageEnvFactory, seeds: Sequence[int], metric: str, batch: int = 8, max_steps: int = 10_000
) -> EvalResult:
    """Play one held-out game per seed with ``agent`` in every focal seat, acting deterministically (a
    :class:`Team`: each member in its own seat).

    Every focal seat of every game is one entry of the result (its return, success and episode statistics, whose
    ``social`` holds the whole table's metrics).
    """
    from upbringing.curriculum.stage_envs import EvalResult
    from upbringing.envs.social.vec import SeatView, Table

    result = EvalResult([], [], [], [], [])
    seeds = list(seeds)
    for start in range(0, len(seeds), batch):
        tables = [Table(make_table(factory, "eval")) for _ in seeds[start : start + batch]]
        rows = [
            (t, seat, factory.wrap(SeatView(table, seat))) for t, table in enumerate(tables) for seat in table.seats
        ]
        obs, infos = [], []
        for t, _, env in rows:
            o, info = env.reset(seed=seeds[start + t])  # the table's first seat starts the game with this seed
            obs.append(o)
            infos.append(info)
        active = list(range(len(rows)))
        steps = 0
        while active:
            groups: dict[int, tuple[Agent, list[int]]] = {}  # who acts for which rows: one call per agent
            for i in active:
                holder = agent.members[rows[i][1]] if isinstance(agent, Team) else agent
                groups.setdefault(id(holder), (holder, []))[1].append(i)
            chosen: dict[int, int] = {}
            for holder, idx in groups.values():
                actions = holder.act(np.stack([obs[i] for i in idx]), [infos[i] for i in idx], deterministic=True)
                chosen.update(zip(idx, (int(a) for a in actions)))
            for t, table in enumerate(tables):
                joint = {seat: chosen[i] for i, (tt, seat, _) in enumerate(rows) if tt == t and i in chosen}
                if joint:
                    table.play(joint)
            still = []
            for i in active:
                o, _, term, trunc, info = rows[i][2].step(chosen[i])
                obs[i], infos[i] = o, info
                if term or trunc:
                    result.add(info["episode_stats"], metric)
                else:
                    still.append(i)
            active = still
            steps += 1
            if steps > max_steps:
                raise RuntimeError(f"{factory.stage.env}: an evaluation episode ran past {max_steps} steps")
        for table in tables:
            table.close()
    return result


def _cell(member: str, opponent: str, focal: int, result: EvalResult) -> dict[str, Any]:
    """One cell of the cross-play matrix: the focal seats' mean return and cooperation, the table's social metrics."""
    stats = result.stats
    social = sorted({k for s in stats for k, v in s["social"].items() if isinstance(v, int | float)})
    return {
        "member": member,
        "opponent": opponent,
        "episodes": len(stats) // focal,
        "focal_seats": focal,
        "score": float(np.mean(result.returns)),
        # the focal seats' cooperation per step (the games count a cooperative choice, or a contribution's share, as
        # the `cooperated` event of that step)
        "focal_cooperation": float(np.mean([s["events"].get("cooperated", 0.0) / max(s["length"], 1) for s in stats])),
        "social": {k: float(np.mean([s["social"][k] for s in stats if k in s["social"]])) for k in social},
    }


def crossplay(
    factory: StageEnvFactory,
    members: dict[str, Agent],
    seeds: Sequence[int],
    metric: str = "return",
    team: Team | None = None,
) -> dict[str, Any]:
    """The cross-play matrix of one multi-agent stage.

    Rows are the trained ``members`` (the learners, their snapshots); columns are the stage's own scenario
    (``scenario``: the member in every focal seat against the configured population, or self-play when every seat
    is focal), each independent learner of ``team`` alone in every other seat (named as in ``members``; the pairs of
    learners that never met in training show how much their conventions depend on each other), and each background
    player alone (the configured members and ``crossplay_opponents``; players that cannot play the game are
    skipped). Against a single player the focal seats are the configured ones, or seat 0 when every seat is focal.

    Returns:
        ``{"members", "opponents", "score": [[...]], "cells": [...], "exploitability": {...}}``, and with ``team``
        ``"team"``: the cell of the learners together, each in its own seat, in the stage's scenario.
    """
    from upbringing import envs

    population = factory.stage.population or PopulationConfig()
    game = envs.make(factory.stage.env, **factory.level_kwargs)
    n, kind = game.n_players, game.game_kind
    game.close()
    focal = focal_seats(population, n)
    columns: list[tuple[str, StageEnvFactory, int]] = [("scenario", factory, len(focal))]
    n_alone = len(focal) if len(focal) < n else 1
    numeric = (*factory.numeric, *factory.task) if factory.numeric is not None else None
    for agent in team.members.values() if team is not None else ():
        label = next(name for name, a in members.items() if a is agent)
        columns.append((label, against(factory, SnapshotPlayer(agent, label, numeric), n), n_alone))
    seen: set[str] = set()
    for spec in [m.player for m in population.background] + list(population.crossplay_opponents):
        label = BackgroundMember(player=spec).label
        if label in seen:
            continue
        try:
            make_player(spec).check(kind, n)
        except (ValueError, ImportError):  # a player for another game, or an axelrod: name without the extra
            continue
        seen.add(label)
        columns.append((label, against(factory, spec, n), n_alone))
    cells = []
    for name, agent in members.items():
        for label, f, n_focal in columns:
            cells.append(_cell(name, label, n_focal, evaluate_population(agent, f, seeds, metric)))
    names = list(members)
    labels = [c[0] for c in columns]
    score = [
        [next(c["score"] for c in cells if c["member"] == m and c["opponent"] == o) for o in labels] for m in names
    ]
    out = {
        "members": names,
        "opponents": labels,
        "score": score,
        "cells": cells,
        "exploitability": exploitability(cells, names[0] if names else ""),
    }
    if team is not None:
        out["team"] = _cell("team", "scenario", len(focal), evaluate_population(team, factory, seeds, metric))
    return out


def exploitability(cells: Sequence[dict[str, Any]], member: str) -> dict[str, float | None]:
    """``member``'s mean return against ``always_defect`` and its cooperation rate with ``tit_for_tat`` (None where
    that pairing was not played)."""

    def find(opponent: str) -> dict[str, Any] | None:
        return next((c for c in cells if c["member"] == member and c["opponent"] == opponent), None)

    defect, tft = find("always_defect"), find("tit_for_tat")
    return {
        "score_vs_always_defect": defect["score"] if defect else None,
        "cooperation_with_tit_for_tat": tft["focal_cooperation"] if tft else None,
    }


def crossplay_rows(stage: str, matrix: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The cross-play cells of one stage (and the team's, with independent learners) as table columns and rows (the
    W&B table and its charts)."""
    cells = matrix["cells"] + ([matrix["team"]] if "team" in matrix else [])
    social = sorted({k for c in cells for k in c["social"]})
    columns = ["stage", "member", "opponent", "episodes", "score", "focal_cooperation", *social]
    rows = [
        [stage, c["member"], c["opponent"], c["episodes"], c["score"], c["focal_cooperation"]]
        + [c["social"].get(k) for k in social]
        for c in cells
    ]
    return columns, rows


__all__ = [
    "CROSSPLAY_FILE",
    "SNAPSHOTS",
    "BackgroundMember",
    "PopulationConfig",
    "Snapshot",
    "SnapshotPlayer",
    "Snapshots",
    "Team",
    "against",
    "check_stage",
    "crossplay",
    "crossplay_rows",
    "evaluate_population",
    "exploitability",
    "focal_seats",
    "global_rngs_kept",
    "learner_seats",
    "learner_seed",
    "make_population_vec_env",
    "make_table",
    "recent_snapshots",
    "scenario",
]
