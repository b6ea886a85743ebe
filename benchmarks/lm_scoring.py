"""LM action scoring: one shared prompt pass for K candidates vs the naive K forwards, exactness, PPO throughput.

``python -m benchmarks lm_scoring [--json] [--envs 8] [--threads N] [--quick]``

Figures (seconds are medians of several timed repeats, for a batch of ``--envs`` envs with the same prompt):

- ``k2_s``, ``k8_s``, ``k16_s``: one packed forward scoring K = 2, 8, 16 candidates (goal ``k16_s <= 1.5 * k2_s``);
  the candidates are pushes that differ in side and speed, as an env's actions do, so their shared leading tokens
  are encoded once (the prefix tree of :mod:`upbringing.agents.lm.scoring`); ``tree_tokens_k16`` counts the tokens the
  tree holds against ``action_tokens_k16``, the sum of the 16 actions' lengths;
- ``naive_k8_s``: one full forward of ``prompt + action`` per candidate, K = 8 (goal ``>= 3 * k8_s``);
- ``forwards_per_step``: policy forward calls per env step during rollout collection (goal 1; the bootstrap pass at
  the end of each rollout adds ``1 / n_steps``);
- ``max_logprob_err``: largest |packed - unbatched reference| log-probability, left and right padding;
- ``ppo_env_steps_per_s``: env steps per second of PPO (collection + updates, default settings: 2 epochs) with the
  timing model (``model_params`` parameters, built from a config) on 8 envs of physics/Collision-v0 level 0;
  ``tiny_ppo_env_steps_per_s``: the same with the default tiny model.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

# A physics situation of realistic length (a Collision-v0 text), used when no env text can be harvested.
FALLBACK_TEXT = (
    "A table 8.0 m long spans x = 0 to 8.0 m, 1.0 m above the floor; a block that slides past either end falls off. "
    "Friction slows a sliding block by 2.9 m/s every second, so a block moving at v m/s slides v²/5.9 m before it "
    "stops. The red block (glass, 1.0 kg) rests at x = 4.0 m. A green target zone spans x = 5.41-5.81 m, to the "
    "right of the red block. Goal: make the red block stop inside the zone by pushing it."
)


def _actions(k: int) -> tuple[str, ...]:
    sides = ("left", "right")
    return tuple(f"push the red block to the {sides[i % 2]} at {1.0 + 0.5 * (i // 2):.1f} m/s" for i in range(k))


def _timing_model(tokenizer: Any, seed: int = 0) -> Any:
    """A ~11M-parameter Llama-style model built from a config (6 layers, width 384) on the tiny tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=384,
        intermediate_size=1024,
        num_hidden_layers=6,
        num_attention_heads=6,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(config).eval()


