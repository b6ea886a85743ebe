"""Exact action scoring: packed log-probabilities equal the unbatched reference, spans, normalisation, masking,
the value head's single pass, and the offline tiny model."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel
from upbringing.agents.lm.config import LMConfig
from upbringing.agents.lm.policy import CausalLMPolicy
from upbringing.agents.lm.prompt import EpisodeHistory, PromptFormat, Query
from upbringing.agents.lm.scoring import JointTokenizer, pack, reference_logprob, score_naive, score_packed, to_matrix
from upbringing.agents.lm.tiny import build_tiny

QUERIES = [
    # Candidates sharing long prefixes, one masked out.
    Query(
        "Now: A red block sits on a blue block.\nOptions: push the red block; push the red ball.\nYou choose:",
        ("push the red block", "push the red ball", "push the red block gently", "wait"),
        (True, True, True, False),
    ),
    # A much longer prompt (so the batch is padded) and an action made of unseen characters.
    Query(
        "Earlier: The village shares a lake with many fish.\nYou chose: take two fish\n"
        "Now: The lake has fewer fish than last year. Each family may fish a little or a lot.\nYou choose:",
        ("take two fish", "take none", "Zqx 42!"),
        (True, True, True),
    ),
    Query("Now: Mia found a wallet.\nYou choose:", ("keep it", "return it"), (True, True)),
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(tiny_dir)


def _reference(model, tokenizer, queries):
    return torch.tensor(
        [
            [reference_logprob(model, tokenizer, q.prompt, a) if ok else -math.inf for a, ok in zip(q.actions, q.mask)]
            + [-math.inf] * (4 - len(q.actions))
            for q in queries
        ]
    )


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_packed_logprobs_equal_unbatched_reference(tiny, padding_side):
    model, tokenizer = tiny
    packed = pack(JointTokenizer(tokenizer), QUERIES, pad_id=tokenizer.pad_token_id, padding_side=padding_side)
    assert packed.input_ids.shape[0] == len(QUERIES)
    with torch.no_grad():
        logprobs, _ = score_packed(model, packed)
    got = to_matrix(logprobs, packed)
    want = _reference(model, tokenizer, QUERIES)
    assert torch.equal(torch.isinf(got), torch.isinf(want))
    finite = torch.isfinite(want)
    assert (got[finite] - want[finite]).abs().max() < 1e-4
    # Shared-prefix candidates still get distinct, individually correct scores.
    assert got[0, 0] != got[0, 1] and got[0, 0] != got[0, 2]


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_candidates_sharing_a_prefix_share_its_tokens_and_keep_exact_scores(tiny, padding_side):
    """Sixteen pushes that differ only in side and speed: the tree holds each distinct token prefix once, so the
    row is much shorter than prompt + every action, and each candidate still scores as if it were alone."""
    model, tokenizer = tiny
    joint = JointTokenizer(tokenizer)
    actions = tuple(f"push the red block to the {('left', 'right')[i % 2]} at {1 + i // 2} m/s" for i in range(16))
    queries = [Query("Now: A red block rests on a table.\nYou choose:", actions, (True,) * 16), QUERIES[2]]
    packed = pack(joint, queries, pad_id=tokenizer.pad_token_id, padding_side=padding_side)
    encoded = joint.encode([(queries[0].prompt, a) for a in actions])
    prefixes = {e.ids[e.start : e.start + n] for e in encoded for n in range(1, len(e.ids) - e.start + 1)}
    prompt_len = encoded[0].start
    assert int((packed.segment[0] >= 0).sum()) == prompt_len + len(prefixes)
    assert len(prefixes) < sum(len(e.ids) - e.start for e in encoded) / 2
    with torch.no_grad():
        got = to_matrix(score_packed(model, packed)[0], packed)
    for qi, q in enumerate(queries):
        want = torch.tensor([reference_logprob(model, tokenizer, q.prompt, a) for a in q.actions])
        assert (got[qi, : len(q.actions)] - want).abs().max() < 1e-4


def test_other_architectures_and_the_naive_scorer_agree(tiny):
    """A GPT-2 (absolute positions) built from a config scores exactly too; the naive K-forward scorer matches."""
    _, tokenizer = tiny
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(
        GPT2Config(vocab_size=len(tokenizer), n_embd=64, n_layer=2, n_head=4, n_positions=256, bos_token_id=0)
    ).eval()
    joint = JointTokenizer(tokenizer)
    packed = pack(joint, QUERIES, pad_id=tokenizer.pad_token_id, padding_side="left")
    with torch.no_grad():
        got = to_matrix(score_packed(gpt2, packed)[0], packed)
        naive = score_naive(gpt2, joint, QUERIES[1])
    want = _reference(gpt2, tokenizer, QUERIES)
    finite = torch.isfinite(want)
    assert (got[finite] - want[finite]).abs().max() < 1e-4
    assert (naive - want[1, :3]).abs().max() < 1e-4


def test_spans_decode_back_to_the_action_text(tiny):
    _, tokenizer = tiny
    packed = pack(JointTokenizer(tokenizer), QUERIES, pad_id=tokenizer.pad_token_id)
    decoded = [tokenizer.decode(list(ids)) for ids in packed.span_ids]
    expected = [q.actions[a] for q in QUERIES for a in q.valid]
    assert [d.strip() for d in decoded] == expected
    assert all(d == " " + e for d, e in zip(decoded, expected))  # the span is exactly the continuation


def test_span_comes_from_offsets_when_a_token_spans_the_boundary():
    """A tokenizer that merges across the prompt/action boundary: the span is read from offsets, the shared prompt
    shrinks to the common prefix, and packed scores still equal the reference."""
    from tokenizers import Tokenizer, models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"x": 0, "b": 1, " ": 2, "c": 3, "d": 4, "b ": 5, "b c": 6, "<pad>": 7}
    raw = Tokenizer(models.BPE(vocab, [("b", " "), ("b ", "c")]))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>")
    joint = JointTokenizer(tok)
    merged, plain = joint.encode([("xb", "c"), ("xb", "d")])
    assert merged.ids == (0, 6) and merged.start == 1  # "b c" straddles the boundary: it is in the span
    assert plain.ids == (0, 5, 4) and plain.start == 1
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    model = LlamaForCausalLM(config).eval()
    query = Query("xb", ("c", "d"), (True, True))
    packed = pack(joint, [query], pad_id=7)
    with torch.no_grad():
        got = to_matrix(score_packed(model, packed)[0], packed)
    want = torch.tensor([[reference_logprob(model, tok, "xb", a) for a in ("c", "d")]])
    assert (got - want).abs().max() < 1e-5


def test_normalisations_and_temperature(tiny_dir, tiny):
    model, tokenizer = tiny
    queries = QUERIES[:2]
    sums = _reference(model, tokenizer, queries)
    for how in ("sum", "token_mean", "word_mean"):
        config = LMConfig(model=str(tiny_dir), normalization=how, temperature=2.0, device="cpu")
        policy = CausalLMPolicy(config, seed=0, model=model, tokenizer=tokenizer)
        with torch.no_grad():
            out = policy.evaluate(queries)
        for qi, q in enumerate(queries):
            for a in q.valid:
                n_tokens = len(tokenizer(" " + q.actions[a], add_special_tokens=False)["input_ids"])
                divisor = {"sum": 1, "token_mean": n_tokens, "word_mean": len(q.actions[a].split())}[how]
                assert out.logits[qi, a].item() == pytest.approx(sums[qi, a].item() / divisor / 2.0, abs=1e-4)
        assert torch.allclose(out.scores[torch.isfinite(sums)], sums[torch.isfinite(sums)], atol=1e-4)


def test_masked_actions_have_zero_probability_and_are_never_sampled(tiny_dir, tiny):
    model, tokenizer = tiny
    policy = CausalLMPolicy(LMConfig(model=str(tiny_dir), device="cpu"), seed=0, model=model, tokenizer=tokenizer)
    with torch.no_grad():
        out = policy.evaluate([QUERIES[0]] * 64)
    probs = out.log_probs.exp()
    assert torch.all(probs[:, 3] == 0) and torch.allclose(probs.sum(-1), torch.ones(64))
    assert 3 not in out.sample(torch.Generator().manual_seed(0)).tolist()
    assert torch.isfinite(out.entropy()).all()


def test_one_forward_gives_distribution_and_value_at_the_last_prompt_token(tiny_dir, tiny):
    model, tokenizer = tiny
    policy = CausalLMPolicy(LMConfig(model=str(tiny_dir), device="cpu"), seed=0, model=model, tokenizer=tokenizer)
    calls = []
    handle = policy.lm.register_forward_hook(lambda *args: calls.append(1))
    try:
        with torch.no_grad():
            out = policy.evaluate(QUERIES)
    finally:
        handle.remove()
    assert len(calls) == 1
    for qi, q in enumerate(QUERIES):
        enc = JointTokenizer(tokenizer).encode([(q.prompt, q.actions[0])])[0]
        with torch.no_grad():
            hidden = model(torch.tensor([enc.ids[: enc.start]]), output_hidden_states=True).hidden_states[-1][0, -1]
            assert out.values[qi].item() == pytest.approx(policy.value_head(hidden).item(), abs=1e-5)


def test_prompt_is_bounded_by_history_window_and_token_cap(tiny):
    _, tokenizer = tiny
    fmt = PromptFormat(history_window=2)
    history = EpisodeHistory(1, window=2)
    info = {"text": "The tower is tall.", "action_texts": ["push", "wait"], "action_mask": [1, 0]}
    for step in range(50):
        history.push(0, f"Step {step}: the tower is tall.", "wait")
    query = fmt.query(info, history.turns(0))
    assert query.prompt.count("Earlier:") == 2 and "Step 49" in query.prompt and "Step 47" not in query.prompt
    assert query.mask == (True, False) and "Options: push." in query.prompt
    history.reset(0)
    assert "Earlier" not in fmt.query(info, history.turns(0)).prompt
    long_query = Query("word " * 500 + "\nYou choose:", ("push", "wait"), (True, True))
    packed = pack(JointTokenizer(tokenizer), [long_query], pad_id=0, max_prompt_tokens=32)
    assert (packed.segment[0] == 0).sum() == 32


def test_tiny_model_builds_deterministically_and_loads_like_any_model(tiny_dir, tmp_path):
    again = build_tiny(tmp_path)
    assert again != tiny_dir
    first, second = load_file(str(tiny_dir / "model.safetensors")), load_file(str(again / "model.safetensors"))
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    assert build_tiny(tmp_path) == again  # cached: no rebuild
    model = AutoModelForCausalLM.from_pretrained(again)
    assert 0.1e6 < sum(p.numel() for p in model.parameters()) < 5e6


def test_packed_attention_runs_the_fused_sdpa_kernel_with_one_mask_for_all_layers(tiny_dir):
    # What keeps the PPO update's memory linear in the packed tokens: the model is loaded with SDPA, the fused
    # kernel runs (never the math fallback, which materialises [B, heads, L, L] probabilities per layer), and the
    # backward pass keeps one [B, 1, L, L] mask shared by every layer, not a copy per layer.
    policy = CausalLMPolicy(LMConfig(model=str(tiny_dir), device="cpu"), seed=0)
    assert policy.lm.config._attn_implementation == "sdpa"
    packed = pack(policy.joint, QUERIES, pad_id=policy.pad_id)
    length = packed.input_ids.shape[1]
    saved: list[torch.Tensor] = []

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t), torch.profiler.profile() as prof:
        logprobs, hidden = score_packed(policy.lm, packed)
        (logprobs.sum() + hidden.sum()).backward()
    ops = {event.key for event in prof.key_averages()}
    assert "aten::_scaled_dot_product_flash_attention_for_cpu" in ops
    assert "aten::_scaled_dot_product_flash_attention_for_cpu_backward" in ops
    assert "aten::_scaled_dot_product_attention_math" not in ops
    quadratic = {t.untyped_storage().data_ptr() for t in saved if t.dim() >= 2 and t.shape[-2:] == (length, length)}
    assert len(quadratic) == 1
    assert policy.lm.config.num_hidden_layers > 1
