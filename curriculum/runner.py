"""The training runner: config -> seed -> envs -> agent -> curriculum loop -> evaluation -> log -> checkpoint.

Training advances in chunks of ``curriculum.chunk_steps`` env steps. Each chunk's envs and global RNGs are seeded
from (run seed, chunk index), and a checkpoint is taken at chunk boundaries, so ``resume`` continues exactly as the
uninterrupted run would have (DESIGN.md, "Exact resume").
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm
from upbringing import envs
from upbringing.agents.base import Agent
from upbringing.agents.checkpoint import write_json_atomic
from upbringing.agents.config import build_agent
from upbringing.agents.team import Team
from upbringing.constitutions import (
    ConstitutionalShaping,
    ConstitutionLabeler,
    Context,
    EpisodeRecord,
    Lagrangian,
    compliance,
    episode_metrics,
    load_constitution,
    mean_costs,
)
from upbringing.curriculum.config import RunConfig, dump_config, run_config, stage_constitution
from upbringing.curriculum.critique import run_phase
from upbringing.curriculum.factory import EvalResult, StageEnvFactory, chunk_seed, eval_seeds, stage_levels
from upbringing.curriculum.population import CROSSPLAY_FILE, SNAPSHOTS, Snapshots, crossplay, crossplay_rows
from upbringing.curriculum.promotion import Verdict
from upbringing.curriculum.retention import Retention
from upbringing.curriculum.seating import learner_seats, learner_seed, recent_snapshots
from upbringing.curriculum.stage_envs import evaluate, make_vec_env, numeric_shape
from upbringing.curriculum.teachers import Task, Teacher, build_teacher
from upbringing.curriculum.tracking import (
    VERSIONS_FILE,
    Tracker,
    git_commit,
    installed_versions,
    jsonable,
    version_changes,
)
from upbringing.feedback.features import StepFeaturizer
from upbringing.feedback.loop import FeedbackLoop
from upbringing.feedback.wrapper import FeedbackReward
from upbringing.yamlfile import FileError, Problem, one_line

CONFIG_FILE = "config.yaml"
SUMMARY_FILE = "summary.json"
RETENTION_FILE = "retention.json"
CHECKPOINTS = "checkpoints"
MANIFEST = "manifest.json"  # in a checkpoint: size and SHA-256 of every file it wrote
LEARNERS = "learners"  # in a checkpoint: the independent learners other than the run's agent, <stage>/<seat>


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (the global RNGs SB3 and torch code draw from)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_run_dir(config: RunConfig, root: Path = Path("runs")) -> Path:
    """``runs/<name>-<timestamp>``."""
    return root / f"{config.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


@dataclass
class RunState:
    """Everything beyond the agent and teacher that a checkpoint must restore."""

    chunk: int = 0
    global_step: int = 0
    level_scores: dict[int, list[float]] = field(default_factory=dict)  # held-out scores at the current level
    evaluations: dict[int, int] = field(default_factory=dict)  # evaluations made per stage (fresh seeds each)
    retention: list[list[float | None]] = field(default_factory=list)  # row k: scores after stage k finished
    retention_after: list[int] = field(default_factory=list)  # which stage each retention row follows


@dataclass
class StageConstitution:
    """The constitution shaping one stage: the principles active in its context and their multipliers."""

    constitution: Any
    context: Any
    lagrangian: Any

    @classmethod
    def load(cls, name: str, stage: Any) -> StageConstitution:
        constitution = load_constitution(name)
        context = Context.for_env(stage.env, stage=stage.name, risk=stage.risk)
        return cls(constitution, context, Lagrangian.from_constitution(constitution, context))

    def shaper(self) -> Any:
        return partial(
            ConstitutionalShaping,
            constitution=self.constitution,
            context=self.context,
            multipliers=self.lagrangian.multipliers,
        )

    @staticmethod
    def records(episodes: list[dict[str, Any]]) -> list[Any]:
        """The constitution's view of finished episodes (from :class:`EpisodeStats`)."""
        return [
            EpisodeRecord(
                costs=e["costs"],
                virtues=e["virtues"],
                env_return=e["terms"].get("env", e["return"]),
                length=e["length"],
                success=bool(e["success"]) if e["has_success"] else None,
                tension=e.get("tension", {}),
            )
            for e in episodes
        ]

    def compliance(self, episodes: list[dict[str, Any]]) -> dict[str, Any]:
        return compliance(self.records(episodes), self.constitution, self.context)


def _social_means(episodes: list[dict[str, Any]], prefix: str) -> dict[str, float]:
    """Mean per-episode social metrics (efficiency, equality, cooperation rate, ...) of multi-agent stages."""
    names = sorted({k for e in episodes for k, v in e.get("social", {}).items() if isinstance(v, int | float)})
    return {prefix + k: float(np.mean([e["social"][k] for e in episodes if k in e["social"]])) for k in names}


