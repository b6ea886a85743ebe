"""Micro-batches sized from a memory budget, activation checkpointing, and the prompt budget check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.toy_envs import Levers
from upbringing.agents.lm import LMConfig
from upbringing.agents.lm.memory import activation_bytes, micro_batches
from upbringing.agents.lm.policy import CausalLMPolicy
from upbringing.agents.lm.ppo import PPOTrainer
from upbringing.agents.lm.preflight import PromptMeter
from upbringing.agents.lm.tiny import build_tiny


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory) -> str:
    return str(build_tiny(tmp_path_factory.mktemp("cache")))


class _Cfg:
    hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, vocab_size = 64, 192, 2, 2, 4096


def test_micro_batches_fit_the_budget_keep_order_and_honour_grad_accum():
    costs = [(100, 10)] * 6 + [(400, 40)] * 2
    one = activation_bytes(_Cfg, 1, 100, 10)
    parts = micro_batches(costs, _Cfg, budget_bytes=3 * one, min_splits=1)
    assert [j for p in parts for j in p] == list(range(8))  # every sample once, in order
    for p in parts:
        width = max(costs[j][0] for j in p)
        fits = activation_bytes(_Cfg, len(p), width, sum(costs[j][1] for j in p)) <= 3 * one
        assert fits or len(p) == 1  # a sample too big alone still runs, alone
    assert len(parts[0]) == 3 and parts[-1] == [7]
    assert [len(p) for p in micro_batches(costs, _Cfg, None, min_splits=4)] == [2, 2, 2, 2]
    assert len(micro_batches(costs, _Cfg, 10**15, min_splits=2)) == 2  # a large budget: grad_accum_steps decides
    assert activation_bytes(_Cfg, 4, 100, 10, checkpointing=True) < activation_bytes(_Cfg, 4, 100, 10)
    # The fused SDPA kernel keeps no per-layer attention probabilities: long rows cost far less than under eager.
    fused = type("_Fused", (_Cfg,), {"_attn_implementation": "sdpa"})
    assert activation_bytes(fused, 4, 400, 10) < 0.7 * activation_bytes(_Cfg, 4, 400, 10)


def test_memory_budget_splits_ppo_minibatches(tiny_path):
    policy = CausalLMPolicy(LMConfig(model=tiny_path, device="cpu", memory_budget_gb=0.61), seed=0)
    trainer = PPOTrainer(policy, policy.config)
    assert trainer.activation_budget is not None and trainer.activation_budget < 20 * 2**20
    queries = [policy.prompts.query(Levers.info())] * 64
    parts = trainer._micro_batches(np.arange(64), queries)
    assert len(parts) > 1 and sorted(np.concatenate(parts).tolist()) == list(range(64))
    roomy = PPOTrainer(policy, LMConfig(model=tiny_path, device="cpu", memory_budget_gb=64))
    assert len(roomy._micro_batches(np.arange(64), queries)) == 1


def test_activation_checkpointing_gives_the_same_gradients(tiny_path):
    torch.manual_seed(0)
    queries = [Levers.info()] * 3
    grads = []
    for checkpointing in (False, True):
        policy = CausalLMPolicy(LMConfig(model=tiny_path, device="cpu", activation_checkpointing=checkpointing), 0)
        policy.train()  # stays in eval mode but for the checkpointed layers' own flag
        assert not any(m.training for m in policy.lm.modules() if not getattr(m, "gradient_checkpointing", False))
        calls = []
        attn = next(m for n, m in policy.lm.named_modules() if n.endswith("layers.0.self_attn"))
        attn.register_forward_hook(lambda *_, calls=calls: calls.append(1))
        out = policy.evaluate([policy.prompts.query(i) for i in queries])
        (out.log_probs[:, 0].sum() + out.values.sum()).backward()
        assert len(calls) == (2 if checkpointing else 1)  # checkpointed: the layer ran again in the backward pass
        grads.append({n: p.grad.clone() for n, p in policy.lm.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, rtol=1e-5, atol=1e-6, msg=name)


def test_prompt_meter_counts_what_pack_keeps(tiny_path):
    meter = PromptMeter(LMConfig(model=tiny_path))
    info = Levers.info()
    query = meter.format.query(info)
    ids = meter.tokenizer(query.prompt)["input_ids"]
    assert abs(meter.tokens(info) - len(ids)) <= 1  # a boundary merge may take one token into the action
    assert meter.longest([info, {**info, "text": info["text"] * 5}]) > meter.tokens(info)
