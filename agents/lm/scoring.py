"""Exact action scoring with a causal LM: one packed forward scores every candidate of every env.

A candidate's score is the log-probability of its tokens given the prompt, ``sum_t log_softmax(logits)[token_t]``
over the action's token span. The span comes from tokenising ``prompt + separator + action`` jointly (the separator
is the query's: ``" "`` in the plain format, ``""`` at the start of a chat reply) and reading the character offsets
(never from a separately tokenised length), so merges across the boundary cannot shift it.

Packing: for each env the prompt tokens appear once, followed by the candidates' tokens arranged as a prefix tree
(a trie): candidates that begin with the same tokens ("push the red block to the left ..." and "push the red block to
the right ...") share those tokens' columns, and each branch adds only its own tokens. An attention mask lets a
candidate token see the prompt and its own ancestors in the tree only, and its position id is the prompt's length
plus its depth. One forward over ``[B, prompt + tree size]`` thus equals K separate forwards of ``prompt + action``
(the prompt and every shared prefix are encoded once), and the hidden state at the last prompt token feeds the value
head in the same pass. This is the packed-sequence trick of "Efficient Sequence Packing without Cross-contamination"
(Krell et al., 2021) applied to one shared prefix, with the tree attention of SpecInfer (Miao et al., 2024) for the
candidates. The output projection and its softmax run once per distinct predicting position.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from upbringing.agents.lm.prompt import Query

Normalization = Literal["sum", "token_mean", "word_mean"]

PAD, PROMPT, TREE = -1, 0, 1  # values of Packed.segment


@dataclass(frozen=True)
class Encoded:
    """``prompt + continuation`` tokenised jointly.

    Attributes:
        ids: All token ids up to the end of the action (trailing special tokens dropped).
        start: Index of the action's first token in ``ids``.
    """

    ids: tuple[int, ...]
    start: int


class JointTokenizer:
    """Tokenises prompt/action pairs jointly and finds each action's token span from the offsets; caches results.

    Args:
        tokenizer: A fast (Rust) Hugging Face tokenizer, which reports character offsets.
        cache_size: How many pairs to remember (prompts repeat a lot within an episode and across envs).
    """

    def __init__(self, tokenizer: Any, cache_size: int = 65536) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise TypeError("action scoring needs a fast tokenizer (it reads character offsets)")
        self.tokenizer = tokenizer
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], Encoded] = OrderedDict()

    def encode(self, pairs: Sequence[tuple[str, str]], separator: str = " ") -> list[Encoded]:
        """Encode ``(prompt, action)`` pairs as ``prompt + separator + action``; raises ``ValueError`` if an action
        has no tokens of its own."""
        if separator:
            pairs = [(prompt, separator + action) for prompt, action in pairs]
        missing = list(dict.fromkeys(p for p in pairs if p not in self._cache))
        if missing:
            texts = [prompt + action for prompt, action in missing]
            batch = self.tokenizer(texts, return_offsets_mapping=True, add_special_tokens=True)
            for (prompt, action), ids, offsets in zip(missing, batch["input_ids"], batch["offset_mapping"]):
                cut = len(prompt)
                # Tokens that end past the prompt's last character belong to the action (special tokens have
                # empty offsets and are skipped).
                span = [i for i, (a, b) in enumerate(offsets) if b > cut and b > a]
                if not span:
                    raise ValueError(f"action {action!r} has no tokens after the prompt")
                if span != list(range(span[0], span[-1] + 1)):
                    raise ValueError(f"action {action!r} does not form one contiguous token span")
                if span[0] == 0:
                    raise ValueError("the prompt must contribute at least one token")
                self._cache[(prompt, action)] = Encoded(tuple(ids[: span[-1] + 1]), span[0])
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        out = []
        for pair in pairs:
            enc = self._cache[pair]
            self._cache.move_to_end(pair)
            out.append(enc)
        return out


@dataclass
class Packed:
    """A batch of queries packed for one forward pass (see the module docstring).

    Attributes:
        input_ids: ``[B, L]`` token ids.
        position_ids: ``[B, L]`` positions; a tree token's is its prompt's length plus its depth in the tree.
        segment: ``[B, L]``: -1 pad, 0 prompt, 1 a token of the candidates' prefix tree.
        parent: ``[B, L]`` column of the token each tree token continues (its parent in the tree, or the last prompt
            token); -1 for prompt tokens and pads.
        tree_depth: The deepest path in any row's tree (the longest candidate suffix), in tokens.
        prompt_last: ``[B]`` column of each row's last prompt token (the value head reads it).
        pred_row, pred_col: ``[P]`` the distinct positions whose hidden state predicts a scored token.
        target_pred: ``[T]`` for each scored token of each candidate, its predicting position (index into ``pred_*``).
        target_ids: ``[T]`` the scored tokens.
        target_cand: ``[T]`` which candidate (index into the flat candidate list) each scored token belongs to.
        cand_query, cand_action: ``[N]`` each scored candidate's query index and action index.
        n_tokens, n_words: ``[N]`` each candidate's token and word count (for normalisation).
        n_actions: Width of the ``[B, n_actions]`` score matrix (the largest action count in the batch).
        span_ids: Each candidate's action token ids (for inspection and tests).
        longest_cut: The original length of the longest prompt cut to ``max_prompt_tokens`` (0: none was cut).
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    segment: torch.Tensor
    parent: torch.Tensor
    tree_depth: int
    prompt_last: torch.Tensor
    pred_row: torch.Tensor
    pred_col: torch.Tensor
    target_pred: torch.Tensor
    target_ids: torch.Tensor
    target_cand: torch.Tensor
    cand_query: torch.Tensor
    cand_action: torch.Tensor
    n_tokens: torch.Tensor
    n_words: torch.Tensor
    n_actions: int
    span_ids: list[tuple[int, ...]]
    longest_cut: int = 0

    def to(self, device: torch.device | str) -> Packed:
        """The same batch with every tensor on ``device``."""
        moved: dict[str, Any] = {k: v.to(device) if torch.is_tensor(v) else v for k, v in self.__dict__.items()}
        return Packed(**moved)

    def attention_mask(self, kind: Literal["bool", "float"] = "bool", dtype: torch.dtype = torch.float32):
        """The ``[B, 1, L, L]`` mask (bool: True = attend; float: additive 0 or the dtype's minimum).

        A prompt token sees the prompt up to itself; a tree token sees the whole prompt and its own ancestors in the
        tree (found by following ``parent`` up to ``tree_depth`` times) and itself.
        """
        seg = self.segment
        batch, length = seg.shape
        cols = torch.arange(length, device=seg.device)
        is_prompt = seg == PROMPT
        allowed = (cols[None, :, None] >= cols[None, None, :]) & is_prompt[:, None, :] & (seg[:, :, None] >= 0)
        # Tree ancestry: every tree token marks itself, then its parent, grandparent, ... while they are tree tokens.
        rows = torch.arange(batch, device=seg.device)[:, None].expand(batch, length)
        queries = cols[None].expand(batch, length)
        cur = queries.clone()
        active = seg == TREE
        for _ in range(self.tree_depth):
            if not bool(active.any()):
                break
            allowed[rows[active], queries[active], cur[active]] = True
            up = self.parent.gather(1, cur)
            cur = up.clamp(min=0)
            active = active & (up >= 0) & (seg.gather(1, cur) == TREE)
        # A pad attends to itself so no row is fully masked (fully masked rows give NaN in SDPA).
        allowed |= torch.eye(length, dtype=torch.bool, device=seg.device)[None] & (seg[:, :, None] < 0)
        allowed = allowed[:, None]
        if kind == "bool":
            return allowed
        zero = torch.zeros((), dtype=dtype, device=seg.device)
        return torch.where(allowed, zero, torch.finfo(dtype).min)


