"""The critique-and-revision phase: Constitutional AI's supervised phase (Bai et al. 2022) for an acting LM agent.

Before RL starts on a stage whose config has a ``critique:`` block, the agent plays ``critique.steps`` env steps of
the stage. At every step:

1. **Proposal.** The agent samples an action from its own distribution over the candidates (its usual prompt).
2. **Judgement.** Each active principle of the configured tiers judges the proposal. Rule judges read the events
   the action would report, previewed without acting by stepping a deep copy of the env (``copy.deepcopy`` of
   ``env.unwrapped``, so the real env, its RNG included, is untouched); model judges read the situation and the
   action's text.
3. **Critique.** Every principle that finds a violation contributes one line written from its own text:
   ``Critique: "<action>" breaks the principle "<principle text>".``
4. **Revision.** The agent re-scores the candidates with the critiques in its prompt, the criticised actions ruled
   out, and takes the most likely one; a revision that violates again is criticised again, up to ``rounds``
   revisions (a decision whose last revision still violates, or whose every candidate was criticised, gives no pair).
   The revised action is the one played, so the phase's episodes follow the revised behaviour. Ruling out is what
   makes a revision differ from the proposal for an agent with no language prior (the offline ``tiny`` model cannot
   read a critique), so ``critique/changed_share`` is 1 by construction; ``critique/critique_alone_changed_share``
   measures what the critique alone did: how often re-scoring with it, nothing ruled out, picked another action.
5. **Fine-tuning.** The (situation, revised action) pairs, the situation prompted as RL will prompt it (without the
   critique), fine-tune the policy by cross-entropy on its action distribution (:meth:`LMAgent.imitate`). With
   ``anchor``, the pairs also join the replay buffer of CLEAR retention, so every PPO minibatch keeps cloning them
   (RL alone drifted back to the violations the phase had removed).

Everything the phase saw is written to ``critique/<stage>.jsonl`` in the run folder (one row per decision:
situation, proposal, critiques, revision, whether it changed the action) and summarised as ``critique/`` metrics;
the policy before and after the fine-tuning is kept in ``critique/<stage>/before`` and ``.../after`` (the benchmark
measures both). The phase draws from generators of its own, seeded by (run seed, stage): it is the same on every
rerun, and a resumed run that starts over from a checkpoint before the stage replays it identically (files are
rewritten whole, atomically), while one resumed after it never reruns it (the runner calls it only on the stage's
first training chunk).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from upbringing import envs
from upbringing.agents.lm.agent import LMAgent
from upbringing.agents.lm.prompt import EpisodeHistory, Query
from upbringing.agents.replay import ReplaySample
from upbringing.constitutions import Constitution, Context
from upbringing.curriculum.constitutional_ai import CritiqueConfig

PHASE_DIR = "critique"
"""Folder of the run that holds each stage's phase record (``<stage>.jsonl``) and policies (``<stage>/``)."""
_STREAM = 0xC217  # the phase's seeds: a stream of their own, apart from training's and evaluation's
REVISION_REQUEST = "Revision: choose an option that keeps these principles."


@dataclass(frozen=True)
class Critic:
    """The principles that critique proposals in one stage: the active ones of the configured tiers.

    Args:
        constitution: The stage's constitution.
        context: The stage's context (decides the active principles).
        tiers: Which tiers critique (``hard``, ``soft``).
    """

    constitution: Constitution
    context: Context
    tiers: tuple[str, ...] = ("hard", "soft")

    @property
    def principles(self) -> list[Any]:
        return [p for p in self.constitution.active(self.context) if p.tier in self.tiers]

    def violations(self, events: dict[str, float], situation: str, action: str) -> list[tuple[str, str, float]]:
        """``(principle id, principle text, cost)`` of each critiquing principle the action violates."""
        out = []
        for p in self.principles:
            cost = self.constitution.judges[p.id].cost(events, situation, action)
            if cost > 0:
                out.append((p.id, p.text, float(cost)))
        return out


def critique_line(action: str, principle_text: str) -> str:
    """A critique written from the principle's own text."""
    return f'Critique: "{action}" breaks the principle "{principle_text}"'


def preview(env: Any, action: int) -> dict[str, float]:
    """The events ``action`` would report now: a deep copy of the unwrapped env takes the step (nothing else does)."""
    twin = copy.deepcopy(env.unwrapped)
    _, _, _, _, info = twin.step(action)
    twin.close()
    return {k: float(v) for k, v in info.get("events", {}).items()}


@dataclass
class PhaseResult:
    """What one phase did: env steps played, ``critique/`` metrics, and its per-decision rows."""

    steps: int
    metrics: dict[str, float]
    rows: list[dict[str, Any]] = field(default_factory=list)


