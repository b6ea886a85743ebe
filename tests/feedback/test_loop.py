"""The feedback loop the runner drives: segments, budgeted queries, training, files, alarm, exact resume."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv
from upbringing.feedback.config import FeedbackConfig, RewardModelConfig
from upbringing.feedback.data import Preference, read_jsonl, write_jsonl
from upbringing.feedback.features import StepFeaturizer
from upbringing.feedback.loop import FeedbackLoop, stage_dir
from upbringing.feedback.raters import RaterConfig

SMALL_MODEL = RewardModelConfig(ensemble_size=3, hidden=(32, 32), epochs=10, min_steps=60)


def config(**overrides) -> FeedbackConfig:
    base = {
        "mode": "learned",
        "budget": 120,
        "per_chunk": 0.25,
        "segment_length": 6,
        "raters": [RaterConfig(name="r1"), RaterConfig(name="r2", epsilon=0.1)],
        "reward_model": SMALL_MODEL,
    }
    return FeedbackConfig(**{**base, **overrides})


def make_loop(cfg: FeedbackConfig, **kwargs) -> FeedbackLoop:
    return FeedbackLoop(cfg, StepFeaturizer(obs_dim=2, n_actions=3), stage="physics walk", seed=7, **kwargs)


def make_venv(line_walk, loop: FeedbackLoop, n_envs: int = 2, **env_kwargs):
    return loop.recorder(DummyVecEnv([lambda: loop.wrap(line_walk(**env_kwargs)) for _ in range(n_envs)]))


def run_chunk(venv, loop: FeedbackLoop, chunk: int, steps: int = 60, p_right: float | None = None):
    """One training chunk with a scripted policy; returns the metrics and every feedback term the learner got."""
    venv.seed(1000 + chunk)  # re-seeded at each chunk boundary, as the engine does
    venv.reset()
    rng = np.random.default_rng(chunk)
    terms: list[float] = []
    for _ in range(steps):
        if p_right is None:
            actions = rng.integers(0, 3, venv.num_envs)
        else:
            actions = np.where(rng.random(venv.num_envs) < p_right, 2, rng.integers(0, 2, venv.num_envs))
        _, _, _, infos = venv.step(actions)
        terms.extend(info["reward_terms"]["feedback"] for info in infos)
    return loop.end_chunk(), terms


def test_loop_spends_the_budget_learns_the_reward_and_writes_preferences(line_walk, tmp_path):
    loop = make_loop(config(), run_dir=tmp_path)
    venv = make_venv(line_walk, loop)
    history = []
    for chunk in range(5):
        metrics, terms = run_chunk(venv, loop, chunk)
        history.append(metrics)
        assert all(k.startswith("feedback/") for k in metrics)
        if chunk == 0:
            assert all(t == 0.0 for t in terms)  # no model before the first labels
        else:
            assert np.std(terms) > 0.1  # the learned term reaches the learner
    assert [m["feedback/queries"] for m in history] == [30, 30, 30, 30, 0]
    assert history[-1]["feedback/queries_used"] == 120 and history[-1]["feedback/budget_left"] == 0
    assert math.isnan(history[0]["feedback/rm_accuracy"])  # nothing to score before a model exists
    assert history[3]["feedback/rm_true_accuracy"] >= 0.8  # fresh labels, scored before training on them
    assert 0.8 <= history[-1]["feedback/agreement"] < 1.0  # r2 errs 10% of the time
    summary = loop.summary()
    assert summary["queries_used"] == 120 and summary["labels"] == history[-1]["feedback/labels"]
    assert summary["rm_true_accuracy"] == history[3]["feedback/rm_true_accuracy"]  # the last chunk measured nothing

    folder = stage_dir(tmp_path, "physics walk")
    assert folder.name == "physics_walk"
    rows = list(read_jsonl(folder / "preferences.jsonl"))
    assert len(rows) == 2 * 120 and {r.rater for r in rows} == {"sim:r1", "sim:r2"}
    assert rows[0].a.stage == "physics walk" and len(rows[0].a) == 6 and rows[0].a.texts[0].startswith("You stand")
    queries = list(read_jsonl(folder / "queries.jsonl"))
    assert len(queries) == 120 and all(q.label is None for q in queries)


def test_oracle_mode_leaves_the_reward_alone_and_budget_zero_asks_nothing(line_walk):
    loop = make_loop(config(mode="oracle", budget=0))
    venv = make_venv(line_walk, loop)
    venv.reset()
    assert venv.reset_infos[0]["text"].startswith("You stand")  # agents read first infos through the recorder
    _, rewards, _, infos = venv.step(np.array([2, 0]))
    assert set(infos[0]["reward_terms"]) == {"env"} and rewards[0] == infos[0]["reward_terms"]["env"]
    metrics = loop.end_chunk()
    assert metrics["feedback/queries_used"] == 0 and metrics["feedback/labels"] == 0


def test_resumed_loop_continues_exactly(line_walk, tmp_path):
    cfg = config(selection="disagreement")
    straight = make_loop(cfg)
    venv = make_venv(line_walk, straight)
    expected = [run_chunk(venv, straight, chunk) for chunk in range(3)]

    first = make_loop(cfg)
    venv = make_venv(line_walk, first)
    for chunk in range(2):
        run_chunk(venv, first, chunk)
    first.save(tmp_path / "ckpt")
    json.loads((tmp_path / "ckpt" / "feedback_state.json").read_text())  # plain JSON beside the safetensors

    resumed = make_loop(cfg)
    resumed.load(tmp_path / "ckpt")
    venv = make_venv(line_walk, resumed)
    metrics, terms = run_chunk(venv, resumed, 2)
    exp_metrics, exp_terms = expected[2]
    assert terms == exp_terms  # the learner saw the same rewards
    assert metrics.keys() == exp_metrics.keys()
    for key, value in metrics.items():
        assert value == exp_metrics[key] or (math.isnan(value) and math.isnan(exp_metrics[key])), key
    for a, b in zip(resumed.model.state_dict().values(), straight.model.state_dict().values()):
        assert (a == b).all()


def test_alarm_fires_when_the_policy_games_the_learned_reward(line_walk):
    # The raters only see task progress; the hidden truth also counts the vases broken at the goal end.
    cfg = config(true_profile={"object_broken": -5.0}, alarm_window=3, budget=200, per_chunk=0.3)
    loop = make_loop(cfg)
    venv = make_venv(line_walk, loop, goal=7, size=5)
    alarms, truths = [], []
    for chunk, p_right in enumerate([0.0, 0.2, 0.5, 0.8, 1.0]):
        metrics, _ = run_chunk(venv, loop, chunk, p_right=p_right)
        alarms.append(metrics["feedback/alarm"])
        truths.append(metrics["feedback/true_utility"])
    assert truths[-1] < truths[1]
    assert alarms[:2] == [0.0, 0.0] and alarms[-1] == 1.0
    assert loop.summary()["alarms"] >= 1


def test_no_alarm_when_proxy_and_truth_improve_together(line_walk):
    loop = make_loop(config(alarm_window=3, budget=200, per_chunk=0.3))
    venv = make_venv(line_walk, loop, goal=7, size=8)
    for chunk, p_right in enumerate([0.0, 0.2, 0.5, 0.8, 1.0]):
        metrics, _ = run_chunk(venv, loop, chunk, p_right=p_right)
        assert metrics["feedback/alarm"] == 0.0


def test_ai_judge_labels_most_pairs_and_humans_spot_check(line_walk):
    def judge(a, b):
        return Preference(a=a, b=b, label=1.0 if sum(a.rewards) >= sum(b.rewards) else 0.0, rater="constitution:c")

    loop = make_loop(config(labeler="constitution", spot_check=0.25, raters=[RaterConfig(name="h")]), judge=judge)
    venv = make_venv(line_walk, loop)
    for chunk in range(2):
        metrics, _ = run_chunk(venv, loop, chunk)
    assert metrics["feedback/oversight/judge_labels"] == 60
    assert 5 <= metrics["feedback/oversight/spot_checks"] <= 25
    # The judge prefers the first segment on equal returns, the human calls it a tie: the only disagreements.
    assert metrics["feedback/oversight/disagreement_rate"] <= 0.5
    assert {r.rater for r in loop.rows} == {"constitution:c", "sim:h"}


def test_answers_people_gave_in_the_terminal_are_trained_on(line_walk, tmp_path):
    loop = make_loop(config(), run_dir=tmp_path)
    venv = make_venv(line_walk, loop)
    run_chunk(venv, loop, 0)
    folder = stage_dir(tmp_path, "physics walk")
    asked = list(read_jsonl(folder / "queries.jsonl"))[:3]
    answers = [Preference(a=q.a, b=q.b, label=1.0, rater="human:ann", query_id=q.query_id) for q in asked]
    answers.append(Preference(a=asked[0].a, b=asked[0].b, label=None, rater="human:bob", query_id=asked[0].query_id))
    write_jsonl(folder / "human.jsonl", answers)
    metrics, _ = run_chunk(venv, loop, 1)
    assert metrics["feedback/human_answers"] == 3
    metrics, _ = run_chunk(venv, loop, 2)
    assert metrics["feedback/human_answers"] == 0  # each answer is used once


def test_config_rejects_unknown_keys_and_inconsistent_segments():
    with pytest.raises(ValueError, match="min_segment_length"):
        FeedbackConfig(segment_length=5, min_segment_length=6)
    with pytest.raises(ValueError, match="distinct"):
        FeedbackConfig(raters=[RaterConfig(name="x"), RaterConfig(name="x")])
