"""Every key of the feedback schema has an effect: changing it from its default changes what the loop does.

Each case drives a small :class:`FeedbackLoop` (two LineWalk envs, five chunks of a scripted policy that drifts
towards the vase at the right wall) once with the base settings and once with one key changed, and compares a
fingerprint of everything observable: the queries asked, every answered row, the learner's feedback terms and the
``feedback/...`` metrics. A key added to FeedbackConfig, RewardModelConfig or RaterConfig without a case here fails
:func:`test_every_key_has_a_case`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv
from upbringing.constitutions import ConstitutionLabeler, load_constitution
from upbringing.feedback.answers import HUMAN
from upbringing.feedback.config import FeedbackConfig, RewardModelConfig
from upbringing.feedback.data import Preference, write_jsonl
from upbringing.feedback.features import StepFeaturizer
from upbringing.feedback.loop import FeedbackLoop, stage_dir
from upbringing.feedback.raters import RaterConfig

STAGE = "walk"
BASE: dict[str, Any] = {
    "mode": "learned",
    "budget": 60,
    "per_chunk": 0.3,
    "segment_length": 5,
    "true_profile": {"object_broken": -5.0},
    "alarm_window": 3,
    "raters": [{"name": "r1"}],
    "reward_model": {"ensemble_size": 2, "hidden": [16], "epochs": 5, "min_steps": 20},
}
# The AI labeller's base: the minimal constitution judges the walk (a broken vase harms), the raters check half.
AI = {"labeler": "constitution", "spot_check": 0.5, "disagreement_min_checks": 3}
BETA = {"raters": [{"name": "r1", "beta": 2.0}]}

# key path -> (changed value, extra base settings the key needs to show its effect)
FEEDBACK_CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "mode": ("oracle", {}),
    "weight": (3.0, {}),
    "budget": (20, {}),
    "schedule": ("decay", {}),
    "per_chunk": (0.6, {}),
    "selection": ("uniform", {}),
    "candidates_per_query": (2, {}),
    "segment_length": (4, {}),
    "min_segment_length": (3, {}),  # the walk's 12 steps cut into 5 + 5 + 2: the 2-step tails are dropped
    "buffer_segments": (10, {}),
    "raters": ([{"name": "r1"}, {"name": "r2", "epsilon": 0.3}], {}),
    "labeler": ("constitution", {}),
    "spot_check": (1.0, AI),
    "disagreement_alarm": (1.0, AI),
    "disagreement_min_checks": (1000, AI),
    "true_profile": ({"object_broken": -1.0}, {}),
    "alarm_window": (2, {}),
    "alarm_z": (1e6, {}),
    "use_human_answers": (False, {}),
}
REWARD_MODEL_CASES: dict[str, Any] = {
    "ensemble_size": 3,
    "hidden": [8, 8],
    "activation": "tanh",
    "lr": 3e-2,
    "weight_decay": 0.5,
    "epochs": 40,  # more gradient steps than min_steps asks for
    "min_steps": 60,
    "warm_start": True,
    "batch_size": 8,
    "bootstrap": False,
}
RATER_CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "name": ("parent", {}),
    "beta": (2.0, {}),
    "gamma": (0.5, {}),
    "epsilon": (0.3, {}),
    "skip_threshold": (100.0, {}),
    "equal_threshold": (0.5, {}),
    "task_weight": (-1.0, {}),
    "profile": ({"object_broken": -50.0}, {}),  # the vase outweighs progress: preferences turn round
    "scale_aware": (False, BETA),  # scale only matters where beta turns utility differences into probabilities
}


def _set(settings: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(settings))
    if path.startswith("reward_model."):
        out["reward_model"][path.split(".", 1)[1]] = value
    elif path.startswith("raters."):
        out["raters"][0][path.split(".", 1)[1]] = value
    else:
        out[path] = value
    return out


def _get(settings: dict[str, Any], path: str) -> Any:
    dump = FeedbackConfig.model_validate(settings).model_dump()
    head, _, key = path.partition(".")
    if head == "raters" and key:
        return dump["raters"][0][key]
    return dump[head][key] if key else dump[head]


def _human_answer(run_dir: Any) -> None:
    """One answer a person gave in the terminal to a query of the first chunk."""
    folder = stage_dir(run_dir, STAGE)
    queries = (folder / "queries.jsonl").read_text().splitlines()
    q = Preference.from_json(queries[0])
    write_jsonl(folder / HUMAN, [Preference(a=q.a, b=q.b, label=0.0, rater="human:ann", query_id=q.query_id)])


_BASES: dict[str, str] = {}


def base_fingerprint(settings: dict[str, Any], line_walk: Any, run_dir: Any) -> str:
    """:func:`fingerprint` of a base, computed once per distinct base (most cases share one)."""
    key = json.dumps(settings, sort_keys=True)
    if key not in _BASES:
        _BASES[key] = fingerprint(settings, line_walk, run_dir)
    return _BASES[key]


def fingerprint(settings: dict[str, Any], line_walk: Any, run_dir: Any) -> str:
    """Everything observable about a small run of the loop with these settings, as one string."""
    cfg = FeedbackConfig.model_validate(settings)
    judge = None
    if cfg.labeler == "constitution":
        judge = ConstitutionLabeler(load_constitution("minimal"), seed=3).label
    events: list[tuple[str, str, int]] = []  # what fired, not the settings it reports
    loop = FeedbackLoop(
        cfg,
        StepFeaturizer(obs_dim=2, n_actions=3),
        stage=STAGE,
        run_dir=run_dir,
        seed=7,
        judge=judge,
        on_event=lambda kind, **data: events.append((kind, data["principle"], data["compared"])),
    )
    venv = loop.recorder(DummyVecEnv([lambda: loop.wrap(line_walk(size=5, goal=7)) for _ in range(2)]))
    metrics: list[dict[str, float]] = []
    terms: list[float] = []
    for chunk, p_right in enumerate([0.0, 0.4, 0.8, 1.0]):
        venv.seed(1000 + chunk)
        venv.reset()
        rng = np.random.default_rng(chunk)
        for _ in range(30):
            actions = np.where(rng.random(2) < p_right, 2, rng.integers(0, 2, 2))
            _, _, _, infos = venv.step(actions)
            terms.extend(round(float(i["reward_terms"].get("feedback", 0.0)), 6) for i in infos)
        metrics.append({k: round(v, 6) for k, v in sorted(loop.end_chunk().items())})
        if chunk == 0:
            _human_answer(run_dir)
    rows = [(r.query_id, r.rater, r.label, len(r.a.actions), len(r.b.actions)) for r in loop.rows]
    return json.dumps({"metrics": metrics, "rows": rows, "terms": terms, "events": events}, default=str)


def test_every_key_has_a_case():
    assert set(FEEDBACK_CASES) | {"reward_model"} == set(FeedbackConfig.model_fields)
    assert set(REWARD_MODEL_CASES) == set(RewardModelConfig.model_fields)
    assert set(RATER_CASES) == set(RaterConfig.model_fields)


CASES = (
    [(k, v, extra) for k, (v, extra) in FEEDBACK_CASES.items()]
    + [(f"reward_model.{k}", v, {}) for k, v in REWARD_MODEL_CASES.items()]
    + [(f"raters.{k}", v, extra) for k, (v, extra) in RATER_CASES.items()]
)


@pytest.mark.slow  # ~17 s of CPU in all (0.5 s a case)
@pytest.mark.parametrize(("key", "value", "extra"), CASES, ids=[c[0] for c in CASES])
def test_changing_the_key_changes_the_run(key, value, extra, line_walk, tmp_path):
    base = {**BASE, **extra}
    assert _get(_set(base, key, value), key) != _get(base, key)  # a real change
    before = base_fingerprint(base, line_walk, tmp_path / "base")
    after = fingerprint(_set(base, key, value), line_walk, tmp_path / "changed")
    assert before != after, f"changing feedback.{key} to {value!r} changed nothing observable"