def pack(
    joint: JointTokenizer,
    queries: Sequence[Query],
    *,
    pad_id: int,
    padding_side: Literal["left", "right"] = "right",
    max_prompt_tokens: int | None = None,
) -> Packed:
    """Pack ``queries`` (only their valid actions) into one batch for :func:`score_packed`."""
    pairs = [(q.prompt, q.separator + q.actions[a]) for q in queries for a in q.valid]
    encoded = iter(joint.encode(pairs, separator=""))
    rows: list[tuple[list[int], list[int], list[int], list[int]]] = []  # (ids, positions, segments, parents)
    prompt_lens: list[int] = []
    preds: dict[tuple[int, int], int] = {}  # (query, column before padding) -> index of the predicting position
    targets: list[tuple[int, int, int]] = []  # (predicting position, token id, candidate)
    cand_query: list[int] = []
    cand_action: list[int] = []
    n_tokens: list[int] = []
    n_words: list[int] = []
    span_ids: list[tuple[int, ...]] = []
    depth = 0
    longest_cut = 0
    for qi, query in enumerate(queries):
        encs = [next(encoded) for _ in query.valid]
        # The shared prompt: the longest common prefix of the candidates' token sequences before their spans
        # (normally the prompt's own tokens; shorter only if a tokenizer merged across the boundary).
        shared = min(e.start for e in encs)
        first = encs[0].ids
        for e in encs[1:]:
            shared = next((j for j in range(shared) if e.ids[j] != first[j]), shared)
        if shared == 0:
            raise ValueError("candidates share no prompt tokens")
        drop = max(0, shared - max_prompt_tokens) if max_prompt_tokens else 0
        if drop:
            longest_cut = max(longest_cut, shared)
        ids = list(first[drop:shared])
        plen = len(ids)
        positions = list(range(plen))
        segments = [PROMPT] * plen
        parents = [-1] * plen
        children: dict[tuple[int, int], int] = {}  # (parent column, token) -> column: the prefix tree
        for a, e in zip(query.valid, encs):
            c = len(cand_query)
            path = [plen - 1]  # path[j]: column of the j-th suffix token's predecessor ... and then of the token
            for j, token in enumerate(e.ids[shared:]):
                col = children.get((path[-1], token))
                if col is None:
                    col = children[(path[-1], token)] = len(ids)
                    ids.append(token)
                    positions.append(plen + j)
                    segments.append(TREE)
                    parents.append(path[-1])
                path.append(col)
            depth = max(depth, len(path) - 1)
            for g in range(e.start, len(e.ids)):
                # The token at full index g is predicted by the hidden state at the column of the token at g - 1.
                key = (qi, path[g - shared])
                pi = preds.setdefault(key, len(preds))
                targets.append((pi, e.ids[g], c))
            cand_query.append(qi)
            cand_action.append(a)
            n_tokens.append(len(e.ids) - e.start)
            n_words.append(max(1, len(query.actions[a].split())))
            span_ids.append(tuple(e.ids[e.start :]))
        rows.append((ids, positions, segments, parents))
        prompt_lens.append(plen)
    width = max(len(r[0]) for r in rows)
    batch = len(rows)
    input_ids = torch.full((batch, width), pad_id, dtype=torch.long)
    position_ids = torch.zeros((batch, width), dtype=torch.long)
    segment = torch.full((batch, width), PAD, dtype=torch.long)
    parent = torch.full((batch, width), -1, dtype=torch.long)
    shifts = []
    for qi, (ids, positions, segments, parents) in enumerate(rows):
        shift = width - len(ids) if padding_side == "left" else 0
        shifts.append(shift)
        span = slice(shift, shift + len(ids))
        input_ids[qi, span] = torch.tensor(ids)
        position_ids[qi, span] = torch.tensor(positions)
        segment[qi, span] = torch.tensor(segments)
        parent[qi, span] = torch.tensor([p + shift if p >= 0 else -1 for p in parents])
    pred = torch.tensor(list(preds), dtype=torch.long).reshape(-1, 2)
    t = torch.tensor(targets, dtype=torch.long).reshape(-1, 3)
    shift_t = torch.tensor(shifts, dtype=torch.long)
    return Packed(
        input_ids=input_ids,
        position_ids=position_ids,
        segment=segment,
        parent=parent,
        tree_depth=depth,
        prompt_last=torch.tensor(prompt_lens, dtype=torch.long) - 1 + shift_t,
        pred_row=pred[:, 0],
        pred_col=pred[:, 1] + shift_t[pred[:, 0]],
        target_pred=t[:, 0],
        target_ids=t[:, 1],
        target_cand=t[:, 2],
        cand_query=torch.tensor(cand_query, dtype=torch.long),
        cand_action=torch.tensor(cand_action, dtype=torch.long),
        n_tokens=torch.tensor(n_tokens, dtype=torch.float32),
        n_words=torch.tensor(n_words, dtype=torch.float32),
        n_actions=max(len(q.actions) for q in queries),
        span_ids=span_ids,
        longest_cut=longest_cut,
    )


