"""The LM agent end to end: rollouts, PPO's first-minibatch ratio, learning a bandit in words and a physics level,
save/load and exact resume."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv
from upbringing.agents.lm import LMAgent, LMConfig
from upbringing.agents.lm.ppo import PPOTrainer, RatioCheckError, compute_gae
from upbringing.agents.lm.rollout import collect
from upbringing.agents.lm.tiny import build_tiny
from upbringing.envs.contract import check_info


class WordBandit(gym.Env):
    """A two-armed bandit in words: the right lever pays 1 with probability 0.8, the left with 0.2.

    One step per episode; ``success`` is choosing the better lever. Reports ``info["cost"] = 1`` when the left
    lever is pulled (for the rollout's cost bookkeeping).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (Gymnasium declares an instance attribute)

    def __init__(self, max_steps: int = 1) -> None:
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.max_steps = max_steps

    def _info(self) -> dict:
        return {
            "text": "Two levers stand before you. One of them pays more often.",
            "action_texts": ["pull the left lever", "pull the right lever"],
            "action_mask": np.ones(2, dtype=np.int8),
            "events": {},
        }

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), self._info()

    def step(self, action):
        self.t += 1
        reward = float(self.np_random.random() < (0.8 if action == 1 else 0.2))
        info = self._info()
        info["success"] = bool(action == 1)
        info["cost"] = float(action == 0)
        info["costs"] = {"left": float(action == 0)}
        return np.zeros(1, np.float32), reward, self.t >= self.max_steps, False, info


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return str(build_tiny(tmp_path_factory.mktemp("cache")))


def _venv(n: int = 4, seed: int = 0, **kwargs) -> DummyVecEnv:
    venv = DummyVecEnv([lambda: gym.wrappers.TimeLimit(WordBandit(**kwargs), 3) for _ in range(n)])
    venv.seed(seed)
    return venv


def test_bandit_keeps_the_info_contract():
    env = WordBandit()
    _, info = env.reset(seed=0)
    check_info(info, 2, (), at_reset=True)
    check_info(env.step(1)[4], 2, ())


def test_gae_matches_a_hand_computation():
    rewards = np.array([[1.0], [0.0], [2.0]], np.float32)
    values = np.array([[0.5], [0.2], [0.1]], np.float32)
    dones = np.array([[False], [True], [False]])
    adv, ret = compute_gae(rewards, values, dones, np.array([0.3], np.float32), gamma=0.9, gae_lambda=0.8)
    d2 = 2.0 + 0.9 * 0.3 - 0.1
    d1 = 0.0 - 0.2  # the episode ended: no bootstrap
    d0 = 1.0 + 0.9 * 0.2 - 0.5
    assert np.allclose(adv[:, 0], [d0 + 0.72 * d1, d1, d2])
    assert np.allclose(ret, adv + values)


def test_collect_one_forward_per_step_costs_and_time_limit_bootstrap(tiny_path):
    agent = LMAgent(LMConfig(model=tiny_path, device="cpu", history_window=1), seed=0)
    venv = _venv(n=3, max_steps=100)  # the 3-step time limit truncates every episode
    rollouts = collect(agent.policy, venv, 7, generator=torch.Generator().manual_seed(0))
    assert rollouts.actions.shape == (7, 3) and rollouts.n_forwards == 7 + 1
    assert np.array_equal(rollouts.costs, (rollouts.actions == 0).astype(np.float32))
    assert np.array_equal(rollouts.cost_terms["left"], rollouts.costs)
    assert np.array_equal(rollouts.dones[:, 0], [False, False, True, False, False, True, False])
    assert np.all(rollouts.terminal_values[rollouts.dones] != 0) and np.all(
        rollouts.terminal_values[~rollouts.dones] == 0
    )
    assert [e["length"] for e in rollouts.episodes] == [3] * 6
    # The history window restarts with each episode: the first step's prompt has no earlier turn.
    assert "Earlier:" not in rollouts.queries[3][0].prompt and "Earlier:" in rollouts.queries[4][0].prompt


def test_ratio_is_one_on_the_first_minibatch_and_the_check_catches_a_mismatch(tiny_path):
    config = LMConfig(model=tiny_path, device="cpu", n_steps=8, minibatch_size=8, grad_accum_steps=2)
    agent = LMAgent(config, seed=0)
    rollouts = collect(agent.policy, _venv(), 8, generator=torch.Generator().manual_seed(0))
    metrics = agent.trainer.update(rollouts, np.random.default_rng(0))
    assert metrics["train/ratio_check_max_dev"] < 1e-5
    assert metrics["train/minibatch_steps"] > 0 and np.isfinite(metrics["train/value_loss"])
    rollouts.logprobs += 0.1  # as if the rollout had scored actions differently
    with pytest.raises(RatioCheckError):
        PPOTrainer(agent.policy, config).update(rollouts, np.random.default_rng(0))


def test_separate_learning_rates_for_lm_and_value_head(tiny_path):
    agent = LMAgent(LMConfig(model=tiny_path, device="cpu", lr_lm=1e-5, lr_value_head=3e-3), seed=0)
    groups = {g["name"]: g for g in agent.trainer.optimizer.param_groups}
    assert groups["lm"]["lr"] == 1e-5 and groups["value_head"]["lr"] == 3e-3
    assert len(groups["value_head"]["params"]) == 2


