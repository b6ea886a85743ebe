"""Text features for the reward model: step texts embedded by a language model (or any encoder).

:class:`LMEmbedder` mean-pools the last hidden states of any Hugging Face model over each text's tokens. Pass it
with its ``dim`` to :class:`~feedback.features.StepFeaturizer` (``embed=embedder, embed_dim=embedder.dim``) and the
reward model reads the situation and the chosen action's text as well as the numbers. Nothing is downloaded: give
loaded objects, or a local path (``agents.lm.tiny.build_tiny()`` builds the offline default model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch


class LMEmbedder:
    """Embed texts as the mean of a model's last hidden states over their tokens (no gradients, eval mode).

    Args:
        model: A Hugging Face model (``AutoModel`` or ``AutoModelForCausalLM``).
        tokenizer: Its tokenizer (needs a pad token; the EOS token is used if it has none).
        max_length: Texts are truncated to this many tokens.
        batch_size: Texts embedded per forward pass.
    """

    def __init__(self, model: Any, tokenizer: Any, max_length: int = 128, batch_size: int = 32):
        self.model = model.eval()
        self.tokenizer = tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.max_length = max_length
        self.batch_size = batch_size
        self.dim = int(model.config.hidden_size)

    @classmethod
    def from_path(cls, path: str | Path, **kwargs: Any) -> LMEmbedder:
        """Load a model and tokenizer from a local folder (never from the hub)."""
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModel.from_pretrained(str(path), local_files_only=True, dtype=torch.float32)
        return cls(model, tokenizer, **kwargs)

    @torch.no_grad()
    def __call__(self, texts: list[str]) -> np.ndarray:
        """Embeddings of ``texts``, shape ``(len(texts), dim)``, float32."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                [t or " " for t in texts[start : start + self.batch_size]],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_length,
            )
            hidden = self.model(**batch, output_hidden_states=True).hidden_states[-1]
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            out[start : start + len(pooled)] = pooled.float().numpy()
        return out
