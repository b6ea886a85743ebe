"""LoRA through peft: only the adapters and the value head train, and checkpoints hold only those."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from helpers.toy_envs import Levers
from safetensors.torch import load_file
from stable_baselines3.common.vec_env import DummyVecEnv
from upbringing.agents.lm import LMAgent, LMConfig
from upbringing.agents.lm.tiny import build_tiny

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("peft") is None, reason="needs the optional 'lora' extra"),
    pytest.mark.slow,  # importing peft takes several seconds
]


def test_lora_trains_adapters_only_and_round_trips(tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = LMConfig(
            model=str(build_tiny(tmp_path / "cache")), device="cpu", lora={"enabled": True, "r": 4}, n_steps=8
        )
        agent = LMAgent(config, seed=0)
        lm_names = [n for n, _ in agent.policy.lm_parameters()]
        assert lm_names and all("lora_" in n for n in lm_names)
        frozen = {n: p.clone() for n, p in agent.policy.lm.named_parameters() if not p.requires_grad}
        venv = DummyVecEnv([Levers for _ in range(4)])
        venv.seed(0)
        metrics = agent.learn(venv, 64)
        assert metrics["train/ratio_check_max_dev"] < 1e-5
        assert all(torch.equal(p, frozen[n]) for n, p in agent.policy.lm.named_parameters() if n in frozen)
        agent.save(tmp_path / "ckpt")
        saved = load_file(str(tmp_path / "ckpt" / "weights.safetensors"))
        assert set(saved) == set(agent.policy.trainable_state())
        other = LMAgent(config, seed=1)
        other.load(tmp_path / "ckpt")
        query = [agent.policy.prompts.query(Levers.info())]
        with torch.no_grad():
            assert torch.equal(agent.policy.evaluate(query).logits, other.policy.evaluate(query).logits)
    finally:
        torch.set_num_threads(before)