def _p_right(agent: LMAgent) -> float:
    info = WordBandit()._info()
    with torch.no_grad():
        return agent.policy.evaluate([agent.policy.prompts.query(info)]).log_probs.exp()[0, 1].item()


@pytest.mark.slow
def test_ppo_learns_the_word_bandit(tiny_path):
    agent = LMAgent(LMConfig(model=tiny_path, device="cpu"), seed=0)
    venv = DummyVecEnv([WordBandit for _ in range(8)])
    venv.seed(0)
    assert _p_right(agent) < 0.9
    metrics = agent.learn(venv, 4096)
    assert _p_right(agent) >= 0.9
    assert metrics["train/env_steps"] == 4096 and metrics["train/forwards_per_step"] < 1.1


def test_save_load_restores_distributions_and_resumes_bit_identically(tiny_path, tmp_path):
    config = LMConfig(model=tiny_path, device="cpu", n_steps=4, minibatch_size=8)
    infos = [WordBandit()._info()]

    def chunk(agent: LMAgent, index: int) -> dict:
        venv = _venv(seed=100 + index)
        return agent.learn(venv, 16)

    straight = LMAgent(config, seed=3)
    chunk(straight, 0)
    chunk(straight, 1)

    first = LMAgent(config, seed=3)
    chunk(first, 0)
    first.save(tmp_path / "ckpt")
    assert {p.name for p in (tmp_path / "ckpt").iterdir()} == {
        "weights.safetensors",
        "optimizer.safetensors",
        "rng.safetensors",
        "state.json",
    }
    resumed = LMAgent(config, seed=99)  # a different seed: everything must come from the checkpoint
    resumed.load(tmp_path / "ckpt")
    query = [resumed.policy.prompts.query(infos[0])]
    with torch.no_grad():
        assert torch.equal(first.policy.evaluate(query).logits, resumed.policy.evaluate(query).logits)
    assert resumed.num_timesteps == first.num_timesteps == 16
    chunk(resumed, 1)
    for (name, a), b in zip(straight.policy.trainable_state().items(), resumed.policy.trainable_state().values()):
        assert torch.equal(a, b), name
    obs = np.zeros((1, 1), np.float32)
    assert np.array_equal(straight.act(obs, infos * 1), resumed.act(obs, infos * 1))


def test_load_refuses_a_checkpoint_of_another_model(tiny_path, tmp_path):
    agent = LMAgent(LMConfig(model=tiny_path, device="cpu"), seed=0)
    agent.save(tmp_path / "ckpt")
    other = LMAgent(LMConfig(model=tiny_path, device="cpu", architecture="causal", lora={"enabled": False}), seed=0)
    other.load(tmp_path / "ckpt")  # same setup loads
    state = (tmp_path / "ckpt" / "state.json").read_text().replace(tiny_path, "/elsewhere")
    (tmp_path / "ckpt" / "state.json").write_text(state)
    with pytest.raises(ValueError, match="different model"):
        other.load(tmp_path / "ckpt")


def test_act_reads_text_respects_masks_and_episode_starts(tiny_path):
    agent = LMAgent(LMConfig(model=tiny_path, device="cpu", history_window=2), seed=0)
    info = WordBandit()._info()
    info["action_mask"] = np.array([0, 1], dtype=np.int8)
    obs = np.zeros((5, 1), np.float32)
    assert agent.act(obs, [info] * 5).tolist() == [1] * 5
    assert agent._act_history.turns(0)  # remembered for the next step ...
    agent.act(obs, [info] * 5, deterministic=True, episode_starts=[True, False, False, False, False])
    assert len(agent._act_history.turns(0)) == 1 and len(agent._act_history.turns(1)) == 2


def _evaluate_success(agent: LMAgent, env_id: str, level: dict, episodes: int = 100) -> float:
    """Greedy success on held-out (``split="eval"``) episodes."""
    from upbringing import envs

    env = envs.make(env_id, **level, split="eval")
    wins = 0
    for episode in range(episodes):
        obs, info = env.reset(seed=10_000 + episode)
        while True:
            action = agent.act(obs[None], [info], deterministic=True)[0]
            obs, _, terminated, truncated, info = env.step(int(action))
            if terminated or truncated:
                wins += bool(info.get("success"))
                break
    return wins / episodes


@pytest.mark.slow
def test_ppo_learns_physics_object_permanence_level_0(tiny_path):
    """The tiny LM, reading the scene as text, learns where to reach for a block that slid behind a screen
    (ObjectPermanence-v0 level 0) within 6,144 env steps with the quickstart's settings (4 epochs, lr 1e-3, options
    not listed); scored on held-out configurations."""
    from upbringing import envs

    env_spec = envs.spec("physics/ObjectPermanence-v0")
    level = dict(env_spec.levels[0])
    venv = DummyVecEnv([lambda: envs.make(env_spec.id, **level) for _ in range(8)])
    venv.seed(0)
    config = LMConfig(model=tiny_path, device="cpu", list_options=False, n_epochs=4, lr_lm=1e-3)
    agent = LMAgent(config, seed=0)
    assert _evaluate_success(agent, env_spec.id, level) < 0.5  # not solved before training
    agent.learn(venv, 6144)
    assert _evaluate_success(agent, env_spec.id, level) >= 0.9
