"""The solo views' reward scale lets an off-the-shelf SB3 PPO learn against a fixed population."""

from __future__ import annotations

import numpy as np
import pytest
from upbringing import envs


@pytest.fixture
def one_torch_thread():
    """A tiny MLP trains fastest on one thread; more only contend for the CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_ppo_learns_to_cooperate_with_tit_for_tat(one_torch_thread) -> None:
    from stable_baselines3 import PPO

    kwargs = {"opponents": ["tit_for_tat"], "horizon": 10, "text_view": False}
    model = PPO(
        "MlpPolicy",
        envs.make("social/IteratedPDSolo-v0", **kwargs),
        n_steps=512,
        batch_size=128,
        n_epochs=5,
        learning_rate=3e-3,
        seed=0,
    )
    model.learn(4096)

    env = envs.make("social/IteratedPDSolo-v0", **kwargs)
    returns, cooperation = [], []
    for episode in range(5):
        obs, _ = env.reset(seed=100 + episode)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(int(model.predict(obs, deterministic=True)[0]))
            total += reward
            done = terminated or truncated
        returns.append(total)
        cooperation.append(info["social"]["cooperation_rate"])
    # Per round, mutual cooperation pays 3/5 and mutual defection 1/5: always defecting earns 1 + 9 * 0.2 = 2.8,
    # a random policy about 5, cooperating throughout 6, defecting only in the known last round 6.4.
    assert np.mean(returns) >= 5.9
    assert np.mean(cooperation) >= 0.85