def _time(fn: Any, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _env_text() -> str:
    try:
        from upbringing import envs

        env_spec = envs.spec("physics/Collision-v0")
        env = envs.make(env_spec.id, **env_spec.levels[0])
        return env.reset(seed=0)[1]["text"]
    except Exception:  # the env family may be absent or changing; a fixed text of the same kind will do
        return FALLBACK_TEXT


def _ppo_rate(model_path: str, n_envs: int, steps: int, **overrides: Any) -> float:
    from stable_baselines3.common.vec_env import DummyVecEnv
    from upbringing import envs
    from upbringing.agents.lm import LMAgent, LMConfig

    env_spec = envs.spec("physics/Collision-v0")
    venv = DummyVecEnv([lambda: envs.make(env_spec.id, **env_spec.levels[0]) for _ in range(n_envs)])
    venv.seed(0)
    agent = LMAgent(LMConfig(model=model_path, device="cpu", **overrides), seed=0)
    agent.learn(venv, 1)  # warm-up: one update
    before = agent.num_timesteps
    t0 = time.perf_counter()
    agent.learn(venv, steps)
    return (agent.num_timesteps - before) / (time.perf_counter() - t0)


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks lm_scoring")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON last")
    parser.add_argument("--envs", type=int, default=1, help="envs (copies of the prompt) scored per forward")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per figure")
    parser.add_argument("--ppo-steps", type=int, default=512, help="env steps timed for the tiny model's PPO figure")
    parser.add_argument("--ppo-steps-timing", type=int, default=64, help="env steps timed for the timing model's")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and PPO steps (a smoke run)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats, ppo_steps, ppo_steps_timing = (
        (2, 256, 32) if args.quick else (args.repeats, args.ppo_steps, args.ppo_steps_timing)
    )

    from transformers import AutoTokenizer
    from upbringing.agents.lm.prompt import PromptFormat, Query
    from upbringing.agents.lm.scoring import (
        JointTokenizer,
        pack,
        reference_logprob,
        score_naive,
        score_packed,
        to_matrix,
    )
    from upbringing.agents.lm.tiny import build_tiny

    with tempfile.TemporaryDirectory() as cache:
        tiny_path = build_tiny(Path(cache))
        tokenizer = AutoTokenizer.from_pretrained(tiny_path)
        model = _timing_model(tokenizer)
        n_params = sum(p.numel() for p in model.parameters())
        joint = JointTokenizer(tokenizer)
        fmt = PromptFormat(history_window=0, list_options=False)
        prompt = fmt.query({"text": _env_text(), "action_texts": ["x"]}).prompt
        prompt_tokens = len(tokenizer(prompt)["input_ids"])

        def query(k: int) -> Query:
            return Query(prompt, _actions(k), (True,) * k)

        def packed_fn(k: int):
            queries = [query(k)] * args.envs

            @torch.no_grad()
            def run():
                # Tokenisation is part of the cost, but repeated prompts hit the tokenizer cache as in a rollout.
                return score_packed(model, pack(joint, queries, pad_id=tokenizer.pad_token_id))

            return run

        figures: dict[str, Any] = {}
        for k in (2, 8, 16):
            figures[f"k{k}_s"] = _time(packed_fn(k), repeats)

        @torch.no_grad()
        def naive():
            for _ in range(args.envs):
                score_naive(model, joint, query(8))

        figures["naive_k8_s"] = _time(naive, repeats)

        # Exactness on a mixed batch: different prompt lengths, shared-prefix candidates, both padding sides.
        mixed = [query(16), Query("Now: " + "the tower is tall. " * 3 + "\nYou choose:", _actions(5), (True,) * 5)]
        err = 0.0
        for side in ("left", "right"):
            packed = pack(joint, mixed, pad_id=tokenizer.pad_token_id, padding_side=side)
            with torch.no_grad():
                got = to_matrix(score_packed(model, packed)[0], packed)
            for qi, q in enumerate(mixed):
                for a, text in enumerate(q.actions):
                    err = max(err, abs(got[qi, a].item() - reference_logprob(model, tokenizer, q.prompt, text)))
        figures["max_logprob_err"] = err

        # Forward calls per env step, counted on the model during real rollout collection.
        figures["forwards_per_step"] = _forwards_per_step(str(tiny_path), args.envs)

        timing_dir = Path(cache) / "timing-model"
        model.save_pretrained(timing_dir)
        tokenizer.save_pretrained(timing_dir)
        # The timing model costs ~30x the tiny one per token: time a short run of small updates.
        figures["ppo_env_steps_per_s"] = _ppo_rate(
            str(timing_dir), 8, ppo_steps_timing, lr_lm=1e-4, n_steps=max(1, ppo_steps_timing // 16), minibatch_size=32
        )
        figures["tiny_ppo_env_steps_per_s"] = _ppo_rate(str(tiny_path), 8, ppo_steps)
    figures.update(
        {
            "model_params": n_params,
            "prompt_tokens": prompt_tokens,
            "action_tokens_k16": sum(len(tokenizer(" " + a)["input_ids"]) for a in _actions(16)),
            "tree_tokens_k16": int((pack(joint, [query(16)], pad_id=tokenizer.pad_token_id).segment >= 0).sum())
            - prompt_tokens,
            "envs": args.envs,
            "threads": torch.get_num_threads(),
            "device": "cpu",
        }
    )
    _print_table(figures)
    return figures


def _forwards_per_step(model_path: str, n_envs: int, n_steps: int = 32) -> float:
    from stable_baselines3.common.vec_env import DummyVecEnv
    from upbringing import envs
    from upbringing.agents.lm import LMAgent, LMConfig
    from upbringing.agents.lm.policy import CausalLMPolicy
    from upbringing.agents.lm.rollout import collect

    env_spec = envs.spec("physics/Collision-v0")
    venv = DummyVecEnv([lambda: envs.make(env_spec.id, **env_spec.levels[0]) for _ in range(n_envs)])
    venv.seed(0)
    agent = LMAgent(LMConfig(model=model_path, device="cpu"), seed=0)
    calls: list[int] = []
    policy = agent.policy
    assert isinstance(policy, CausalLMPolicy)  # the default architecture: its forward passes are the LM's
    handle = policy.lm.register_forward_hook(lambda *_: calls.append(1))
    try:
        collect(agent.policy, venv, n_steps, generator=torch.Generator().manual_seed(0))
    finally:
        handle.remove()
    return len(calls) / n_steps


def _print_table(f: dict[str, Any]) -> None:
    rows = [
        ("model parameters", f"{f['model_params'] / 1e6:.1f} M"),
        ("prompt tokens / K=16 action tokens", f"{f['prompt_tokens']} / {f['action_tokens_k16']}"),
        ("K=16 tokens in the prefix tree", str(f["tree_tokens_k16"])),
        (f"score K=2  ({f['envs']} envs, 1 forward)", f"{f['k2_s'] * 1e3:.1f} ms"),
        ("score K=8", f"{f['k8_s'] * 1e3:.1f} ms"),
        ("score K=16", f"{f['k16_s'] * 1e3:.1f} ms  (k16/k2 = {f['k16_s'] / f['k2_s']:.2f}, goal <= 1.5)"),
        ("naive K=8 (one forward per action)", f"{f['naive_k8_s'] * 1e3:.1f} ms  (x{f['naive_k8_s'] / f['k8_s']:.1f})"),
        ("forwards per env step", f"{f['forwards_per_step']:.3f}"),
        ("max |log-prob error|", f"{f['max_logprob_err']:.2e}"),
        ("PPO env steps/s (timing model)", f"{f['ppo_env_steps_per_s']:.1f}"),
        ("PPO env steps/s (default tiny)", f"{f['tiny_ppo_env_steps_per_s']:.1f}"),
        ("torch threads", str(f["threads"])),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main([])