def final_logits(model: Any, hidden: torch.Tensor) -> torch.Tensor:
    """The model's output logits for final hidden states, including the logit transforms some models apply
    after the output projection (Cohere's ``logit_scale``, Gemma 2's ``final_logit_softcapping``)."""
    logits = model.get_output_embeddings()(hidden)
    config = model.config
    scale = getattr(config, "logit_scale", None)
    if isinstance(scale, int | float):
        logits = logits * scale
    cap = getattr(config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def score_packed(model: Any, packed: Packed) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the one forward pass.

    Returns:
        ``(logprobs, prompt_hidden)``: ``[N]`` float32 summed log-probability of each packed candidate's tokens,
        and ``[B, H]`` the final hidden state at each query's last prompt token.
    """
    impl = getattr(model.config, "_attn_implementation", "eager")
    if impl not in ("eager", "sdpa"):
        raise ValueError(f"packed scoring needs eager or sdpa attention with a 4D mask, not {impl!r}")
    param = next(model.parameters())
    # One additive mask in the dtype attention computes in, shared by every layer. With a boolean mask SDPA builds
    # its own additive copy in each layer, and the fused kernel keeps each copy for the backward pass: ``layers``
    # ``[B, 1, L, L]`` tensors per micro-batch, as much as the rest of a long prompt's activations. Under SDPA the
    # fused kernel (FlashAttention-2's tiling, Dao 2023; on CPU ``_scaled_dot_product_flash_attention_for_cpu``, on a
    # GPU the memory-efficient kernel of Rabe & Staats 2021, which takes additive masks) never materialises the
    # ``[B, heads, L, L]`` attention probabilities, so this mask is the only quadratic tensor of the pass.
    device = packed.input_ids.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else param.dtype
    mask = packed.attention_mask("float", dtype)
    out = model(
        input_ids=packed.input_ids,
        attention_mask=mask,
        position_ids=packed.position_ids,
        output_hidden_states=True,
        use_cache=False,
        logits_to_keep=1,  # the output projection is applied below to the scored positions only
    )
    hidden = out.hidden_states[-1]
    logits = final_logits(model, hidden[packed.pred_row, packed.pred_col]).float()
    token_lp = torch.log_softmax(logits, dim=-1)[packed.target_pred, packed.target_ids]
    n = packed.cand_query.shape[0]
    logprobs = torch.zeros(n, dtype=torch.float32, device=token_lp.device).index_add(0, packed.target_cand, token_lp)
    rows = torch.arange(packed.input_ids.shape[0], device=hidden.device)
    return logprobs, hidden[rows, packed.prompt_last]


def normalize(logprobs: torch.Tensor, packed: Packed, how: Normalization) -> torch.Tensor:
    """Combine token log-probabilities into a score: ``sum``, per-token mean or per-word mean."""
    if how == "sum":
        return logprobs
    if how == "token_mean":
        return logprobs / packed.n_tokens.to(logprobs.device)
    if how == "word_mean":
        return logprobs / packed.n_words.to(logprobs.device)
    raise ValueError(f"unknown normalisation {how!r}")


def to_matrix(values: torch.Tensor, packed: Packed, fill: float = float("-inf")) -> torch.Tensor:
    """Scatter per-candidate ``values`` ``[N]`` into ``[B, n_actions]``; unscored (invalid) actions get ``fill``."""
    out = torch.full((packed.input_ids.shape[0], packed.n_actions), fill, dtype=values.dtype, device=values.device)
    return out.index_put((packed.cand_query.to(values.device), packed.cand_action.to(values.device)), values)


@torch.no_grad()
def reference_logprob(model: Any, tokenizer: Any, prompt: str, action: str, separator: str = " ") -> float:
    """The unbatched reference: ``model(prompt + separator + action)`` alone, summed over the action's tokens.

    The span is found from offsets exactly as in :class:`JointTokenizer`; used by tests and the benchmark.
    """
    enc = JointTokenizer(tokenizer).encode([(prompt, action)], separator=separator)[0]
    ids = torch.tensor([enc.ids], device=next(model.parameters()).device)
    logits = model(input_ids=ids, use_cache=False).logits[0].float()
    logp = torch.log_softmax(logits[:-1], dim=-1)
    targets = ids[0, 1:]
    token_lp = logp.gather(-1, targets[:, None]).squeeze(-1)
    return float(token_lp[enc.start - 1 :].sum())


def score_naive(model: Any, joint: JointTokenizer, query: Query) -> torch.Tensor:
    """Score a query the naive way, one full forward of ``prompt + action`` per valid candidate (for comparison)."""
    device = next(model.parameters()).device
    out = []
    for enc in joint.encode([(query.prompt, query.actions[a]) for a in query.valid], separator=query.separator):
        ids = torch.tensor([enc.ids], device=device)
        logits = model(input_ids=ids, use_cache=False).logits[0, enc.start - 1 : -1].float()
        out.append(torch.log_softmax(logits, -1).gather(-1, ids[0, enc.start :, None]).sum())
    return torch.stack(out)
