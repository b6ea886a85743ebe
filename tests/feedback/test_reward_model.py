"""The Bradley-Terry ensemble learns a known reward, is calibrated, deterministic, and saves/loads exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from upbringing.feedback.config import RewardModelConfig
from upbringing.feedback.data import Segment
from upbringing.feedback.features import StepFeaturizer, step_text
from upbringing.feedback.raters import RaterConfig, SimulatedRater
from upbringing.feedback.reward_model import (
    LearnedReward,
    RewardEnsemble,
    expected_calibration_error,
    pairwise_accuracy,
)

W = np.array([1.0, -0.5, 0.25, 0.75])
LENGTH = 10


def linear_segments(n: int, rng: np.random.Generator) -> list[Segment]:
    out = []
    for _ in range(n):
        obs = rng.normal(size=(LENGTH, len(W)))
        out.append(Segment(obs=obs.tolist(), actions=[0] * LENGTH, rewards=(obs @ W).tolist()))
    return out


def dataset(n: int, rater: SimulatedRater, rng: np.random.Generator, featurizer: StepFeaturizer):
    a, b = linear_segments(n, rng), linear_segments(n, rng)
    labels = np.array([rater.compare(x, y) for x, y in zip(a, b)], dtype=np.float32)
    truth = np.array([float(sum(x.rewards) > sum(y.rewards)) for x, y in zip(a, b)])
    xa, ma = featurizer.batch(a, LENGTH)
    xb, mb = featurizer.batch(b, LENGTH)
    return xa, ma, xb, mb, labels, truth


@pytest.mark.slow
def test_linear_reward_reaches_90_percent_held_out_accuracy_and_is_calibrated():
    rng = np.random.default_rng(0)
    featurizer = StepFeaturizer(obs_dim=len(W))
    rater = SimulatedRater(RaterConfig(beta=5.0), seed=1)  # a Bradley-Terry rater: the model's own assumption
    train = dataset(1000, rater, rng, featurizer)
    held_out = dataset(2000, rater, rng, featurizer)
    model = RewardEnsemble(featurizer.dim, RewardModelConfig(ensemble_size=3), seed=0)
    model.fit(*train[:5], seed=0)
    p_a = model.predict_proba(*held_out[:4]).mean(0)
    assert pairwise_accuracy(p_a, held_out[5]) >= 0.9  # against the hidden utility
    assert pairwise_accuracy(p_a, held_out[4]) >= 0.85  # against the rater's noisy answers
    assert expected_calibration_error(p_a, held_out[4]) < 0.05


def test_ties_teach_equal_returns():
    featurizer = StepFeaturizer(obs_dim=1)
    seg = Segment(obs=[[1.0]], actions=[0], rewards=[0.0])
    other = Segment(obs=[[-1.0]], actions=[0], rewards=[0.0])
    xa, ma = featurizer.batch([seg] * 64, 1)
    xb, mb = featurizer.batch([other] * 64, 1)
    model = RewardEnsemble(1, RewardModelConfig(ensemble_size=2, epochs=30, min_steps=0), seed=0)
    model.fit(xa, ma, xb, mb, np.full(64, 0.5, dtype=np.float32), seed=0)
    assert model.predict_proba(xa[:1], ma[:1], xb[:1], mb[:1]) == pytest.approx(0.5, abs=0.02)


def test_metrics_on_known_predictions():
    labels = np.array([1.0, 0.0, 0.5, 1.0])
    assert pairwise_accuracy(np.array([0.9, 0.2, 0.9, 0.3]), labels) == pytest.approx(2 / 3)  # ties are left out
    # 80% confident and right 80% of the time: calibrated. Always certain and right half the time: ECE 0.5.
    p = np.full(10, 0.8)
    assert expected_calibration_error(p, np.array([1.0] * 8 + [0.0] * 2)) == pytest.approx(0.0)
    assert expected_calibration_error(np.ones(4), np.array([1.0, 0.0, 1.0, 0.0])) == pytest.approx(0.5)


def small_fit(seed: int) -> tuple[RewardEnsemble, tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(0)
    featurizer = StepFeaturizer(obs_dim=len(W))
    data = dataset(128, SimulatedRater(RaterConfig(), seed=0), rng, featurizer)
    model = RewardEnsemble(featurizer.dim, RewardModelConfig(epochs=2, min_steps=0), seed=seed)
    xa, ma, xb, mb, labels = data[:5]
    model.fit(xa, ma, xb, mb, labels, seed=seed)
    return model, data


def test_same_seed_same_model_and_save_load_round_trip(tmp_path):
    a, data = small_fit(seed=3)
    b, _ = small_fit(seed=3)
    c, _ = small_fit(seed=4)
    for (name, ta), tb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(ta, tb), name
    assert not torch.equal(a.weights[0], c.weights[0])
    a.save(tmp_path)
    loaded = RewardEnsemble.load(tmp_path)
    assert loaded.fitted
    np.testing.assert_array_equal(loaded.predict_proba(*data[:4]), a.predict_proba(*data[:4]))


def test_learned_reward_scorer_matches_the_ensemble_and_normalises():
    model, data = small_fit(seed=0)
    featurizer = StepFeaturizer(obs_dim=len(W))
    scorer = LearnedReward(featurizer)
    assert scorer(np.zeros(len(W)), 0) == 0.0  # no model yet: no reward
    steps = data[0].reshape(-1, featurizer.dim)
    scorer.set_model(model, calibration=steps)
    np.testing.assert_allclose(scorer.raw(steps), model.step_rewards(steps), rtol=1e-4, atol=1e-5)
    normalised = scorer.normalised(steps)
    assert normalised.mean() == pytest.approx(0.0, abs=1e-4)
    assert normalised.std() == pytest.approx(1.0, abs=1e-3)
    copy = LearnedReward(featurizer)
    copy.load_state(scorer.state())
    assert copy(steps[0], 0) == pytest.approx(scorer(steps[0], 0))


def test_featurizer_pads_observations_one_hots_actions_and_embeds_texts():
    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return np.array([[len(t), 1.0] for t in texts])

    featurizer = StepFeaturizer(obs_dim=3, n_actions=2, embed=embed, embed_dim=2)
    seg = Segment(obs=[[1.0, 2.0], [3.0, 4.0]], actions=[1, 0], rewards=[0.0, 0.0], texts=["ab", "abcd"])
    x, mask = featurizer.batch([seg], length=4)
    assert x.shape == (1, 4, 7) and mask.tolist() == [[1, 1, 0, 0]]
    np.testing.assert_array_equal(x[0, 0], [1, 2, 0, 0, 1, 2, 1])
    np.testing.assert_array_equal(x[0, 1], [3, 4, 0, 1, 0, 4, 1])
    assert calls == [["ab", "abcd"]]
    with pytest.raises(ValueError, match="larger"):
        featurizer.step([0.0] * 4, 0, "x")
    with pytest.raises(ValueError, match="out of range"):
        featurizer.step([0.0], 2, "x")
    info = {"text": "A ball.", "action_texts": ["push", "wait"]}
    assert step_text(info, 1) == "A ball.\n-> wait"
