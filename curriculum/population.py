"""Multi-agent stages: frozen past selves of the learner, and the cross-play evaluation.

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
time, as one :class:`~upbringing.agents.team.Team`. Seating itself (which seat is whose, one game with its
background filled, the learner's rows as a ``VecEnv``) is in :mod:`upbringing.curriculum.seating`.

At the end of a run :func:`crossplay` plays every trained member (the learners and their snapshots) against the
stage's own scenario, against each background player alone and, for independent learners, against each learner alone,
with the social metrics of every pairing, and :func:`exploitability` reads off the learner's score against
``always_defect`` and its cooperation with ``tit_for_tat``.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from upbringing import envs
from upbringing.agents.base import Agent
from upbringing.agents.team import Team
from upbringing.curriculum.config import BackgroundMember, PopulationConfig
from upbringing.curriculum.factory import EvalResult, StageEnvFactory
from upbringing.curriculum.seating import against, evaluate_population, focal_seats
from upbringing.envs.social.players import COMMONS, MATRIX, PUBLIC_GOODS, BackgroundPlayer, make_player
from upbringing.envs.social.vec import valid_action

SNAPSHOTS = "snapshots"
CROSSPLAY_FILE = "crossplay.json"


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
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


# ----------------------------------------------------------------------------------------------- cross-play


def _cell(member: str, opponent: str, focal: int, result: EvalResult) -> dict[str, Any]:
    """One cell of the cross-play matrix: the focal seats' mean return and cooperation, the table's social metrics."""
    stats = result.stats
    social = sorted({k for s in stats for k, v in s.social.items() if isinstance(v, int | float)})
    return {
        "member": member,
        "opponent": opponent,
        "episodes": len(stats) // focal,
        "focal_seats": focal,
        "score": float(np.mean(result.returns)),
        # the focal seats' cooperation per step (the games count a cooperative choice, or a contribution's share, as
        # the `cooperated` event of that step)
        "focal_cooperation": float(np.mean([s.events.get("cooperated", 0.0) / max(s.length, 1) for s in stats])),
        "social": {k: float(np.mean([s.social[k] for s in stats if k in s.social])) for k in social},
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
    "Snapshot",
    "SnapshotPlayer",
    "Snapshots",
    "crossplay",
    "crossplay_rows",
    "exploitability",
    "global_rngs_kept",
]
