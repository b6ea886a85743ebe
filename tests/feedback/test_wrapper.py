"""The FeedbackReward wrapper adds the named term 'feedback' and the logged terms sum to the learner's reward."""

from __future__ import annotations

import numpy as np
import pytest
from upbringing.envs.terms import AddRewardTerms
from upbringing.feedback.config import RewardModelConfig
from upbringing.feedback.features import StepFeaturizer
from upbringing.feedback.reward_model import LearnedReward, RewardEnsemble
from upbringing.feedback.wrapper import FeedbackReward


def trained_scorer(featurizer: StepFeaturizer) -> LearnedReward:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4, featurizer.dim)).astype(np.float32)
    y = rng.normal(size=(64, 4, featurizer.dim)).astype(np.float32)
    mask = np.ones((64, 4), dtype=np.float32)
    model = RewardEnsemble(featurizer.dim, RewardModelConfig(epochs=2, min_steps=0), seed=0)
    model.fit(x, mask, y, mask, (x[..., 0].sum(1) > y[..., 0].sum(1)).astype(np.float32))
    scorer = LearnedReward(featurizer)
    scorer.set_model(model, calibration=x.reshape(-1, featurizer.dim))
    return scorer


class Honesty(AddRewardTerms):
    """A stand-in for a constitution term beneath the feedback wrapper."""

    def terms(self, action, info):
        return {"constitution/honesty": -0.25}


def run(env, steps: int = 20):
    obs, _ = env.reset(seed=3)
    out = []
    for t in range(steps):
        action = t % 3
        before = obs
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((before, action, reward, info))
        if terminated or truncated:
            obs, _ = env.reset()
    return out


@pytest.mark.parametrize("mode", ["oracle", "learned", "mix"])
def test_terms_sum_to_the_reward_in_every_mode(line_walk, mode):
    featurizer = StepFeaturizer(obs_dim=2, n_actions=3)
    scorer = trained_scorer(featurizer)
    env = FeedbackReward(Honesty(line_walk()), scorer, mode=mode, weight=0.5)
    reference = Honesty(line_walk())
    for (before, action, reward, info), (_, _, ref_reward, ref_info) in zip(run(env), run(reference)):
        terms = info["reward_terms"]
        assert reward == pytest.approx(sum(terms.values()))
        env_reward = ref_info["reward_terms"]["env"]
        assert terms["env"] == env_reward and terms["constitution/honesty"] == -0.25
        if mode == "oracle":
            assert set(terms) == {"env", "constitution/honesty"} and reward == pytest.approx(ref_reward)
            continue
        assert terms["feedback"] == pytest.approx(0.5 * scorer(before, action))
        if mode == "learned":
            assert terms["env_removed"] == -env_reward
            assert reward == pytest.approx(terms["feedback"] - 0.25)
        else:
            assert "env_removed" not in terms
            assert reward == pytest.approx(env_reward - 0.25 + terms["feedback"])


def test_untrained_model_adds_zero_and_new_weights_take_effect(line_walk):
    featurizer = StepFeaturizer(obs_dim=2, n_actions=3)
    env = FeedbackReward(line_walk(), LearnedReward(featurizer), mode="mix")
    assert all(info["reward_terms"]["feedback"] == 0.0 for *_, info in run(env, 5))
    env.set_feedback_state(trained_scorer(featurizer).state())
    assert any(info["reward_terms"]["feedback"] != 0.0 for *_, info in run(env, 5))


def test_unknown_mode_is_rejected(line_walk):
    with pytest.raises(ValueError, match="mode"):
        FeedbackReward(line_walk(), LearnedReward(StepFeaturizer(2, 3)), mode="blend")  # type: ignore[arg-type]  # the bad value under test