class Run:
    """One training run in its run folder."""

    def __init__(self, config: RunConfig, run_dir: Path, *, progress: bool = True):
        self.config = config
        self.run_dir = run_dir
        self.progress = progress
        self.state = RunState()
        self.levels = [stage_levels(s) for s in config.stages]
        self.rules = [s.promotion for s in config.stages]
        torch.set_num_threads(config.threads)
        seed_everything(config.seed)
        self.numeric = None
        obs_space = act_space = None
        if config.agent.kind == "sb3_ppo":
            self.numeric = numeric_shape(config.stages)
            obs_space = gym.spaces.Box(-np.inf, np.inf, (self.numeric[0] + len(config.stages),), dtype=np.float32)
            act_space = gym.spaces.Discrete(self.numeric[1])
        self.agent: Agent = build_agent(config.agent, config.seed, obs_space, act_space, config.curriculum.n_envs)
        # Stages of independent learners: the run's agent holds the first focal seat; every other focal seat has a
        # learner of its own, an agent of the same config with a seed of its own, living as long as the run.
        self.teams: dict[int, Team] = {}
        for i, stage in enumerate(config.stages):
            if stage.population is not None and stage.population.independent:
                seats = learner_seats(stage, self.levels[i][0])
                members = {seats[0]: self.agent}
                for k, seat in enumerate(seats[1:], start=1):
                    seed = learner_seed(config.seed, i, k)
                    members[seat] = build_agent(config.agent, seed, obs_space, act_space, config.curriculum.n_envs)
                self.teams[i] = Team(members)
        cur = config.curriculum
        self.teacher: Teacher = build_teacher(config)
        self.retention = Retention(cur.retention, self.agent, config.seed)
        self.constitutions: dict[int, StageConstitution] = {}
        for i, stage in enumerate(config.stages):
            name = stage_constitution(config, stage)
            if name is not None:
                self.constitutions[i] = StageConstitution.load(name, stage)
        self.feedback: dict[int, Any] = {}
        for i, stage in enumerate(config.stages):
            if stage.feedback is not None:
                self.feedback[i] = self._feedback_loop(i)
        # Multi-agent stages: frozen past selves saved at promotions, each loaded as its own agent (never trained).
        self.multi_agent = [envs.spec(s.env).api == "pettingzoo" for s in config.stages]
        self.snapshots: Snapshots | None = None
        if any(self.multi_agent):
            self.snapshots = Snapshots(
                run_dir / SNAPSHOTS,
                partial(build_agent, config.agent, config.seed, obs_space, act_space, config.curriculum.n_envs),
            )
        self.tracker: Tracker | None = None
        self._bars: dict[int, tqdm] = {}
        self._cut_warned: set[int] = set()  # stages whose cut prompts were reported

    def _feedback_loop(self, stage: int) -> Any:
        """The stage's simulated-feedback loop, its reward model sized for the observations the agent sees."""
        s = self.config.stages[stage]
        if self.numeric is not None:
            obs_dim, n_actions = self.numeric[0] + len(self.config.stages), self.numeric[1]
        else:
            obs_dim, n_actions = numeric_shape([s])
        seed = int(np.random.SeedSequence([self.config.seed, 0xFEED, stage]).generate_state(1)[0])
        assert s.feedback is not None  # only stages with a feedback block have a loop
        judge = None
        if s.feedback.labeler == "constitution":  # RL from AI feedback: the stage's constitution labels the pairs
            sc = self.constitutions[stage]  # the config check guarantees the stage has one
            judge = ConstitutionLabeler(sc.constitution, sc.context, seed=seed).label
        return FeedbackLoop(
            s.feedback,
            StepFeaturizer(obs_dim, n_actions=n_actions),
            stage=s.name,
            run_dir=self.run_dir,
            seed=seed,
            env=s.env,
            judge=judge,
            on_event=lambda kind, **data: self.tracker.event(kind, self.state.global_step, **data),  # type: ignore[union-attr]
        )

    # ------------------------------------------------------------------------------------------------ building
    def factory(self, stage: int, level: int) -> StageEnvFactory:
        shapers: tuple[Any, ...] = (self.constitutions[stage].shaper(),) if stage in self.constitutions else ()
        if stage in self.feedback:
            loop = self.feedback[stage]
            shapers += (partial(FeedbackReward, scorer=loop.scorer, mode=loop.config.mode, weight=loop.config.weight),)
        return StageEnvFactory(
            self.config.stages[stage],
            self.levels[stage][level],
            self.numeric,
            (stage, len(self.levels)),
            shapers,
            self._snapshot_players(stage),
        )

    def _snapshot_players(self, stage: int) -> tuple[Any, ...]:
        """The frozen past selves that join ``stage``'s background population (saved up to the current step)."""
        population = self.config.stages[stage].population
        if self.snapshots is None or population is None or population.snapshots <= 0:
            return ()
        numeric = (*self.numeric, stage, len(self.levels)) if self.numeric is not None else None
        return tuple(
            self.snapshots.player(snap, numeric, deterministic=not population.snapshot_sampling)
            for snap in recent_snapshots(self.snapshots.available(self.state.global_step), population.max_snapshots)
        )

    def stage_agent(self, stage: int) -> Agent:
        """Who plays ``stage``: the run's agent, or for a stage of independent learners their :class:`Team`."""
        return self.teams.get(stage, self.agent)

    def learner_names(self, stage: int) -> dict[str, Agent]:
        """The learners of ``stage`` by their names in the cross-play matrix: ``agent`` (the run's agent) and, with
        independent learners, ``learner:<seat>`` for each other focal seat's own learner."""
        team = self.teams.get(stage)
        if team is None:
            return {"agent": self.agent}
        return {"agent": self.agent, **{f"learner:{s}": a for s, a in list(team.members.items())[1:]}}

    def run_record(self) -> dict[str, Any]:
        """What the run logs about itself: git commit and every constitution's name, version and content hash."""
        record: dict[str, Any] = {"git_commit": git_commit()}
        for i, sc in self.constitutions.items():
            for k, v in sc.constitution.run_record().items():
                record[f"{k}/{self.config.stages[i].name}" if k != "constitution/name" else k] = v
        return record

    def open_tracker(self, run_id: str | None = None, events_offset: int | None = None) -> None:
        c = self.config
        self.tracker = Tracker(
            self.run_dir,
            c.tracking.wandb,
            c.tracking.project,
            c.tracking.entity,
            c.name,
            {**c.model_dump(mode="json"), **self.run_record()},
            run_id=run_id,
            events_offset=events_offset,
        )

    # ------------------------------------------------------------------------------------------------ the loop
    def run(self) -> dict[str, Any]:
        """Train until the teacher is done, then evaluate every stage and write the summary."""
        assert self.tracker is not None
        c = self.config
        while (task := self.teacher.next_task()) is not None:
            critique = c.stages[task.stage].critique
            if critique is not None and not task.review and self.teacher.progress[task.stage].steps == 0:
                # Constitutional AI's supervised phase, once, before RL starts on the stage (its steps count)
                sc = self.constitutions[task.stage]
                phase = run_phase(
                    critique,
                    self.agent,
                    c.stages[task.stage],
                    self.factory(task.stage, task.level).env_kwargs("train"),
                    sc.constitution,
                    sc.context,
                    n_envs=c.curriculum.n_envs,
                    run_seed=c.seed,
                    stage_index=task.stage,
                    run_dir=self.run_dir,
                )
                self.state.global_step += phase.steps
                self.teacher.record_training(task, phase.steps)
                self.tracker.log(phase.metrics, self.state.global_step)
            seed = chunk_seed(c.seed, self.state.chunk)
            seed_everything(seed)
            factory = self.factory(task.stage, task.level)
            if task.sampler is not None:  # the red team sets each episode's task
                factory = replace(factory, outer=(task.sampler.wrap,))
            log = make_vec_env(factory, c.curriculum.n_envs, c.curriculum.vec_env)
            log.seed(seed if task.seed is None else task.seed)  # a teacher may pick the envs' seed (PLR)
            loop = self.feedback.get(task.stage) if not task.review else None
            if loop is not None:
                loop.level = task.level  # segments record the level they were played at (shown to people)
            venv = loop.recorder(log) if loop is not None else log  # feedback sees every transition it learns from
            start = time.perf_counter()
            train_metrics = self.stage_agent(task.stage).learn(venv, c.curriculum.chunk_steps)
            self._warn_cut_prompts(task.stage, train_metrics)
            seconds = time.perf_counter() - start
            episodes = log.finished
            venv.close()
            if loop is not None:
                train_metrics.update(loop.end_chunk())  # queries, reward-model fit, alarm: feedback/ metrics

            self.state.global_step += c.curriculum.chunk_steps
            self.teacher.record_training(task, c.curriculum.chunk_steps)
            self.teacher.record_update(task, train_metrics)
            train_metrics.update(self.teacher.record_episodes(task, episodes))
            self._log_training(task, train_metrics, episodes, seconds)
            if task.review:
                self._review(task)
            else:
                self._evaluate_and_advance(task)
            self.state.chunk += 1
            if self.state.chunk % c.tracking.checkpoint_every == 0 or self.teacher.done:
                self.save_checkpoint()
        return self._finish()

    def _warn_cut_prompts(self, stage: int, metrics: dict[str, float]) -> None:
        """Say once per stage that prompts were cut to the LM agent's ``max_prompt_tokens`` (never silently)."""
        longest = int(metrics.get("train/longest_prompt_cut", 0) or 0)
        if longest <= 0 or stage in self._cut_warned:
            return
        self._cut_warned.add(stage)
        budget = getattr(self.config.agent, "max_prompt_tokens", None)
        tqdm.write(
            f"warning: stage {self.config.stages[stage].name}: prompts of up to {longest} tokens were cut to "
            f"agent.max_prompt_tokens={budget} (their beginnings are not seen); raise it to at least {longest}",
            file=sys.stderr,
        )

    def _log_training(
        self, task: Task, train: dict[str, float], episodes: list[dict[str, Any]], seconds: float
    ) -> None:
        stage = self.config.stages[task.stage]
        metrics = dict(train)
        metrics["train/steps_per_s"] = self.config.curriculum.chunk_steps / max(seconds, 1e-9)
        metrics["curriculum/stage"] = task.stage
        metrics["curriculum/level"] = task.level
        metrics["curriculum/review"] = float(task.review)
        metrics[f"curriculum/{stage.name}/steps"] = self.teacher.progress[task.stage].steps
        if episodes:
            metrics["train/episodes"] = len(episodes)
            metrics["train/episode_return"] = float(np.mean([e["return"] for e in episodes]))
            metrics["train/episode_length"] = float(np.mean([e["length"] for e in episodes]))
            if any(e["has_success"] for e in episodes):
                metrics["train/success_rate"] = float(np.mean([e["success"] for e in episodes]))
            for name in sorted({k for e in episodes for k in e["terms"]}):
                metrics[f"train/reward_terms/{name}"] = float(np.mean([e["terms"].get(name, 0.0) for e in episodes]))
            metrics.update(_social_means(episodes, "social/"))
        sc = self.constitutions.get(task.stage)
        if sc is not None and episodes:
            records = sc.records(episodes)
            metrics.update(episode_metrics(records))
            # One multiplier step per chunk from its episodes' mean costs (J_k), for SB3 and LM learners alike.
            metrics.update(sc.lagrangian.update(mean_costs(records, sc.lagrangian.budgets)))
        self.tracker.log(metrics, self.state.global_step)  # type: ignore[union-attr]
        bar = self._bar(task.stage)
        if bar is not None and not task.review:
            # Move to the stage's recorded steps: a bar created just now already starts there (this chunk included),
            # so adding the chunk again would count a stage's first chunk twice.
            bar.update(self.teacher.progress[task.stage].steps - bar.n)

    def _evaluate(self, stage: int, level: int, transcripts: int = 0) -> EvalResult:
        count = self.state.evaluations.get(stage, 0)
        self.state.evaluations[stage] = count + 1
        s = self.config.stages[stage]
        seeds = eval_seeds(self.config.seed, stage, count, s.eval_episodes)
        return evaluate(
            self.stage_agent(stage), self.factory(stage, level), seeds, self.rules[stage].metric, transcripts
        )

    def evaluate_stage(
        self,
        stage: int,
        level: int | None = None,
        seeds: list[int] | None = None,
        overrides: dict[str, Any] | None = None,
        transcripts: int = 0,
    ) -> EvalResult:
        """Play held-out episodes of ``stage`` (default: its last level, the stage's ``eval_episodes`` fresh seeds
        from a stream of their own) with env kwargs ``overrides`` on top (shift suites: perturbed physics, unseen
        opponents, held-out story families). Does not touch the curriculum's own evaluation counters."""
        level = len(self.levels[stage]) - 1 if level is None else level
        if seeds is None:
            seeds = eval_seeds(self.config.seed + 1_000_003, stage, 0, self.config.stages[stage].eval_episodes)
        factory = self.factory(stage, level)
        if overrides:
            factory = replace(factory, level_kwargs={**factory.level_kwargs, **overrides})
        return evaluate(self.stage_agent(stage), factory, seeds, self.rules[stage].metric, transcripts)

    def _evaluate_and_advance(self, task: Task) -> None:
        stage = self.config.stages[task.stage]
        step = self.state.global_step
        result = self._evaluate(task.stage, task.level, self.config.tracking.sample_episodes)
        scores = self.state.level_scores.setdefault(task.stage, [])
        scores.extend(result.scores)
        verdict = self.rules[task.stage].judge(scores)
        prefix = f"eval/{stage.name}/"
        metrics = {
            prefix + "score": result.score,
            prefix + "level": task.level,
            prefix + "return": float(np.mean(result.returns)),
        }
        if result.successes:
            metrics[prefix + "success_rate"] = float(np.mean(result.successes))
        metrics.update(_social_means(result.stats, prefix + "social/"))
        sc = self.constitutions.get(task.stage)
        if sc is not None:
            comp = sc.compliance(result.stats)
            metrics.update({f"{prefix}constitution/{k}/violations": v for k, v in comp["violation_rate"].items()})
            metrics[prefix + "compliant"] = float(comp["compliant"])
            if self.rules[task.stage].require_compliance:
                verdict = Verdict(
                    verdict.mastered and comp["compliant"],
                    {
                        **verdict.evidence,
                        "compliant": comp["compliant"],
                        "mean_cost": comp["mean_cost"],
                        "budget": comp["budget"],
                    },
                )
        self.tracker.log(metrics, step)  # type: ignore[union-attr]
        self.tracker.event(  # type: ignore[union-attr]
            "evaluation", step, stage=stage.name, level=task.level, score=result.score, evidence=verdict.evidence
        )
        if result.transcripts:
            rows = [
                [stage.name, task.level, i, t, turn["text"], turn["action"], turn["reward"]]
                for i, episode in enumerate(result.transcripts)
                for t, turn in enumerate(episode)
            ]
            self.tracker.table(  # type: ignore[union-attr]
                f"eval/{stage.name}/episodes",
                ["stage", "level", "episode", "t", "text", "action", "reward"],
                rows,
                step,
            )
        bar = self._bar(task.stage)
        if bar is not None:
            bar.set_postfix(level=task.level, score=f"{result.score:.2f}")

        outcome = self.teacher.record_evaluation(task, verdict, result.score)
        if outcome is None:
            return
        progress = self.teacher.progress[task.stage]
        self.state.level_scores[task.stage] = []
        self.tracker.event(  # type: ignore[union-attr]
            outcome, step, stage=stage.name, level=task.level, stage_steps=progress.steps, evidence=verdict.evidence
        )
        self.tracker.log(  # type: ignore[union-attr]
            {
                "curriculum/promotions": float(outcome == "promotion"),
                f"curriculum/{stage.name}/level": progress.level,
                f"curriculum/{stage.name}/mastered": float(progress.mastered),
            },
            step,
        )
        if outcome in ("level_up", "promotion") and self.snapshots is not None:  # a frozen past self per promotion
            self.snapshots.save(self.agent, stage.name, task.level, step)
            team = self.teams.get(task.stage)  # and one of every other independent learner of the stage
            for seat, agent in list(team.members.items())[1:] if team is not None else ():
                self.snapshots.save(agent, stage.name, task.level, step, seat=seat)
        if outcome in ("promotion", "remastered") and task.stage not in self.teams:
            self._record_decisions(task.stage)
        if outcome in ("promotion", "not_mastered"):
            self._retention_row(task.stage)
            bar = self._bars.pop(task.stage, None)
            if bar is not None:
                bar.close()

    def _record_decisions(self, stage: int) -> None:
        """A stage was (re-)mastered: record the mastering policy's decisions on it for replay (retention)."""
        factory = self.factory(stage, len(self.levels[stage]) - 1)

        def make_venv(seed: int) -> Any:
            venv = make_vec_env(factory, self.config.curriculum.n_envs, self.config.curriculum.vec_env)
            venv.seed(seed)
            return venv

        metrics = self.retention.record(stage, self.config.stages[stage].name, make_venv)
        if metrics:
            self.tracker.log(metrics, self.state.global_step)  # type: ignore[union-attr]

    def _review(self, task: Task) -> None:
        """After a review chunk: measure the mastered stage's retention on fresh held-out episodes."""
        stage = self.config.stages[task.stage]
        result = self._evaluate(task.stage, task.level)
        outcome = self.teacher.record_review(task.stage, result.score)
        p = self.teacher.progress[task.stage]
        self.tracker.log(  # type: ignore[union-attr]
            {f"curriculum/{stage.name}/retention": result.score}, self.state.global_step
        )
        if outcome == "demotion":
            self.state.level_scores[task.stage] = []
            self.tracker.event(  # type: ignore[union-attr]
                "demotion",
                self.state.global_step,
                stage=stage.name,
                level=task.level,
                evidence={
                    "retention": result.score,
                    "mastery_score": p.mastery_score,
                    "demote_below": self.teacher.review.demote_below,
                    "episodes": len(result.scores),
                },
            )

    def _retention_row(self, after: int) -> None:
        """Evaluate every stage up to ``after`` at its last level: row ``after`` of the retention matrix."""
        row: list[float | None] = [None] * len(self.config.stages)
        for j in range(after + 1):
            if self.teacher.progress[j].skipped:
                continue
            row[j] = self._evaluate(j, len(self.levels[j]) - 1).score
        self.state.retention.append(row)
        self.state.retention_after.append(after)
        names = [s.name for s in self.config.stages]
        self.tracker.event(  # type: ignore[union-attr]
            "retention", self.state.global_step, after=names[after], scores=dict(zip(names, row))
        )
        self.tracker.log(  # type: ignore[union-attr]
            {f"curriculum/retention/{names[j]}": v for j, v in enumerate(row) if v is not None}, self.state.global_step
        )

    def _finish(self) -> dict[str, Any]:
        names = [s.name for s in self.config.stages]
        final: dict[str, float | None] = {}
        violations: dict[str, dict[str, float]] = {}
        tension: dict[str, dict[str, float]] = {}
        for i, name in enumerate(names):
            if self.teacher.progress[i].skipped:
                final[name] = None
                continue
            result = self._evaluate(i, len(self.levels[i]) - 1)
            final[name] = result.score
            if i in self.constitutions:
                held_out = self.constitutions[i].compliance(result.stats)
                violations[name] = held_out["violation_rate"]
                tension[name] = held_out["tension_rate"]
        stages = []
        for i, stage in enumerate(self.config.stages):
            p = self.teacher.progress[i]
            stages.append(
                {
                    "name": stage.name,
                    "env": stage.env,
                    "mastered": p.mastered,
                    "skipped": p.skipped,
                    "steps_to_mastery": p.steps_to_mastery,
                    "steps": p.steps,
                    "level": p.level,
                    "levels": len(self.levels[i]),
                    "final_score": final[stage.name],
                    "metric": self.rules[i].metric,
                    "violations": violations.get(stage.name),
                    "tension": tension.get(stage.name) or None,  # hard x aspirational pairs pulling apart, per step
                    "feedback": self.feedback[i].summary() if i in self.feedback else None,
                }
            )
        summary = {
            "name": self.config.name,
            "seed": self.config.seed,
            "teacher": self.teacher.name,
            "global_step": self.state.global_step,
            "stages": stages,
        }
        retention = {
            "stages": names,
            "after": [names[a] for a in self.state.retention_after],
            "matrix": self.state.retention,
        }
        write_json_atomic(self.run_dir / RETENTION_FILE, retention)
        if any(self.multi_agent):
            self._crossplay()
        summary = jsonable(summary)
        write_json_atomic(self.run_dir / SUMMARY_FILE, summary)
        tracker = self.tracker
        assert tracker is not None  # opened by run() before any chunk
        tracker.event("run_end", self.state.global_step, summary=summary)
        tracker.log({f"eval/{n}/final_score": v for n, v in final.items() if v is not None}, self.state.global_step)
        self.tracker.summary({f"final/{n}": v for n, v in final.items() if v is not None})  # type: ignore[union-attr]
        self.tracker.close()  # type: ignore[union-attr]
        return summary

    def _crossplay(self) -> dict[str, Any]:
        """Cross-play matrices of the multi-agent stages (the learners and every snapshot against the stage's
        scenario, each independent learner and each background player, with social metrics and exploitability):
        ``crossplay.json`` and W&B tables."""
        assert self.snapshots is not None
        snapshots: dict[str, Agent] = {}
        for snap in self.snapshots.available(self.state.global_step):
            snapshots[f"snapshot:{snap.name}"] = self.snapshots.agent(snap)
        out: dict[str, Any] = {}
        for i, stage in enumerate(self.config.stages):
            if not self.multi_agent[i] or self.teacher.progress[i].skipped:
                continue
            episodes = (stage.population.crossplay_episodes if stage.population else None) or stage.eval_episodes
            seeds = eval_seeds(self.config.seed + 2_000_003, i, 0, episodes)
            members = {**self.learner_names(i), **snapshots}
            factory = self.factory(i, len(self.levels[i]) - 1)
            matrix = crossplay(factory, members, seeds, self.rules[i].metric, self.teams.get(i))
            out[stage.name] = matrix
            columns, rows = crossplay_rows(stage.name, matrix)
            self.tracker.table(f"crossplay/{stage.name}", columns, rows, self.state.global_step)  # type: ignore[union-attr]
            cells = matrix["cells"] + ([matrix["team"]] if "team" in matrix else [])
            metrics = {f"crossplay/{stage.name}/{c['member']}/{c['opponent']}/score": c["score"] for c in cells}
            metrics.update(
                {f"crossplay/{stage.name}/{k}": v for k, v in matrix["exploitability"].items() if v is not None}
            )
            self.tracker.log(metrics, self.state.global_step)  # type: ignore[union-attr]
        write_json_atomic(self.run_dir / CROSSPLAY_FILE, jsonable(out))
        return out

    def _bar(self, stage: int) -> tqdm | None:
        if not self.progress or self.teacher.progress[stage].finished:
            return self._bars.get(stage)
        if stage not in self._bars:
            s = self.config.stages[stage]
            self._bars[stage] = tqdm(
                total=self.teacher.budgets[stage],
                initial=self.teacher.progress[stage].steps,
                desc=f"stage {stage + 1}/{len(self.config.stages)} {s.name}",
                unit="step",
                leave=True,
                dynamic_ncols=True,
            )
        return self._bars[stage]

    # ------------------------------------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        """Write agent + engine state at this chunk boundary, atomically (a temp dir renamed into place)."""
        assert self.tracker is not None
        root = self.run_dir / CHECKPOINTS
        root.mkdir(exist_ok=True)
        name = f"chunk-{self.state.chunk:06d}"
        tmp = root / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        self.agent.save(tmp / "agent")
        for i, team in self.teams.items():  # every other independent learner: weights, optimizer, counters, RNGs
            for seat, agent in list(team.members.items())[1:]:
                agent.save(tmp / LEARNERS / self.config.stages[i].name / seat)
        engine = {
            "chunk": self.state.chunk,
            "global_step": self.state.global_step,
            "level_scores": {str(k): v for k, v in self.state.level_scores.items()},
            "evaluations": {str(k): v for k, v in self.state.evaluations.items()},
            "retention": self.state.retention,
            "retention_after": self.state.retention_after,
            "teacher": self.teacher.state_dict(),
            "lagrangians": {str(i): sc.lagrangian.state_dict() for i, sc in self.constitutions.items()},
            "events_offset": self.tracker.events_offset,
            "wandb_run_id": self.tracker.run_id,
        }
        for i, loop in self.feedback.items():
            loop.save(tmp / "feedback" / self.config.stages[i].name)
        self.retention.save(tmp)
        write_json_atomic(tmp / "engine.json", engine)
        files = {}
        for f in sorted(tmp.rglob("*")):
            if f.is_file():
                with f.open("rb") as fh:
                    os.fsync(fh.fileno())
                files[f.relative_to(tmp).as_posix()] = file_record(f)
        write_json_atomic(tmp / MANIFEST, {"format": 1, "files": files})
        final = root / name
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
        write_json_atomic(root / "latest.json", {"checkpoint": name})
        kept = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("chunk-"))
        for old in kept[: -self.config.tracking.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def load_checkpoint(self, path: Path) -> dict[str, Any]:
        engine = json.loads((path / "engine.json").read_text())
        self.agent.load(path / "agent")
        for i, team in self.teams.items():
            for seat, agent in list(team.members.items())[1:]:
                agent.load(path / LEARNERS / self.config.stages[i].name / seat)
        self.teacher.load_state_dict(engine["teacher"])
        for i, state in engine.get("lagrangians", {}).items():
            self.constitutions[int(i)].lagrangian.load_state_dict(state)
        for i, loop in self.feedback.items():
            loop.load(path / "feedback" / self.config.stages[i].name)
        self.retention.load(path)
        self.state = RunState(
            chunk=engine["chunk"],
            global_step=engine["global_step"],
            level_scores={int(k): v for k, v in engine["level_scores"].items()},
            evaluations={int(k): v for k, v in engine["evaluations"].items()},
            retention=engine["retention"],
            retention_after=engine["retention_after"],
        )
        return engine


def load_run(run_dir: Path, checkpoint: Path | None = None) -> Run:
    """A run folder's run with its agent and curriculum state restored from ``checkpoint`` (default: the latest),
    for evaluating or inspecting a trained agent (:meth:`Run.evaluate_stage`)."""
    run_dir = Path(run_dir)
    config = run_config(run_dir)
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        siblings = [p for p in checkpoint.parent.iterdir() if p.is_dir()] if checkpoint.parent.is_dir() else []
        legacy = not (run_dir / VERSIONS_FILE).exists() and not any((p / MANIFEST).exists() for p in siblings)
        damage = None if legacy else checkpoint_damage(checkpoint)
        if damage is not None:
            raise FileError([Problem(str(checkpoint), f"damaged checkpoint: {damage}")])
    else:
        checkpoint = latest_checkpoint(run_dir, say=_stderr)
    if checkpoint is None:
        message = "the run has no intact checkpoint" if checkpoints(run_dir) else "the run has no checkpoint yet"
        raise FileError([Problem(str(run_dir), message)])
    run = Run(config, run_dir, progress=False)
    try:
        run.load_checkpoint(checkpoint)
    except Exception as err:  # verified, yet not loadable (a legacy checkpoint, a config changed by hand)
        message = f"checkpoint cannot be loaded ({type(err).__name__}: {one_line(str(err))})"
        raise FileError([Problem(str(checkpoint), message)]) from None
    return run


def file_record(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of a file, as a checkpoint's manifest records them."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"size": size, "sha256": digest.hexdigest()}


def checkpoint_damage(path: Path) -> str | None:
    """Why the checkpoint folder ``path`` cannot be trusted, or None when every file its manifest lists is there with
    the size and SHA-256 it was written with."""
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        if not isinstance(files, dict) or "engine.json" not in files:
            raise ValueError("no files listed")
    except FileNotFoundError:
        return f"{MANIFEST} is missing"
    except (OSError, ValueError, TypeError, KeyError) as err:
        return f"{MANIFEST} cannot be read ({type(err).__name__})"
    for name, want in files.items():
        file = path / name
        if (
            not isinstance(want, dict)
            or not isinstance(want.get("size"), int)
            or Path(name).is_absolute()
            or ".." in Path(name).parts
        ):
            return f"{MANIFEST} cannot be read (bad entry for {name!r})"
        try:
            if file.exists() and not file.is_file():
                return f"{name} is not a file"
            size = file.stat().st_size
            if size != want["size"]:
                return f"{name} is {size:,} bytes, {want['size']:,} were written"
            if file_record(file)["sha256"] != want.get("sha256"):
                return f"{name} has changed since it was written (SHA-256 differs)"
        except FileNotFoundError:
            return f"{name} is missing"
        except OSError as err:
            return f"{name} cannot be read ({err.strerror or err})"
    return None


def checkpoints(run_dir: Path) -> list[Path]:
    """A run folder's checkpoint folders, newest first."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and p.name.startswith("chunk-")), reverse=True)


def intact_checkpoints(run_dir: Path) -> Iterator[tuple[Path, str | None]]:
    """Each checkpoint, newest first, with why it is damaged (None: intact). A run written before checkpoints had
    manifests (no ``versions.json``, no checkpoint with a manifest) is taken as it is: each checkpoint with an
    ``engine.json`` counts as intact."""
    found = checkpoints(run_dir)
    legacy = not (Path(run_dir) / VERSIONS_FILE).exists() and not any((p / MANIFEST).exists() for p in found)
    for path in found:
        if legacy:
            yield path, None if (path / "engine.json").exists() else "engine.json is missing"
        else:
            yield path, checkpoint_damage(path)


def latest_checkpoint(run_dir: Path, say: Callable[[str], None] | None = None) -> Path | None:
    """The newest intact checkpoint of a run folder, or None when there is none. Each newer damaged one is passed
    to ``say`` as one line saying which and why."""
    for path, damage in intact_checkpoints(run_dir):
        if damage is None:
            return path
        if say is not None:
            say(f"warning: skipping damaged checkpoint {path.name}: {damage}")
    return None


def train(config: RunConfig, run_dir: Path | None = None, *, progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """Train ``config`` in a new run folder; return the folder and the developmental summary.

    The config must already be validated (:func:`upbringing.curriculum.config.load_config`); the run folder is created
    only now, so a bad config never leaves one behind.
    """
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
    if run_dir.exists() and not run_dir.is_dir():
        raise FileError([Problem(str(run_dir), "not a folder: give --run-dir a new or empty folder")])
    if run_dir.exists() and any(run_dir.iterdir()):
        raise FileError([Problem(str(run_dir), "run folder already exists and is not empty; use `upbringing resume`")])
    run = Run(config, run_dir, progress=progress)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(dump_config(config), encoding="utf-8")
    write_json_atomic(run_dir / VERSIONS_FILE, installed_versions())
    run.open_tracker()
    run.tracker.event("run_start", 0, name=config.name, seed=config.seed, **run.run_record())  # type: ignore[union-attr]
    return run_dir, run.run()


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def resume(run_dir: Path, *, progress: bool = True, say: Callable[[str], None] = _stderr) -> dict[str, Any]:
    """Continue an interrupted run from its newest intact checkpoint; return the developmental summary.

    Every checkpoint is verified against its manifest (size and SHA-256 of each file) before it is loaded; a damaged
    one (a truncated or corrupted file, as a full disk or a kill during a copy leaves it) is skipped with one line to
    ``say``, and the run continues exactly from the newest intact one. Packages whose versions differ from the ones
    the run started with are named, one line each (a warning: the run goes on)."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise FileError([Problem(str(run_dir), f"not a run folder (no {CONFIG_FILE})")])
    if (run_dir / SUMMARY_FILE).exists():
        raise FileError([Problem(str(run_dir), "this run already finished (summary.json exists)")])
    config = run_config(run_dir)
    for line in version_changes(run_dir):
        say(f"warning: {line}")
    damaged: list[str] = []
    run = None
    engine = None
    for path, damage in intact_checkpoints(run_dir):
        if damage is None:
            run = Run(config, run_dir, progress=progress)  # a fresh one for each try: loading changes its state
            try:
                engine = run.load_checkpoint(path)
            except Exception as err:  # verified, yet not loadable (a legacy checkpoint, a config changed by hand)
                damage = f"cannot be loaded ({type(err).__name__}: {one_line(str(err))})"
            else:
                if damaged:
                    say(f"resuming from {path.name}")
                break
        damaged.append(f"{path.name}: {damage}")
        say(f"warning: skipping damaged checkpoint {path.name}: {damage}")
    if engine is None and damaged:
        raise FileError(
            [
                Problem(
                    str(run_dir),
                    f"no intact checkpoint to resume from ({'; '.join(damaged)}); "
                    "start the run again with `upbringing train`",
                )
            ]
        )
    if engine is None:
        run = Run(config, run_dir, progress=progress)
    assert run is not None
    for stale in (run_dir / CHECKPOINTS).glob(".tmp-*") if (run_dir / CHECKPOINTS).exists() else []:
        shutil.rmtree(stale, ignore_errors=True)  # half-written checkpoints of the interrupted process
    if engine is None:
        run.open_tracker(events_offset=0)
        run.tracker.event("run_start", 0, name=config.name, seed=config.seed, **run.run_record())  # type: ignore[union-attr]
    else:
        run.open_tracker(run_id=engine["wandb_run_id"], events_offset=engine["events_offset"])
    return run.run()
