"""Sizing PPO micro-batches from a memory budget.

Where the memory of a full fine-tuning PPO update goes (SmolLM2-135M, float32, measured with ``python -m benchmarks
pretrained``): weights, gradients and Adam's two moments are 16 bytes per trainable parameter (2.2 GB for 135M),
and everything else is activations kept for the backward pass, which grow with the packed tokens of the micro-batch:
per token and layer, the residual stream, norms, q/k/v/o and the MLP's gate/up/product (about ``10 h + 5 i`` floats
for width ``h`` and MLP width ``i``), plus what attention keeps: under SDPA the fused kernel keeps no attention
probabilities, only the one additive ``[B, 1, L, L]`` mask every layer shares (``row width`` floats per token, see
:func:`~upbringing.agents.lm.scoring.score_packed`); eager attention keeps each layer's probabilities and scores
(``2 x heads x row width`` floats per token and layer). Then the output logits at predicting positions (``vocab``
floats, times three for the log-softmax and its gradient). :func:`micro_batches` packs a minibatch's samples, in
order, into the fewest micro-batches whose estimated activations fit what the budget leaves after the static part;
gradient accumulation then sums them into one optimizer step (weighted by size, so the step is the same as one big
batch up to float rounding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

GB = 1024**3
# Autograd keeps temporaries beside the tensors counted above (repeated key/value heads, the backward pass's own
# buffers, the allocator's slack): with the counts above, a 4 GB budget let SmolLM2-135M's stories update reach
# 4.03 GB (``python -m benchmarks pretrained --parts rss``), about 1.15 x the estimate scaled by 1.5; 2.0 keeps it
# inside the budget with a margin.
SLACK = 2.0


def static_bytes(model: Any, trainable: Sequence[Any]) -> int:
    """Weights (all parameters, 4 bytes each) plus gradient and Adam state of the trainable ones (12 bytes each)."""
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    return int(total + sum(12 * p.numel() for p in trainable))


def activation_bytes(config: Any, rows: int, width: int, predicting: int, checkpointing: bool = False) -> int:
    """Estimated bytes a forward + backward keeps for ``rows`` packed rows of ``width`` tokens and ``predicting``
    positions whose logits are computed (see the module docstring). With activation checkpointing only each layer's
    input is kept, and one layer's activations at a time are recomputed in the backward pass."""
    h = int(getattr(config, "hidden_size", 0) or getattr(config, "n_embd", 0) or 0)
    i = int(getattr(config, "intermediate_size", 0) or getattr(config, "n_inner", 0) or 4 * h)
    layers = int(getattr(config, "num_hidden_layers", 0) or getattr(config, "n_layer", 0) or 1)
    heads = int(getattr(config, "num_attention_heads", 0) or getattr(config, "n_head", 0) or 1)
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    fused = getattr(config, "_attn_implementation", "eager") == "sdpa"
    tokens = rows * width
    per_token_layer = 10 * h + 5 * i + (0 if fused else 2 * heads * width)
    kept = tokens * (layers * h + per_token_layer) if checkpointing else tokens * layers * per_token_layer
    floats = kept + 3 * predicting * vocab + tokens * width
    return int(SLACK * 4 * floats)


def micro_batches(
    costs: Sequence[tuple[int, int]],
    config: Any,
    budget_bytes: int | None,
    min_splits: int = 1,
    checkpointing: bool = False,
) -> list[list[int]]:
    """Split a minibatch into micro-batches (lists of positions into ``costs``), in order.

    Args:
        costs: Per sample, ``(row tokens, predicting positions)`` once packed.
        config: The model's config (its sizes drive :func:`activation_bytes`).
        budget_bytes: What activations may take; None: no memory limit (only ``min_splits``).
        min_splits: At least this many micro-batches (``grad_accum_steps``), of near-equal sizes.
        checkpointing: Whether activation checkpointing is on (see :func:`activation_bytes`).
    """
    n = len(costs)
    base = [list(range(n))[k * n // min_splits : (k + 1) * n // min_splits] for k in range(min(min_splits, n))]
    if budget_bytes is None:
        return [b for b in base if b]
    out: list[list[int]] = []
    for chunk in base:
        current: list[int] = []
        width = preds = 0
        for j in chunk:
            w, p = max(width, costs[j][0]), preds + costs[j][1]
            if current and activation_bytes(config, len(current) + 1, w, p, checkpointing) > budget_bytes:
                out.append(current)
                current, w, p = [], costs[j][0], costs[j][1]
            current.append(j)
            width, preds = w, p
        if current:
            out.append(current)
    return out
