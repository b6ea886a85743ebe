"""Held-out episodes played to their end, many at a time: the one evaluation loop behind
:func:`upbringing.curriculum.stage_envs.evaluate` (one env per episode) and
:func:`upbringing.curriculum.seating.evaluate_population` (every focal seat of a game is one row).

Rows are stepped in lockstep so a batched policy (an LM) scores every row it holds in one forward pass; each distinct
actor is asked once per step for all of its rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from upbringing.agents.base import Agent
from upbringing.curriculum.factory import EvalResult


@dataclass(frozen=True)
class Row:
    """One episode being played: a stage env stack (a single-agent env, or one seat's view of a game), the seed it
    starts from, and who acts in it."""

    env: gym.Env
    seed: int
    actor: Agent


def play_rows(
    rows: Sequence[Row],
    result: EvalResult,
    metric: str,
    name: str,
    *,
    transcripts: int = 0,
    before_step: Callable[[dict[int, int]], None] | None = None,
    max_steps: int = 10_000,
) -> None:
    """Play every row's episode to its end, acting deterministically, and add each to ``result`` as it finishes.

    Args:
        rows: The episodes; each env is reset with its row's seed.
        result: Where finished episodes go (:meth:`EvalResult.add`), in the order they finish.
        metric: ``success`` or ``return`` (the stage's score).
        name: The env's id, for the error of an episode that never ends.
        transcripts: The first ``transcripts`` rows also record (situation, action, reward) per step.
        before_step: Called with every row's chosen action (row index -> action) before the rows step: multi-agent
            tables play the joint action there.
        max_steps: Steps after which an unfinished episode is an error.
    """
    obs: list[Any] = []
    infos: list[dict[str, Any]] = []
    for row in rows:
        o, info = row.env.reset(seed=row.seed)
        obs.append(o)
        infos.append(info)
    logs: list[list[dict[str, Any]]] = [[] for _ in range(min(transcripts, len(rows)))]
    active = list(range(len(rows)))
    steps = 0
    while active:
        groups: dict[int, tuple[Agent, list[int]]] = {}  # one call per actor, for all of its rows
        for i in active:
            groups.setdefault(id(rows[i].actor), (rows[i].actor, []))[1].append(i)
        chosen: dict[int, int] = {}
        for actor, idx in groups.values():
            actions = actor.act(np.stack([obs[i] for i in idx]), [infos[i] for i in idx], deterministic=True)
            chosen.update(zip(idx, (int(a) for a in actions)))
        if before_step is not None:
            before_step(chosen)
        still = []
        for i in active:
            a = chosen[i]
            o, r, term, trunc, info = rows[i].env.step(a)
            if i < len(logs):
                texts = infos[i].get("action_texts", [])
                action = texts[a] if a < len(texts) else str(a)
                logs[i].append({"text": infos[i].get("text", ""), "action": action, "reward": float(r)})
            obs[i], infos[i] = o, info
            if term or trunc:
                result.add(info["episode_stats"], metric)
            else:
                still.append(i)
        active = still
        steps += 1
        if steps > max_steps:
            raise RuntimeError(f"{name}: an evaluation episode ran past {max_steps} steps")
    result.transcripts.extend(logs)
