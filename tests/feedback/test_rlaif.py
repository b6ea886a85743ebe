"""RL from AI feedback in the loop: the constitution labels, humans spot-check and win, disagreement raises an alarm."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv
from upbringing.constitutions import ConstitutionLabeler, load_constitution
from upbringing.feedback.answers import HUMAN, load_queries, record_answer
from upbringing.feedback.config import FeedbackConfig, RewardModelConfig
from upbringing.feedback.features import StepFeaturizer
from upbringing.feedback.loop import FeedbackLoop

SMALL = RewardModelConfig(ensemble_size=2, hidden=(16,), epochs=5, min_steps=20)


def make(line_walk, run_dir, events, **overrides):
    cfg = FeedbackConfig(
        **{
            "budget": 40,
            "per_chunk": 0.5,
            "segment_length": 4,
            "labeler": "constitution",
            "reward_model": SMALL,
            # the rater values progress only; the constitution (minimal: a broken vase harms) sees the vase only
            "raters": [{"name": "parent"}],
            **overrides,
        }
    )
    judge = ConstitutionLabeler(load_constitution("minimal"), seed=0).label
    loop = FeedbackLoop(
        cfg,
        StepFeaturizer(obs_dim=2, n_actions=3),
        stage="walk",
        run_dir=run_dir,
        seed=1,
        judge=judge,
        on_event=lambda kind, **data: events.append((kind, data)),
    )
    venv = loop.recorder(DummyVecEnv([lambda: loop.wrap(line_walk(size=5, goal=7)) for _ in range(2)]))
    return loop, venv


def play(loop, venv, chunk):
    venv.seed(chunk)
    venv.reset()
    rng = np.random.default_rng(chunk)
    for _ in range(40):
        venv.step(rng.integers(0, 3, 2))
    return loop.end_chunk()


def test_constitution_labels_raters_spot_check_and_the_alarm_fires(line_walk, tmp_path, caplog):
    events: list = []
    loop, venv = make(line_walk, tmp_path, events, spot_check=0.5, disagreement_alarm=0.2, disagreement_min_checks=3)
    with caplog.at_level(logging.WARNING, logger="upbringing.feedback.loop"):
        metrics = play(loop, venv, 0)
    raters = {r.rater for r in loop.rows}
    assert raters == {"constitution:minimal", "sim:parent"}
    assert metrics["feedback/oversight/judge_labels"] == 20
    assert 0 < metrics["feedback/oversight/spot_checks"] < 20
    # every judge row names the principle it was decided by; disagreement is logged per principle
    principles = {r.meta["principle"] for r in loop.rows if r.rater.startswith("constitution:")}
    assert principles and all(f"feedback/oversight/{p}/compared" in metrics for p in principles)
    # on checked pairs the rater's answer is trained on, never the judge's
    checked = {r.query_id for r in loop.rows if r.meta.get("spot_check")}
    trained = {(p.query_id, p.rater) for p in loop._train}
    assert all((q, "constitution:minimal") not in trained for q in checked)
    assert all(
        (q, "sim:parent") in trained
        for q in checked
        if any(r.query_id == q and r.label is not None for r in loop.rows if r.rater == "sim:parent")
    )
    # the judge sees ties on vase-free pairs that the progress-loving parent does not: they disagree, the alarm fires
    assert metrics["feedback/oversight/disagreement_rate"] > 0.2
    assert metrics["feedback/oversight/alarm"] == 1.0 and metrics["feedback/oversight/alarms"] >= 1
    assert [k for k, _ in events] == ["oversight_alarm"] * len(events) and events
    assert events[0][1]["stage"] == "walk" and events[0][1]["disagreement_rate"] > 0.2
    assert any("oversight alarm" in r.message for r in caplog.records)
    # the alarm fires when the rate crosses the threshold, not again every chunk while it stays above
    n = len(events)
    play(loop, venv, 1)
    assert all(e[1]["principle"] not in {x[1]["principle"] for x in events[:n]} for e in events[n:])
    assert loop.summary()["oversight_alarms"] == metrics["feedback/oversight/alarms"] + len(events) - n


def test_a_persons_answer_replaces_the_judges_label(line_walk, tmp_path):
    events: list = []
    loop, venv = make(line_walk, tmp_path, events)  # no spot checks: the judge labels everything
    play(loop, venv, 0)
    query = load_queries(tmp_path)[0]
    judged = next(p for p in loop._train if p.query_id == query.query_id)
    answer = "b" if judged.label == 1.0 else "a"  # the person disagrees with the judge
    record_answer(query, "human:ann", answer, answered_in="terminal")
    assert (query.folder / HUMAN).exists()
    metrics = play(loop, venv, 1)
    on_query = [p.rater for p in loop._train if p.query_id == query.query_id]
    assert on_query == ["human:ann"]
    assert metrics["feedback/human_answers"] == 1.0
    assert metrics["feedback/oversight/compared"] == 1.0 and metrics["feedback/oversight/disagreements"] == 1.0


def test_resume_keeps_the_oversight_counts(line_walk, tmp_path):
    events: list = []
    loop, venv = make(line_walk, None, events, spot_check=0.5)
    play(loop, venv, 0)
    again, _ = make(line_walk, None, [], spot_check=0.5)
    again.load_state_dict(loop.state_dict())
    assert again.oversight.stats == loop.oversight.stats


def test_spot_check_without_an_ai_labeller_is_an_error():
    with pytest.raises(ValueError, match=r"spot_check .* needs an AI labeller"):
        FeedbackConfig(spot_check=0.1)
