"""The feedback loop the curriculum runner drives, chunk by chunk.

During a training chunk the loop sees every transition (through :class:`RecordTransitions`, a ``VecEnv``
wrapper, or by calling :meth:`FeedbackLoop.add_transition` directly) and cuts them into segments. At the end of the
chunk, :meth:`FeedbackLoop.end_chunk`:

1. scores the over-optimisation alarm on the chunks just played, with the model the policy was optimising;
2. asks this chunk's share of the query budget (uniform or active selection) to the simulated raters, or (with
   ``labeler: constitution``) to an AI judge with the simulated raters spot-checking a share ``spot_check``: the
   raters' answer wins on checked pairs, and so does a person's later answer to any judged pair (terminal or web);
   judge-human disagreement is counted per principle and the oversight alarm fires (one log line and an
   ``oversight_alarm`` event through ``on_event``) when a principle's rate exceeds ``disagreement_alarm``;
3. measures the current reward model on these fresh labels before training on them (held-out pairwise accuracy,
   ECE, and accuracy against the hidden true utility);
4. trains the ensemble on every label so far and updates the shared :class:`~feedback.reward_model.LearnedReward`
   the :class:`~feedback.wrapper.FeedbackReward` wrappers score with;
5. writes the run folder's preference files and returns ``feedback/...`` metrics.

Run folder layout (``<stage>`` is the stage name, made file-safe; an unnamed stage writes straight to ``feedback/``)::

    RUN_DIR/feedback/<stage>/preferences.jsonl  every answered row (simulated raters, AI judge), one Preference a line
    RUN_DIR/feedback/<stage>/queries.jsonl      every query asked, unanswered (label null), for people to answer
    RUN_DIR/feedback/<stage>/human.jsonl        people's answers, written by ``upbringing feedback RUN_DIR``

:meth:`FeedbackLoop.state_dict` holds everything needed for a resumed run to continue exactly.

Wiring (what a runner does per stage): size the featurizer to the observations and actions the recorder sees
(e.g. the padded numeric view); build each env with :meth:`FeedbackLoop.wrap` as its outermost reward wrapper; wrap
the ``VecEnv`` with :meth:`FeedbackLoop.recorder`; after each chunk call :meth:`FeedbackLoop.end_chunk` and log its
metrics. Envs in subprocesses hold their own copy of the scorer: after ``end_chunk`` push the new weights with
``venv.env_method("set_feedback_state", loop.scorer.state())``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from safetensors.numpy import load_file as load_np
from safetensors.numpy import save_file as save_np
from stable_baselines3.common.vec_env import VecEnv
from upbringing.feedback.alarm import ProxyAlarm
from upbringing.feedback.answers import HUMAN, PREFERENCES, QUERIES
from upbringing.feedback.config import FeedbackConfig
from upbringing.feedback.data import Preference, Segment, read_jsonl, write_jsonl
from upbringing.feedback.features import StepFeaturizer, pad, step_text
from upbringing.feedback.oversight import HierarchicalOversight, Judge
from upbringing.feedback.queries import queries_for_chunk, select_pairs
from upbringing.feedback.raters import RaterPool, segment_utility, step_utilities
from upbringing.feedback.recorder import RecordTransitions
from upbringing.feedback.reward_model import (
    LearnedReward,
    RewardEnsemble,
    expected_calibration_error,
    pairwise_accuracy,
)
from upbringing.feedback.wrapper import FeedbackReward

log = logging.getLogger(__name__)
EventSink = Callable[..., None]
"""Receives ``(kind, **data)`` for each event row the loop raises (the runner writes it to the run's events)."""


def stage_dir(run_dir: str | Path, stage: str) -> Path:
    """Folder of a stage's preference files inside a run folder."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", stage).strip("._")
    return Path(run_dir) / "feedback" / safe if safe else Path(run_dir) / "feedback"


class FeedbackLoop:
    """Simulated human feedback for one stage: segments -> queries -> labels -> reward model -> reward term.

    Args:
        config: The stage's feedback settings.
        featurizer: Step features (size it with ``StepFeaturizer.for_spaces(env.observation_space, ...)``).
        stage: Stage name (used in query ids, segments and the run folder).
        run_dir: Run folder to write preference files into (None writes nothing).
        seed: Seed of every random choice the loop makes (queries, raters, model).
        judge: The AI judge labelling pairs, required with ``config.labeler`` other than ``raters`` (the runner
            passes the stage's :class:`~constitutions.labeler.ConstitutionLabeler`); the simulated raters then only
            spot-check ``config.spot_check`` of the pairs.
        env: The stage's env id, recorded in every segment (people's pages show it and pick pictures by family).
        on_event: Called as ``on_event(kind, **data)`` for each event row (the oversight alarm); None: log only.

    Attributes:
        level: The level being played; the runner sets it before each chunk and segments record it.
    """

    def __init__(
        self,
        config: FeedbackConfig,
        featurizer: StepFeaturizer,
        *,
        stage: str = "",
        run_dir: str | Path | None = None,
        seed: int = 0,
        judge: Judge | None = None,
        env: str = "",
        on_event: EventSink | None = None,
    ):
        if (judge is None) != (config.labeler == "raters"):
            raise ValueError(
                f"labeler: {config.labeler} needs a judge"
                if judge is None
                else "a judge was given but labeler is 'raters': set labeler to the judge's kind"
            )
        self.config = config
        self.on_event = on_event
        self.env = env
        self.level: int | None = None
        self.featurizer = featurizer
        self.stage = stage
        self.run_dir = Path(run_dir) if run_dir is not None else None
        loop_seq, pool_seq, oversight_seq = np.random.SeedSequence(seed).spawn(3)
        self.rng = np.random.default_rng(loop_seq)
        self.pool = RaterPool.from_configs(config.raters, seed=int(pool_seq.generate_state(1)[0]))
        self.oversight = (
            HierarchicalOversight(judge, self.pool, config.spot_check, np.random.default_rng(oversight_seq))
            if judge is not None
            else None
        )
        self.model = RewardEnsemble(featurizer.dim, config.reward_model, seed=seed)
        self.scorer = LearnedReward(featurizer)
        self.chunk = 0
        self.queries_used = 0
        self.rows: list[Preference] = []  # every row answered, in order
        self.queries: list[Preference] = []  # every query asked, unanswered (for people)
        self._train: list[Preference] = []  # the rows the model trains on
        self._train_feats: list[tuple[np.ndarray, np.ndarray]] = []
        self._human_seen: set[tuple[str, str]] = set()
        self.segments: deque[Segment] = deque(maxlen=config.buffer_segments)
        self._seg_feats: deque[np.ndarray] = deque(maxlen=config.buffer_segments)
        # per env, its open segment: lists of steps by field, and "after" (the scene the last action left)
        self._open: dict[int, dict[str, Any]] = {}
        self.alarm = ProxyAlarm(config.alarm_window, config.alarm_z)
        self.last_metrics: dict[str, float] = {}
        self.last_evaluation: dict[str, float] = {}

    # ----------------------------------------------------------------------------------------------------- wiring

    def wrap(self, env: gym.Env) -> FeedbackReward:
        """Wrap a single env so its reward gets the ``feedback`` term of this stage's mode."""
        return FeedbackReward(env, self.scorer, mode=self.config.mode, weight=self.config.weight)

    def recorder(self, venv: VecEnv) -> RecordTransitions:
        """Wrap a ``VecEnv`` so every transition stepped through it reaches this loop."""
        return RecordTransitions(venv, self)

    # -------------------------------------------------------------------------------------------------- collecting

    def add_transition(
        self,
        env_index: int,
        obs: Any,
        action: Any,
        info: dict[str, Any],
        done: bool,
        obs_info: dict[str, Any] | None = None,
        reward: float | None = None,
    ) -> None:
        """Record one transition of env ``env_index``.

        Args:
            env_index: Which env of the batch (each has its own running segment).
            obs: The observation the action was chosen from.
            action: The action taken.
            info: The info the step returned (``events``, ``reward_terms``).
            done: Whether the episode ended with this step.
            obs_info: The info that came with ``obs`` (its ``text`` and ``action_texts``, for people and text
                features).
            reward: The env's task reward; default ``info["reward_terms"]["env"]``.
        """
        if reward is None:
            reward = info.get("reward_terms", {}).get("env")
            if reward is None:
                raise ValueError("pass reward= or record reward terms (envs.terms.RecordEnvReward) beneath")
        steps = self._open.setdefault(env_index, {"obs": [], "actions": [], "rewards": [], "events": [], "texts": []})
        steps["obs"].append(np.asarray(obs, dtype=np.float32).ravel().tolist())
        steps["actions"].append(np.asarray(action).tolist())
        steps["rewards"].append(float(reward))
        steps["events"].append({k: float(v) for k, v in info.get("events", {}).items()})
        steps["texts"].append(step_text(obs_info, action))
        if obs_info is not None and "scene" in obs_info:  # kept only where the env draws its scene (physics)
            steps.setdefault("scenes", []).append(obs_info["scene"])
            steps["after"] = info.get("scene")  # how the last action left the world, added when the segment closes
        if done or len(steps["actions"]) >= self.config.segment_length:
            self._close(env_index)

    def _close(self, env_index: int) -> None:
        steps = self._open.pop(env_index, None)
        if not steps or len(steps["actions"]) < self.config.min_segment_length:
            return
        after = steps.pop("after", None)
        if after is not None:
            steps["scenes"].append(after)
        seg = Segment(stage=self.stage, env=self.env, level=self.level, **steps)
        feats = self.featurizer.segment(seg)
        self.segments.append(seg)
        self._seg_feats.append(feats)
        self.alarm.add(feats, step_utilities(seg, self.config.true_profile))

    def true_utility(self, segment: Segment) -> float:
        """The hidden true utility of a segment: env reward plus ``config.true_profile`` over its events."""
        return segment_utility(segment, self.config.true_profile)

    # ------------------------------------------------------------------------------------------------ end of chunk

    def end_chunk(self) -> dict[str, float]:
        """Close the chunk: alarm, queries, evaluation, training, files. Returns ``feedback/...`` metrics."""
        for env_index in list(self._open):
            self._close(env_index)  # the next chunk starts from a reset
        metrics: dict[str, float] = {}
        metrics.update(self.alarm.update(self.scorer, self.rng))
        n = queries_for_chunk(self.config.budget, self.queries_used, self.config.schedule, self.config.per_chunk)
        new_train, asked = self._ask(n)
        evaluation = self._evaluate(new_train)
        metrics.update(evaluation)
        # The summary keeps the latest real measurement (a chunk with no fresh labels measures nothing).
        self.last_evaluation.update({k: v for k, v in evaluation.items() if not math.isnan(v)})
        self._train.extend(new_train)
        self._train_feats.extend((self._feats(p.a), self._feats(p.b)) for p in new_train)
        human = self._import_human_answers()
        metrics["feedback/rm_loss"] = self._fit()
        self._write_files()
        agree = self.pool.agreement()
        metrics.update(
            {
                "feedback/queries": float(asked),
                "feedback/queries_used": float(self.queries_used),
                "feedback/budget_left": float(self.config.budget - self.queries_used),
                "feedback/labels": float(len(self._train)),
                "feedback/human_answers": float(human),
                "feedback/segments": float(len(self.segments)),
                "feedback/agreement": agree["agreement"],
                "feedback/kappa": agree["kappa"],
                "feedback/reward_mean": self.scorer.mean,
                "feedback/reward_std": self.scorer.std,
            }
        )
        if self.oversight is not None:
            metrics.update(self._oversight_alarm())
            metrics.update(self.oversight.stats.metrics())
        self.chunk += 1
        self.last_metrics = metrics
        return metrics

    def _feats(self, seg: Segment) -> np.ndarray:
        return self.featurizer.segment(seg)

    def _oversight_alarm(self) -> dict[str, float]:
        """Fire the oversight alarm for each principle whose judge-human disagreement just exceeded the threshold."""
        assert self.oversight is not None
        fired = self.oversight.check_alarm(self.config.disagreement_alarm, self.config.disagreement_min_checks)
        for principle, rate, compared in fired:
            log.warning(
                "oversight alarm: stage %r, principle %r: the AI judge and the humans disagree on %.0f%% of %d "
                "checked pairs (threshold %.0f%%)",
                self.stage,
                principle,
                100 * rate,
                compared,
                100 * self.config.disagreement_alarm,
            )
            if self.on_event is not None:
                self.on_event(
                    "oversight_alarm",
                    stage=self.stage,
                    principle=principle,
                    disagreement_rate=rate,
                    compared=compared,
                    threshold=self.config.disagreement_alarm,
                )
        return {"feedback/oversight/alarm": float(bool(fired))}

    def _predict_pairs(self, pairs: np.ndarray) -> np.ndarray:
        feats = list(self._seg_feats)
        xa, ma = pad([feats[i] for i in pairs[:, 0]], self.featurizer.dim, self.config.segment_length)
        xb, mb = pad([feats[j] for j in pairs[:, 1]], self.featurizer.dim, self.config.segment_length)
        return self.model.predict_proba(xa, ma, xb, mb)

    def _ask(self, n: int) -> tuple[list[Preference], int]:
        if n <= 0 or len(self.segments) < 2:
            return [], 0
        predict = self._predict_pairs if self.model.fitted else None
        pairs = select_pairs(
            len(self.segments), n, self.config.selection, self.rng, predict, self.config.candidates_per_query
        )
        segs = list(self.segments)
        # The model's view of each pair when asked, kept with the query so people's answers can be compared with it
        # (the agreement page of `upbringing feedback --web`); it is not trained on this chunk's labels yet.
        p_model = predict(pairs).mean(0) if predict is not None else None
        train: list[Preference] = []
        for k, (i, j) in enumerate(pairs):
            a, b = segs[i], segs[j]
            qid = f"{self.stage or 'stage'}/c{self.chunk}/q{k}"
            meta = {"chunk": self.chunk, "selection": self.config.selection if predict else "uniform"}
            extra: dict[str, float] = {"budget": self.config.budget}
            if p_model is not None:
                extra["rm_p_a"] = round(float(p_model[k]), 4)
            self.queries.append(Preference(a=a, b=b, label=None, rater="", query_id=qid, meta={**meta, **extra}))
            if self.oversight is not None:
                result = self.oversight.label(a, b, qid, meta)
                self.rows.extend(result.rows)
                train.extend(r for r in result.train if r.label is not None)
            else:
                rows = self.pool.label(a, b, qid, meta)
                self.rows.extend(rows)
                train.extend(r for r in rows if r.label is not None)
        self.queries_used += len(pairs)
        return train, len(pairs)

    def _evaluate(self, fresh: list[Preference]) -> dict[str, float]:
        nan = float("nan")
        out = {"feedback/rm_accuracy": nan, "feedback/rm_ece": nan, "feedback/rm_true_accuracy": nan}
        if not fresh or not self.model.fitted:
            return out
        length = self.config.segment_length
        xa, ma = pad([self._feats(p.a) for p in fresh], self.featurizer.dim, length)
        xb, mb = pad([self._feats(p.b) for p in fresh], self.featurizer.dim, length)
        p_a = self.model.predict_proba(xa, ma, xb, mb).mean(0)
        labels = np.array([p.label for p in fresh], dtype=np.float64)
        ua = np.array([self.true_utility(p.a) for p in fresh])
        ub = np.array([self.true_utility(p.b) for p in fresh])
        truth = np.where(ua > ub, 1.0, np.where(ua < ub, 0.0, 0.5))
        out["feedback/rm_accuracy"] = pairwise_accuracy(p_a, labels)
        out["feedback/rm_ece"] = expected_calibration_error(p_a, labels)
        out["feedback/rm_true_accuracy"] = pairwise_accuracy(p_a, truth)
        return out

    def _import_human_answers(self) -> int:
        if self.run_dir is None or not self.config.use_human_answers:
            return 0
        path = stage_dir(self.run_dir, self.stage) / HUMAN
        if not path.exists():
            return 0
        added = 0
        for row in read_jsonl(path):
            key = (row.query_id, row.rater)
            if key in self._human_seen:
                continue
            self._human_seen.add(key)
            if row.label is not None:
                self._human_wins(row)
                self._train.append(row)
                self._train_feats.append((self._feats(row.a), self._feats(row.b)))
                added += 1
        return added

    def _human_wins(self, answer: Preference) -> None:
        """A person answered a query the AI judge labelled: compare them, and train on the person's answer only."""
        if self.oversight is None:
            return
        people = {r.id for r in self.pool.raters}
        for k in range(len(self._train) - 1, -1, -1):
            row = self._train[k]
            is_judge = row.rater not in people and not row.rater.startswith("human:")
            if row.query_id == answer.query_id and is_judge and answer.label is not None:
                self.oversight.record(row, float(answer.label))
                del self._train[k], self._train_feats[k]

    def _fit(self) -> float:
        if not self._train:
            return float("nan")
        length = self.config.segment_length
        xa, ma = pad([f[0] for f in self._train_feats], self.featurizer.dim, length)
        xb, mb = pad([f[1] for f in self._train_feats], self.featurizer.dim, length)
        labels = np.array([p.label for p in self._train], dtype=np.float32)
        loss = self.model.fit(xa, ma, xb, mb, labels, seed=int(self.rng.integers(2**31)))["loss"]
        calibration = np.concatenate(list(self._seg_feats)) if self._seg_feats else None
        self.scorer.set_model(self.model, calibration)
        return loss

    def _write_files(self) -> None:
        if self.run_dir is None:
            return
        folder = stage_dir(self.run_dir, self.stage)
        write_jsonl(folder / PREFERENCES, self.rows)
        write_jsonl(folder / QUERIES, self.queries)

    # ------------------------------------------------------------------------------------------------- reporting

    def summary(self) -> dict[str, float]:
        """Figures for the stage summary: queries used, label count, and the reward model's accuracy and ECE as last
        measured on fresh labels (NaN until measured)."""
        m, e, nan = self.last_metrics, self.last_evaluation, float("nan")
        return {
            "queries_used": float(self.queries_used),
            "budget": float(self.config.budget),
            "labels": float(len(self._train)),
            "rm_accuracy": e.get("feedback/rm_accuracy", nan),
            "rm_true_accuracy": e.get("feedback/rm_true_accuracy", nan),
            "rm_ece": e.get("feedback/rm_ece", nan),
            "agreement": m.get("feedback/agreement", float("nan")),
            "alarms": float(self.alarm.alarms),
            **(
                {
                    "judge_labels": float(self.oversight.stats.judged),
                    "spot_checks": float(self.oversight.stats.spot_checks),
                    "oversight_disagreement": m.get("feedback/oversight/disagreement_rate", nan),
                    "oversight_alarms": float(self.oversight.stats.alarms),
                }
                if self.oversight is not None
                else {}
            ),
        }

    # --------------------------------------------------------------------------------------------------- resume

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: ``{"json": ..., "arrays": {name: np.ndarray}}``.

        Take it at a chunk boundary (after :meth:`end_chunk`); :meth:`save` writes it as JSON + safetensors.
        """
        arrays = {k: v.detach().numpy().copy() for k, v in self.model.state_dict().items()}
        for i, w in enumerate(self.alarm.window):
            arrays[f"window.{i}.feats"] = w["feats"]
        meta = {
            "chunk": self.chunk,
            "queries_used": self.queries_used,
            "alarms": self.alarm.alarms,
            "rng": self.rng.bit_generator.state,
            "pool": self.pool.state_dict(),
            "oversight": self.oversight.state_dict() if self.oversight is not None else None,
            "rows": [p.to_json() for p in self.rows],
            "queries": [p.to_json() for p in self.queries],
            "train": [p.to_json() for p in self._train],
            "human_seen": sorted(self._human_seen),
            "segments": [asdict(s) for s in self.segments],
            "window": [list(w["truth"]) for w in self.alarm.window],
            "scorer": {"mean": self.scorer.mean, "std": self.scorer.std, "version": self.scorer.version},
            "last_metrics": self.last_metrics,
            "last_evaluation": self.last_evaluation,
        }
        return {"json": meta, "arrays": arrays}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (into a loop built with the same config and featurizer)."""
        meta, arrays = state["json"], state["arrays"]
        model_keys = set(self.model.state_dict())
        self.model.load_state_dict({k: torch.as_tensor(np.asarray(arrays[k])) for k in model_keys})
        self.chunk, self.queries_used = int(meta["chunk"]), int(meta["queries_used"])
        self.alarm.alarms = int(meta["alarms"])
        self.rng.bit_generator.state = meta["rng"]
        self.pool.load_state_dict(meta["pool"])
        if self.oversight is not None and meta["oversight"] is not None:
            self.oversight.load_state_dict(meta["oversight"])
        self.rows = [Preference.from_json(r) for r in meta["rows"]]
        self.queries = [Preference.from_json(r) for r in meta["queries"]]
        self._train = [Preference.from_json(r) for r in meta["train"]]
        self._train_feats = [(self._feats(p.a), self._feats(p.b)) for p in self._train]
        self._human_seen = {tuple(k) for k in meta["human_seen"]}
        self.segments.clear()
        self._seg_feats.clear()
        for s in meta["segments"]:
            seg = Segment(**s)
            self.segments.append(seg)
            self._seg_feats.append(self._feats(seg))
        self.alarm.window.clear()
        for i, truth in enumerate(meta["window"]):
            self.alarm.window.append({"feats": np.asarray(arrays[f"window.{i}.feats"]), "truth": tuple(truth)})
        self._open = {}
        self.alarm.clear_chunk()
        if self.model.fitted:
            calibration = np.concatenate(list(self._seg_feats)) if self._seg_feats else None
            self.scorer.set_model(self.model, calibration)
        self.scorer.mean, self.scorer.std = float(meta["scorer"]["mean"]), float(meta["scorer"]["std"])
        self.scorer.version = int(meta["scorer"]["version"])
        self.last_metrics = dict(meta["last_metrics"])
        self.last_evaluation = dict(meta["last_evaluation"])

    def save(self, directory: str | Path) -> None:
        """Write :meth:`state_dict` into ``directory`` as ``feedback_state.json`` + ``feedback_state.safetensors``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = self.state_dict()
        save_np(
            {k: np.ascontiguousarray(v) for k, v in state["arrays"].items()}, directory / "feedback_state.safetensors"
        )
        (directory / "feedback_state.json").write_text(json.dumps(state["json"]), encoding="utf-8")

    def load(self, directory: str | Path) -> None:
        """Restore what :meth:`save` wrote."""
        directory = Path(directory)
        meta = json.loads((directory / "feedback_state.json").read_text(encoding="utf-8"))
        self.load_state_dict({"json": meta, "arrays": load_np(directory / "feedback_state.safetensors")})