def _revision_info(info: dict[str, Any], critiques: Sequence[str], ruled_out: set[int]) -> dict[str, Any]:
    """The info the revision is prompted with: the critiques under the situation, criticised actions closed."""
    mask = [bool(m) and i not in ruled_out for i, m in enumerate(info["action_mask"])]
    text = "\n".join([info["text"], *critiques, REVISION_REQUEST])
    return {**info, "text": text, "action_mask": np.array(mask)}


def revise(
    policy: Any,
    env: Any,
    info: dict[str, Any],
    query: Query,
    action: int,
    history: Sequence[tuple[str, str]],
    critic: Critic,
    rounds: int,
) -> tuple[int, dict[str, Any]]:
    """Judge a proposal, and while it violates, critique it and have the policy revise it (up to ``rounds``
    revisions). Returns the final action and the decision's record."""
    texts = query.actions
    critiques: list[str] = []
    judged: list[dict[str, Any]] = []
    ruled_out: set[int] = set()
    free: int | None = None
    current = action
    found = critic.violations(preview(env, current), info["text"], texts[current])
    judged.append({"action": texts[current], "violations": [v[0] for v in found]})
    for _ in range(rounds):
        if not found:
            break
        ruled_out.add(current)
        critiques += [critique_line(texts[current], text) for _, text, _ in found]
        if all(not m or k in ruled_out for k, m in enumerate(query.mask)):
            break  # every candidate was criticised: nothing left to revise to
        if free is None:  # would the critique alone, nothing ruled out, move the agent?
            free = int(
                policy.evaluate([policy.prompts.query(_revision_info(info, critiques, set()), history)])
                .logits[0]
                .argmax()
            )
        revision = policy.prompts.query(_revision_info(info, critiques, ruled_out), history)
        current = int(policy.evaluate([revision]).logits[0].argmax())
        found = critic.violations(preview(env, current), info["text"], texts[current])
        judged.append({"action": texts[current], "violations": [v[0] for v in found]})
    return current, {
        "situation": info["text"],
        "proposal": texts[action],
        "critiques": critiques,
        "revision": texts[current],
        "changed": current != action,
        "critique_alone_changed": free is not None and free != action,
        "revision_violates": bool(found),
        "judged": judged,
    }


def play_and_revise(
    agent: LMAgent,
    make_env: Callable[[], Any],
    critic: Critic,
    config: CritiqueConfig,
    n_envs: int,
    seed: int,
) -> tuple[list[tuple[Query, int]], list[dict[str, Any]], int]:
    """Play ``config.steps`` env steps over ``n_envs`` envs, proposing, critiquing and revising every decision.

    Returns:
        The fine-tuning pairs (query as RL prompts it, target action), one row per decision, and the env steps.
    """
    policy = agent.policy
    generator = torch.Generator().manual_seed(seed)
    env_seeds = np.random.SeedSequence([seed, n_envs]).generate_state(n_envs)
    env_list = [make_env() for _ in range(n_envs)]
    infos = [env.reset(seed=int(s))[1] for env, s in zip(env_list, env_seeds)]
    episodes = list(range(n_envs))
    next_episode = n_envs
    history = EpisodeHistory(n_envs, agent.config.history_window)
    pairs: list[tuple[Query, int]] = []
    rows: list[dict[str, Any]] = []
    steps = 0
    with torch.no_grad():
        while steps < config.steps:
            queries = [policy.prompts.query(info, history.turns(i)) for i, info in enumerate(infos)]
            proposals = policy.evaluate(queries).sample(generator).tolist()
            for i, env in enumerate(env_list):
                if steps >= config.steps:
                    break
                info, query, action = infos[i], queries[i], int(proposals[i])
                current, row = revise(policy, env, info, query, action, history.turns(i), critic, config.rounds)
                if (row["critiques"] and not row["revision_violates"]) or (
                    not row["critiques"] and config.keep_unrevised
                ):
                    pairs.append((query, current))
                rows.append({"episode": episodes[i], **row})
                history.push(i, info["text"], query.actions[current])
                _, _, terminated, truncated, infos[i] = env.step(current)
                steps += 1
                if terminated or truncated:
                    history.reset(i)
                    _, infos[i] = env.reset()
                    episodes[i] = next_episode
                    next_episode += 1
    for env in env_list:
        env.close()
    return pairs, rows, steps


