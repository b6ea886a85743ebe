"""The training runner: config -> seed -> envs -> agent -> curriculum loop -> evaluation -> log -> checkpoint.

Training advances in chunks of ``curriculum.chunk_steps`` env steps. Each chunk's envs and global RNGs are seeded
from (run seed, chunk index), and a checkpoint is taken at chunk boundaries, so ``resume`` continues exactly as the
uninterrupted run would have (DESIGN.md, "Exact resume").
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from upbringing import envs
from upbringing.agents.base import Agent
from upbringing.agents.checkpoint import write_json_atomic
from upbringing.agents.config import build_agent
from upbringing.agents.team import Team
from upbringing.constitutions import (
    ConstitutionLabeler,
    episode_metrics,
    mean_costs,
)
from upbringing.curriculum.checkpoints import LEARNERS, write_checkpoint
from upbringing.curriculum.config import RunConfig, stage_constitution
from upbringing.curriculum.console import Console
from upbringing.curriculum.critique import start_stage
from upbringing.curriculum.episodes import social_means, training_metrics
from upbringing.curriculum.factory import (
    EvalResult,
    StageEnvFactory,
    chunk_seed,
    eval_seeds,
    seed_everything,
    stage_levels,
)
from upbringing.curriculum.population import SNAPSHOTS, Snapshots
from upbringing.curriculum.promotion import Verdict
from upbringing.curriculum.redteam import build_teacher
from upbringing.curriculum.retention import Retention
from upbringing.curriculum.seating import learner_seats, learner_seed, recent_snapshots
from upbringing.curriculum.stage_envs import evaluate, make_vec_env, numeric_shape
from upbringing.curriculum.stage_runtime import StageConstitution, StageRuntime
from upbringing.curriculum.teachers import Task, Teacher
from upbringing.curriculum.tracking import (
    Tracker,
    git_commit,
)
from upbringing.envs.episode import EpisodeStats
from upbringing.feedback.features import StepFeaturizer
from upbringing.feedback.loop import FeedbackLoop
from upbringing.feedback.wrapper import FeedbackReward

CONFIG_FILE = "config.yaml"
SUMMARY_FILE = "summary.json"
RETENTION_FILE = "retention.json"


@dataclass
class RunState:
    """Everything beyond the agent and teacher that a checkpoint must restore."""

    chunk: int = 0
    global_step: int = 0
    level_scores: dict[int, list[float]] = field(default_factory=dict)  # held-out scores at the current level
    evaluations: dict[int, int] = field(default_factory=dict)  # evaluations made per stage (fresh seeds each)
    retention: list[list[float | None]] = field(default_factory=list)  # row k: scores after stage k finished
    retention_after: list[int] = field(default_factory=list)  # which stage each retention row follows


class Run:
    """One training run in its run folder."""

    def __init__(self, config: RunConfig, run_dir: Path, *, progress: bool = True):
        self.config = config
        self.run_dir = run_dir
        self.state = RunState()
        # Per stage: its levels and, built below, its team, constitution and feedback loop.
        self.stages = [StageRuntime(s, stage_levels(s), envs.spec(s.env).api == "pettingzoo") for s in config.stages]
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
        for i, st in enumerate(self.stages):
            population = st.config.population
            if population is not None and population.independent:
                seats = learner_seats(st.config, st.levels[0])
                members = {seats[0]: self.agent}
                for k, seat in enumerate(seats[1:], start=1):
                    seed = learner_seed(config.seed, i, k)
                    members[seat] = build_agent(config.agent, seed, obs_space, act_space, config.curriculum.n_envs)
                st.team = Team(members)
        cur = config.curriculum
        self.teacher: Teacher = build_teacher(config)
        self.retention = Retention(cur.retention, self.agent, config.seed)
        for st in self.stages:
            name = stage_constitution(config, st.config)
            if name is not None:
                st.constitution = StageConstitution.load(name, st.config)
        for i, st in enumerate(self.stages):
            if st.config.feedback is not None:
                st.feedback = self._feedback_loop(i)
        # Multi-agent stages: frozen past selves saved at promotions, each loaded as its own agent (never trained).
        self.snapshots: Snapshots | None = None
        if any(st.multi_agent for st in self.stages):
            self.snapshots = Snapshots(
                run_dir / SNAPSHOTS,
                partial(build_agent, config.agent, config.seed, obs_space, act_space, config.curriculum.n_envs),
            )
        self._tracker: Tracker | None = None
        self.console = Console(
            [s.name for s in config.stages], progress, getattr(config.agent, "max_prompt_tokens", None)
        )

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
            sc = self.stages[stage].constitution
            assert sc is not None  # the config check guarantees the stage has one
            judge = ConstitutionLabeler(sc.constitution, sc.context, seed=seed).label
        return FeedbackLoop(
            s.feedback,
            StepFeaturizer(obs_dim, n_actions=n_actions),
            stage=s.name,
            run_dir=self.run_dir,
            seed=seed,
            env=s.env,
            judge=judge,
            on_event=lambda kind, **data: self.tracker.event(kind, self.state.global_step, **data),
        )

    # ------------------------------------------------------------------------------------------------ building
    def factory(self, stage: int, level: int) -> StageEnvFactory:
        st = self.stages[stage]
        shapers: tuple[Any, ...] = (st.constitution.shaper(),) if st.constitution is not None else ()
        loop = st.feedback
        if loop is not None:
            shapers += (partial(FeedbackReward, scorer=loop.scorer, mode=loop.config.mode, weight=loop.config.weight),)
        return StageEnvFactory(
            self.config.stages[stage],
            st.levels[level],
            self.numeric,
            (stage, len(self.stages)),
            shapers,
            self._snapshot_players(stage),
        )

    def _snapshot_players(self, stage: int) -> tuple[Any, ...]:
        """The frozen past selves that join ``stage``'s background population (saved up to the current step)."""
        population = self.config.stages[stage].population
        if self.snapshots is None or population is None or population.snapshots <= 0:
            return ()
        numeric = (*self.numeric, stage, len(self.stages)) if self.numeric is not None else None
        return tuple(
            self.snapshots.player(snap, numeric, deterministic=not population.snapshot_sampling)
            for snap in recent_snapshots(self.snapshots.available(self.state.global_step), population.max_snapshots)
        )

    def stage_agent(self, stage: int) -> Agent:
        """Who plays ``stage``: the run's agent, or for a stage of independent learners their :class:`Team`."""
        team = self.stages[stage].team
        return team if team is not None else self.agent

    def learner_names(self, stage: int) -> dict[str, Agent]:
        """The learners of ``stage`` by their names in the cross-play matrix: ``agent`` (the run's agent) and, with
        independent learners, ``learner:<seat>`` for each other focal seat's own learner."""
        team = self.stages[stage].team
        others = list(team.members.items())[1:] if team is not None else []
        return {"agent": self.agent, **{f"learner:{s}": a for s, a in others}}

    def run_record(self) -> dict[str, Any]:
        """What the run logs about itself: git commit and every constitution's name, version and content hash."""
        record: dict[str, Any] = {"git_commit": git_commit()}
        for st in self.stages:
            sc = st.constitution
            if sc is None:
                continue
            for k, v in sc.constitution.run_record().items():
                record[f"{k}/{st.name}" if k != "constitution/name" else k] = v
        return record

    @property
    def tracker(self) -> Tracker:
        """The run's tracker (opened by :meth:`open_tracker` before training)."""
        assert self._tracker is not None, "open_tracker() comes first"
        return self._tracker

    def open_tracker(self, run_id: str | None = None, events_offset: int | None = None) -> None:
        c = self.config
        self._tracker = Tracker(
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
    def run(self) -> None:
        """Train until the teacher is done (:func:`upbringing.curriculum.finish.finish` then evaluates every stage
        and writes the summary)."""
        c = self.config
        while (task := self.teacher.next_task()) is not None:
            start_stage(self, task)  # the critique-and-revision phase, at a stage's first training chunk
            seed = chunk_seed(c.seed, self.state.chunk)
            seed_everything(seed)
            factory = task.env_factory(self.factory(task.stage, task.level))  # the red team may set each episode
            log = make_vec_env(factory, c.curriculum)
            log.seed(seed if task.seed is None else task.seed)  # a teacher may pick the envs' seed (PLR)
            loop = self.stages[task.stage].feedback if not task.review else None
            if loop is not None:
                loop.level = task.level  # segments record the level they were played at (shown to people)
            venv = loop.recorder(log) if loop is not None else log  # feedback sees every transition it learns from
            start = time.perf_counter()
            train_metrics = self.stage_agent(task.stage).learn(venv, c.curriculum.chunk_steps)
            self.console.warn_cut_prompts(task.stage, train_metrics)
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

    def _log_training(self, task: Task, train: dict[str, float], episodes: list[EpisodeStats], seconds: float) -> None:
        stage = self.config.stages[task.stage]
        metrics = dict(train)
        metrics["train/steps_per_s"] = self.config.curriculum.chunk_steps / max(seconds, 1e-9)
        metrics["curriculum/stage"] = task.stage
        metrics["curriculum/level"] = task.level
        metrics["curriculum/review"] = float(task.review)
        metrics[f"curriculum/{stage.name}/steps"] = self.teacher.progress[task.stage].steps
        metrics.update(training_metrics(episodes))
        sc = self.stages[task.stage].constitution
        if sc is not None and episodes:
            records = sc.records(episodes)
            metrics.update(episode_metrics(records))
            # One multiplier step per chunk from its episodes' mean costs (J_k), for SB3 and LM learners alike.
            metrics.update(sc.lagrangian.update(mean_costs(records, sc.lagrangian.budgets)))
        self.tracker.log(metrics, self.state.global_step)
        bar = self.console.bar(task.stage, self.teacher)
        if bar is not None and not task.review:
            # Move to the stage's recorded steps: a bar created just now already starts there (this chunk included),
            # so adding the chunk again would count a stage's first chunk twice.
            bar.update(self.teacher.progress[task.stage].steps - bar.n)

    def evaluate(self, stage: int, level: int, transcripts: int = 0) -> EvalResult:
        """The curriculum's own held-out evaluation of ``stage`` at ``level``: fresh seeds from the stage's count of
        evaluations (checkpointed, so a resumed run draws the same ones)."""
        count = self.state.evaluations.get(stage, 0)
        self.state.evaluations[stage] = count + 1
        s = self.config.stages[stage]
        seeds = eval_seeds(self.config.seed, stage, count, s.eval_episodes)
        return evaluate(
            self.stage_agent(stage), self.factory(stage, level), seeds, self.stages[stage].rule.metric, transcripts
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
        level = self.stages[stage].last_level if level is None else level
        if seeds is None:
            seeds = eval_seeds(self.config.seed + 1_000_003, stage, 0, self.config.stages[stage].eval_episodes)
        factory = self.factory(stage, level)
        if overrides:
            factory = replace(factory, level_kwargs={**factory.level_kwargs, **overrides})
        return evaluate(self.stage_agent(stage), factory, seeds, self.stages[stage].rule.metric, transcripts)

    def _evaluate_and_advance(self, task: Task) -> None:
        stage = self.config.stages[task.stage]
        step = self.state.global_step
        result = self.evaluate(task.stage, task.level, self.config.tracking.sample_episodes)
        scores = self.state.level_scores.setdefault(task.stage, [])
        scores.extend(result.scores)
        verdict = self.stages[task.stage].rule.judge(scores)
        prefix = f"eval/{stage.name}/"
        metrics = {
            prefix + "score": result.score,
            prefix + "level": task.level,
            prefix + "return": float(np.mean(result.returns)),
        }
        if result.successes:
            metrics[prefix + "success_rate"] = float(np.mean(result.successes))
        metrics.update(social_means(result.stats, prefix + "social/"))
        sc = self.stages[task.stage].constitution
        if sc is not None:
            comp = sc.compliance(result.stats)
            metrics.update({f"{prefix}constitution/{k}/violations": v for k, v in comp["violation_rate"].items()})
            metrics[prefix + "compliant"] = float(comp["compliant"])
            if self.stages[task.stage].rule.require_compliance:
                verdict = Verdict(
                    verdict.mastered and comp["compliant"],
                    {
                        **verdict.evidence,
                        "compliant": comp["compliant"],
                        "mean_cost": comp["mean_cost"],
                        "budget": comp["budget"],
                    },
                )
        self.tracker.log(metrics, step)
        self.tracker.event(
            "evaluation", step, stage=stage.name, level=task.level, score=result.score, evidence=verdict.evidence
        )
        if result.transcripts:
            rows = [
                [stage.name, task.level, i, t, turn["text"], turn["action"], turn["reward"]]
                for i, episode in enumerate(result.transcripts)
                for t, turn in enumerate(episode)
            ]
            self.tracker.table(
                f"eval/{stage.name}/episodes",
                ["stage", "level", "episode", "t", "text", "action", "reward"],
                rows,
                step,
            )
        bar = self.console.bar(task.stage, self.teacher)
        if bar is not None:
            bar.set_postfix(level=task.level, score=f"{result.score:.2f}")

        outcome = self.teacher.record_evaluation(task, verdict, result.score)
        if outcome is None:
            return
        progress = self.teacher.progress[task.stage]
        self.state.level_scores[task.stage] = []
        self.tracker.event(
            outcome, step, stage=stage.name, level=task.level, stage_steps=progress.steps, evidence=verdict.evidence
        )
        self.tracker.log(
            {
                "curriculum/promotions": float(outcome == "promotion"),
                f"curriculum/{stage.name}/level": progress.level,
                f"curriculum/{stage.name}/mastered": float(progress.mastered),
            },
            step,
        )
        if outcome in ("level_up", "promotion") and self.snapshots is not None:  # a frozen past self per promotion
            self.snapshots.save(self.agent, stage.name, task.level, step)
            team = self.stages[task.stage].team  # and one of every other independent learner of the stage
            for seat, agent in list(team.members.items())[1:] if team is not None else ():
                self.snapshots.save(agent, stage.name, task.level, step, seat=seat)
        if outcome in ("promotion", "remastered") and self.stages[task.stage].team is None:
            self._record_decisions(task.stage)
        if outcome in ("promotion", "not_mastered"):
            self._retention_row(task.stage)
            self.console.close(task.stage)

    def _record_decisions(self, stage: int) -> None:
        """A stage was (re-)mastered: record the mastering policy's decisions on it for replay (retention)."""
        factory = self.factory(stage, self.stages[stage].last_level)

        def make_venv(seed: int) -> Any:
            venv = make_vec_env(factory, self.config.curriculum)
            venv.seed(seed)
            return venv

        metrics = self.retention.record(stage, self.config.stages[stage].name, make_venv)
        if metrics:
            self.tracker.log(metrics, self.state.global_step)

    def _review(self, task: Task) -> None:
        """After a review chunk: measure the mastered stage's retention on fresh held-out episodes."""
        stage = self.config.stages[task.stage]
        result = self.evaluate(task.stage, task.level)
        outcome = self.teacher.record_review(task.stage, result.score)
        p = self.teacher.progress[task.stage]
        self.tracker.log({f"curriculum/{stage.name}/retention": result.score}, self.state.global_step)
        if outcome == "demotion":
            self.state.level_scores[task.stage] = []
            self.tracker.event(
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
            row[j] = self.evaluate(j, self.stages[j].last_level).score
        self.state.retention.append(row)
        self.state.retention_after.append(after)
        names = [s.name for s in self.config.stages]
        self.tracker.event("retention", self.state.global_step, after=names[after], scores=dict(zip(names, row)))
        self.tracker.log(
            {f"curriculum/retention/{names[j]}": v for j, v in enumerate(row) if v is not None}, self.state.global_step
        )

    # ------------------------------------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        """Write agent + engine state at this chunk boundary, atomically (:func:`write_checkpoint`)."""
        return write_checkpoint(
            self.run_dir, self.state.chunk, self._write_checkpoint, self.config.tracking.keep_checkpoints
        )

    def _write_checkpoint(self, folder: Path) -> None:
        """Everything a resume needs, written into the checkpoint's (temporary) folder."""
        self.agent.save(folder / "agent")
        for st in self.stages:  # every other independent learner: weights, optimizer, counters, RNGs
            for seat, agent in list(st.team.members.items())[1:] if st.team is not None else ():
                agent.save(folder / LEARNERS / st.name / seat)
        engine = {
            "chunk": self.state.chunk,
            "global_step": self.state.global_step,
            "level_scores": {str(k): v for k, v in self.state.level_scores.items()},
            "evaluations": {str(k): v for k, v in self.state.evaluations.items()},
            "retention": self.state.retention,
            "retention_after": self.state.retention_after,
            "teacher": self.teacher.state_dict(),
            "lagrangians": {
                str(i): st.constitution.lagrangian.state_dict()
                for i, st in enumerate(self.stages)
                if st.constitution is not None
            },
            "events_offset": self.tracker.events_offset,
            "wandb_run_id": self.tracker.run_id,
        }
        for st in self.stages:
            if st.feedback is not None:
                st.feedback.save(folder / "feedback" / st.name)
        self.retention.save(folder)
        write_json_atomic(folder / "engine.json", engine)

    def load_checkpoint(self, path: Path) -> dict[str, Any]:
        engine = json.loads((path / "engine.json").read_text())
        self.agent.load(path / "agent")
        for st in self.stages:
            for seat, agent in list(st.team.members.items())[1:] if st.team is not None else ():
                agent.load(path / LEARNERS / st.name / seat)
        self.teacher.load_state_dict(engine["teacher"])
        for i, state in engine.get("lagrangians", {}).items():
            sc = self.stages[int(i)].constitution
            assert sc is not None  # saved only for stages with a constitution, and the config is the run's own
            sc.lagrangian.load_state_dict(state)
        for st in self.stages:
            if st.feedback is not None:
                st.feedback.load(path / "feedback" / st.name)
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
