"""Experience kept from earlier stages for behavioural cloning (CLEAR, Rolnick et al. 2019).

A :class:`ReplayBuffer` holds, per stage, decisions the policy made once it had mastered that stage: the text query,
the whole action distribution it chose from and its value estimate. Later updates mix a share of these decisions
into every minibatch and pull the current policy's distribution and value back towards the stored ones
(:class:`CloningSettings`). The buffer is bounded (``capacity`` decisions per stage), and it is plain JSON, so a
checkpoint restores it exactly.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from upbringing.agents.checkpoint import write_json_atomic

REPLAY_FORMAT = 1


@dataclass(frozen=True)
class ReplaySample:
    """One stored decision.

    Attributes:
        prompt: The prompt the actions were scored after.
        actions: Every action's text.
        mask: Which actions were valid.
        probs: The behaviour policy's probability of each action (0 for invalid ones).
        value: The behaviour policy's value estimate of the state.
    """

    prompt: str
    actions: tuple[str, ...]
    mask: tuple[bool, ...]
    probs: tuple[float, ...]
    value: float

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> ReplaySample:
        return cls(
            str(row["prompt"]),
            tuple(row["actions"]),
            tuple(bool(m) for m in row["mask"]),
            tuple(float(p) for p in row["probs"]),
            float(row["value"]),
        )


@dataclass(frozen=True)
class CloningSettings:
    """How replayed decisions enter each update.

    Attributes:
        replay_share: Share of every minibatch made of replayed decisions (the rest is the current rollout).
        bc_coef: Weight of the policy-cloning loss, KL(stored || current) over the valid actions.
        value_coef: Weight of the value-cloning loss, relative to ``bc_coef``: 0.5 (v - v_stored)^2.
    """

    replay_share: float = 0.25
    bc_coef: float = 1.0
    value_coef: float = 0.5

    def replay_count(self, minibatch: int) -> int:
        """Replayed decisions to add to a minibatch of ``minibatch`` fresh ones so they make ``replay_share``."""
        if self.replay_share <= 0:
            return 0
        return max(1, math.ceil(minibatch * self.replay_share / (1.0 - self.replay_share)))


class ReplayBuffer:
    """Stored decisions of each mastered stage, at most ``capacity`` per stage.

    Args:
        capacity: Most decisions kept per stage; storing a stage again (it was re-mastered) replaces its decisions.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.stages: dict[str, list[ReplaySample]] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self.stages.values())

    def store(self, stage: str, samples: list[ReplaySample]) -> None:
        """Keep ``samples`` (the first ``capacity``) as ``stage``'s decisions, replacing any stored before."""
        self.stages[stage] = list(samples[: self.capacity])

    def sample(self, n: int, rng: np.random.Generator) -> list[ReplaySample]:
        """``n`` decisions drawn uniformly with replacement over every stored stage, stage by stage equally (so a
        stage's share does not shrink as more stages are stored), from ``rng``."""
        names = sorted(k for k, v in self.stages.items() if v)
        if not names or n <= 0:
            return []
        picks = rng.integers(len(names), size=n)
        out = []
        for k in picks:
            rows = self.stages[names[int(k)]]
            out.append(rows[int(rng.integers(len(rows)))])
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": REPLAY_FORMAT,
            "capacity": self.capacity,
            "stages": {k: [asdict(s) for s in v] for k, v in self.stages.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != REPLAY_FORMAT:
            raise ValueError(f"replay buffer format {state.get('format')!r}, expected {REPLAY_FORMAT}")
        self.stages = {k: [ReplaySample.from_json(r) for r in v] for k, v in state["stages"].items()}

    def save(self, path: Path) -> None:
        """Write the buffer to ``path`` as JSON (floats written in full, so reloading is exact)."""
        write_json_atomic(Path(path), self.state_dict())

    def load(self, path: Path) -> None:
        self.load_state_dict(json.loads(Path(path).read_text()))