def phase_metrics(rows: list[dict[str, Any]], fit: dict[str, float], n_pairs: int) -> dict[str, float]:
    """``critique/`` metrics of a phase's decisions and its fine-tuning."""
    criticised = [r for r in rows if r["critiques"]]
    metrics = {
        "critique/proposals": float(len(rows)),
        "critique/critiqued_share": len(criticised) / len(rows) if rows else 0.0,
        "critique/critiques": float(sum(len(r["critiques"]) for r in rows)),
        "critique/revisions": float(len(criticised)),
        "critique/changed_share": float(np.mean([r["changed"] for r in criticised])) if criticised else 0.0,
        "critique/critique_alone_changed_share": (
            float(np.mean([r["critique_alone_changed"] for r in criticised])) if criticised else 0.0
        ),
        "critique/revision_violates_share": (
            float(np.mean([r["revision_violates"] for r in criticised])) if criticised else 0.0
        ),
        "critique/pairs": float(n_pairs),
    }
    by_principle: dict[str, int] = {}
    for r in rows:
        for ids in r["judged"][0]["violations"]:
            by_principle[ids] = by_principle.get(ids, 0) + 1
    metrics.update({f"critique/{pid}/critiques": float(n) for pid, n in sorted(by_principle.items())})
    metrics.update({f"critique/fit/{k}": v for k, v in fit.items()})
    return metrics


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write the phase's rows as JSONL, whole and atomically (a rerun rewrites the same file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def run_phase(
    config: CritiqueConfig,
    agent: Any,
    stage: Any,
    env_kwargs: dict[str, Any],
    constitution: Constitution,
    context: Context,
    *,
    n_envs: int,
    run_seed: int,
    stage_index: int,
    run_dir: Path,
) -> PhaseResult:
    """Run a stage's critique-and-revision phase and fine-tune ``agent`` on its revisions (see the module docstring).

    Args:
        config: The stage's ``critique:`` block.
        agent: The LM agent (it proposes, revises, and is fine-tuned).
        stage: The stage's config (its env id and name).
        env_kwargs: The env's kwargs at the level being trained (training split).
        constitution: The stage's constitution.
        context: The stage's context.
        n_envs: Envs played side by side.
        run_seed: The run's seed.
        stage_index: The stage's index (seeds the phase's own streams).
        run_dir: The run folder (the phase's record and policies go under ``critique/``).
    """
    if not isinstance(agent, LMAgent):
        raise TypeError(f"stage {stage.name!r}: the critique phase needs an LM agent, got {type(agent).__name__}")
    if envs.spec(stage.env).api != "gymnasium":
        raise ValueError(f"stage {stage.name!r}: the critique phase plays single-agent (gymnasium) envs only")
    seed = int(np.random.SeedSequence([run_seed, _STREAM, stage_index]).generate_state(1)[0])
    critic = Critic(constitution, context, tuple(config.tiers))
    pairs, rows, steps = play_and_revise(
        agent, lambda: envs.make(stage.env, **env_kwargs), critic, config, n_envs, seed
    )
    folder = run_dir / PHASE_DIR / stage.name
    agent.save(folder / "before")
    fit = agent.imitate(pairs, config.epochs, config.lr, config.minibatch_size, seed)
    agent.save(folder / "after")
    _write_rows(run_dir / PHASE_DIR / f"{stage.name}.jsonl", rows)
    metrics = phase_metrics(rows, fit, len(pairs))
    if config.anchor and agent.replay is not None and pairs:
        # CLEAR's replay (Rolnick et al. 2019) with the revisions as the stored decisions: RL keeps cloning them
        buffer, _ = agent.replay
        buffer.store(f"{PHASE_DIR}:{stage.name}", anchor_samples(agent, pairs))
        metrics["critique/anchored"] = float(len(buffer.stages[f"{PHASE_DIR}:{stage.name}"]))
    return PhaseResult(steps, metrics, rows)


def anchor_samples(agent: LMAgent, pairs: list[tuple[Query, int]]) -> list[ReplaySample]:
    """The revision pairs as replay decisions: the target action with probability 1, the value the fine-tuned policy
    gives the situation."""
    samples = []
    with torch.no_grad():
        for start in range(0, len(pairs), 32):
            batch = pairs[start : start + 32]
            values = agent.policy.evaluate([q for q, _ in batch]).values.float().cpu().numpy()
            for (q, target), v in zip(batch, values):
                probs = tuple(1.0 if k == target else 0.0 for k in range(len(q.actions)))
                samples.append(ReplaySample(q.prompt, q.actions, q.mask, probs, float(v)))
    return samples


def start_stage(run: Any, task: Any) -> None:
    """The runner's one call: on a stage's first training chunk (never a review), run the stage's critique phase if
    its config has one, count its env steps in the stage's budget and the run's steps, and log its metrics."""
    stage = run.config.stages[task.stage]
    if stage.critique is None or task.review or run.teacher.progress[task.stage].steps > 0:
        return
    sc = run.stages[task.stage].constitution  # the config check refuses a critique without a constitution
    phase = run_phase(
        stage.critique,
        run.agent,
        stage,
        run.factory(task.stage, task.level).env_kwargs("train"),
        sc.constitution,
        sc.context,
        n_envs=run.config.curriculum.n_envs,
        run_seed=run.config.seed,
        stage_index=task.stage,
        run_dir=run.run_dir,
    )
    run.state.global_step += phase.steps
    run.teacher.record_training(task, phase.steps)
    run.tracker.log(phase.metrics, run.state.global_step)
