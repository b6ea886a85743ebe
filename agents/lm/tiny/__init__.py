"""The offline default language model, ``"tiny"``: a small Llama-style causal LM built from a config.

Nothing is downloaded. The byte-level BPE tokenizer is trained on the project's own texts (see
:mod:`upbringing.agents.lm.tiny.corpus`) and committed as ``tokenizer.json`` beside this file; ``python -m
upbringing.agents.lm.tiny
--rebuild`` retrains it when new envs land. The weights are initialised deterministically from :data:`SEED`,
saved with ``save_pretrained`` into the cache (``$UPBRINGING_CACHE`` or ``~/.cache/upbringing``) and loaded back
with ``from_pretrained`` like any model, so the rest of the code never special-cases it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

TOKENIZER_FILE = Path(__file__).with_name("tokenizer.json")
VOCAB_SIZE = 4096
SEED = 20240531
SPECIAL_TOKENS = ("<|endoftext|>", "<|pad|>")

# Two layers of width 64: on two CPU cores a PPO step over a 150-token physics prompt costs a quarter of what width
# 128 does, and the quickstart's stages are short text tasks, so speed matters more than capacity.
MODEL_CONFIG: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 192,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
    "attention_dropout": 0.0,
}


def cache_root() -> Path:
    """Where built models are kept: ``$UPBRINGING_CACHE`` if set, else ``~/.cache/upbringing``."""
    return Path(os.environ.get("UPBRINGING_CACHE") or Path.home() / ".cache" / "upbringing")


def train_tokenizer(lines: list[str], vocab_size: int = VOCAB_SIZE) -> Any:
    """Train a byte-level BPE tokenizer (GPT-2 style: no prefix space, byte fallback by construction) on ``lines``.

    Returns:
        A ``tokenizers.Tokenizer``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    # trim_offsets=False: a token's offsets cover its leading space, so offsets tile the text with no gaps.
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(lines, trainer=trainer)
    return tokenizer


def _fingerprint() -> str:
    import torch
    import transformers

    digest = hashlib.sha256(TOKENIZER_FILE.read_bytes())
    # The torch version is part of the key because weight initialisation may change between releases.
    meta = {"config": MODEL_CONFIG, "seed": SEED, "torch": torch.__version__, "transformers": transformers.__version__}
    digest.update(json.dumps(meta, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def build_tiny(cache_dir: Path | None = None) -> Path:
    """Return the directory of the tiny model (config, safetensors weights, tokenizer), building it if absent.

    The build is deterministic (weights from :data:`SEED`) and atomic: it is written into a temporary directory
    and renamed into place, so concurrent builders never see a half-written model.

    Args:
        cache_dir: Where to keep it; default :func:`cache_root`.
    """
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    target = root / f"tiny-lm-{_fingerprint()}"
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(TOKENIZER_FILE),
        bos_token=SPECIAL_TOKENS[0],
        eos_token=SPECIAL_TOKENS[0],
        pad_token=SPECIAL_TOKENS[1],
        unk_token=None,
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **MODEL_CONFIG,
    )
    # Initialise from our own seed without disturbing the caller's global RNG stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = LlamaForCausalLM(config)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tiny-build-"))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").exists():  # not a lost race with another builder: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
