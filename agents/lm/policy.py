"""Language-model policies over text actions: a causal LM scoring each candidate, plus a value head.

:class:`CausalLMPolicy` wraps any ``AutoModelForCausalLM`` (by hub id, local path, or ``"tiny"``, the offline
default). One call to :meth:`CausalLMPolicy.evaluate` runs one forward pass for a whole batch of queries and returns
the action distribution's logits and the state values (see :mod:`upbringing.agents.lm.scoring`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn
from upbringing.agents.lm.config import LMConfig
from upbringing.agents.lm.models import resolve_model
from upbringing.agents.lm.prompt import PromptFormat, Query, chat_renderer, has_chat_template
from upbringing.agents.lm.scoring import JointTokenizer, normalize, pack, score_packed, to_matrix


@dataclass
class PolicyOutput:
    """A batch's action distribution and values.

    Attributes:
        logits: ``[B, K]`` action logits (normalised, tempered); ``-inf`` for invalid or absent actions.
        values: ``[B]`` state values.
        scores: ``[B, K]`` raw action scores (for a causal LM: the summed token log-probabilities), ``-inf`` where
            not scored.
    """

    logits: torch.Tensor
    values: torch.Tensor
    scores: torch.Tensor

    @property
    def log_probs(self) -> torch.Tensor:
        """``[B, K]`` log-probabilities of the action distribution."""
        return torch.log_softmax(self.logits, dim=-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """``[B]`` log-probability of the given action indices."""
        return self.log_probs.gather(-1, actions[:, None].to(self.logits.device)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        """``[B]`` entropy of each action distribution (invalid actions contribute nothing)."""
        logp = self.log_probs
        return -(logp.exp() * logp.masked_fill(~torch.isfinite(logp), 0.0)).sum(-1)

    def sample(self, generator: torch.Generator | None = None, deterministic: bool = False) -> torch.Tensor:
        """``[B]`` action indices: sampled (from ``generator``, on CPU for reproducibility) or the argmax."""
        if deterministic:
            return self.logits.argmax(-1).cpu()
        probs = torch.softmax(self.logits.detach().float(), dim=-1).cpu()
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class TextPolicy(Protocol):
    """What rollout collection and PPO need from a text policy (the causal-LM and encoder policies both are)."""

    prompts: PromptFormat

    def evaluate(self, queries: Sequence[Query]) -> PolicyOutput:
        """Action logits and values for a batch of queries, in one forward pass."""
        ...

    def param_groups(self) -> list[dict[str, Any]]:
        """Trainable parameters as optimizer groups (``params``, ``lr``, ``name``)."""
        ...

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Every trainable tensor by a stable name, for checkpoints."""
        ...


def resolve_device(device: str) -> torch.device:
    """``auto`` is the GPU when one is present, else the CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def resolve_amp_dtype(dtype: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (None: plain float32). ``auto`` is bfloat16 on a GPU that supports it."""
    if dtype == "bfloat16":
        return torch.bfloat16
    if dtype == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def model_source(model: str) -> str:
    """What ``from_pretrained`` loads for ``agent.model``: the built ``tiny`` folder, a pulled model's folder (see
    :mod:`upbringing.agents.lm.models`), a local folder or a hub id; raises ``ModelError`` (one line) otherwise."""
    if model == "tiny":
        from upbringing.agents.lm.tiny import build_tiny

        return str(build_tiny())
    return resolve_model(model)


def load_tokenizer(config: LMConfig) -> Any:
    """The tokenizer of ``config.model`` alone (for measuring prompts without loading the weights)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_source(config.model), trust_remote_code=config.trust_remote_code)


def load_causal_lm(config: LMConfig) -> tuple[Any, Any]:
    """Load ``config.model`` (``"tiny"``, a pulled model's name, a hub id or a local path) as a float32 causal LM and
    its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = model_source(config.model)
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=config.trust_remote_code)
    kwargs = {"trust_remote_code": config.trust_remote_code, "dtype": torch.float32}
    try:
        model = AutoModelForCausalLM.from_pretrained(source, attn_implementation="sdpa", **kwargs)
    except (ValueError, ImportError):  # an architecture without SDPA support: fall back to eager attention
        model = AutoModelForCausalLM.from_pretrained(source, attn_implementation="eager", **kwargs)
    return model, tokenizer


def prompt_format(config: LMConfig, tokenizer: Any) -> PromptFormat:
    """The prompt format ``config.prompt_format`` names for this tokenizer (``auto``: chat when it has a template).

    Raises:
        ValueError: ``chat`` with a tokenizer that has no chat template.
    """
    chat = config.prompt_format == "chat" or (config.prompt_format == "auto" and has_chat_template(tokenizer))
    if chat and not has_chat_template(tokenizer):
        raise ValueError(f"prompt_format: chat, but the tokenizer of {config.model!r} has no chat template")
    return PromptFormat(config.history_window, config.list_options, chat_renderer(tokenizer) if chat else None)


def apply_lora(model: Any, config: LMConfig) -> Any:
    """Wrap ``model`` with LoRA adapters through peft (imported only here: it is slow to import)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as err:  # pragma: no cover - depends on the optional extra
        raise ImportError("LoRA needs the optional 'lora' extra: pip install 'upbringing[lora]'") from err
    lora = config.lora
    targets = list(lora.target_modules) if lora.target_modules else "all-linear"
    peft_config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,  # type: ignore[arg-type]  # peft types it int; it is a float scale
        lora_dropout=lora.dropout,
        target_modules=targets,
        bias="none",
    )
    return get_peft_model(model, peft_config)


class CausalLMPolicy(nn.Module):
    """A causal LM that scores each valid action's text given the prompt, with a value head on the same pass.

    Args:
        config: The agent's configuration.
        seed: Seeds the value head's initial weights.
        model: An already loaded causal LM (default: load ``config.model``).
        tokenizer: Its fast tokenizer (required with ``model``).
    """

    def __init__(self, config: LMConfig, seed: int = 0, model: Any = None, tokenizer: Any = None) -> None:
        super().__init__()
        if model is None:
            model, tokenizer = load_causal_lm(config)
        self.config = config
        self.prompts = prompt_format(config, tokenizer)
        self.tokenizer = tokenizer
        self.joint = JointTokenizer(tokenizer)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_id = int(pad or 0)  # pads are masked out, so any id will do
        if config.activation_checkpointing:
            if not getattr(model, "supports_gradient_checkpointing", False):
                raise ValueError(f"{config.model!r} does not support activation checkpointing")
            # Non-reentrant checkpointing: exact recomputation, and LoRA needs no input gradients for it.
            kwargs = {"use_reentrant": False}
            if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x renamed it
                model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        if config.lora.enabled:
            model = apply_lora(model, config)
        self.lm = model
        hidden = model.get_output_embeddings().weight.shape[1]
        self.value_head = nn.Linear(hidden, 1)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.value_head.weight.copy_(torch.randn(self.value_head.weight.shape, generator=gen))
            self.value_head.weight.mul_(config.value_head_init_std)
            self.value_head.bias.zero_()
        self.longest_cut = 0  # the longest prompt cut to max_prompt_tokens since the caller last reset this
        self.device = resolve_device(config.device)
        self.amp_dtype = resolve_amp_dtype(config.dtype, self.device)
        self.to(self.device)
        # Always in eval mode: dropout would make the PPO ratio differ from 1 on the first minibatch and add noise to
        # the policy gradient (as in Ziegler et al., 2019, who fine-tune with dropout off). Gradients still flow.
        self.eval()

    def train(self, mode: bool = True) -> CausalLMPolicy:
        """Kept in eval mode whatever is asked (see the constructor); returns self.

        With activation checkpointing, the checkpointed layers themselves are flagged as training (Hugging Face
        checkpoints a layer only then) while everything inside them stays in eval mode, so no dropout runs.
        """
        super().train(False)
        if self.config.activation_checkpointing:
            for module in self.lm.modules():
                if getattr(module, "gradient_checkpointing", False):
                    module.training = True
        return self

    def sample_cost(self, query: Query) -> tuple[int, int]:
        """Upper bounds of ``(packed row tokens, predicting positions)`` of one query (for sizing micro-batches)."""
        encs = self.joint.encode([(query.prompt, query.actions[a]) for a in query.valid], separator=query.separator)
        shared = min(e.start for e in encs)
        suffix = sum(len(e.ids) - shared for e in encs)
        return min(shared, self.config.max_prompt_tokens) + suffix, sum(len(e.ids) - e.start for e in encs)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def evaluate(self, queries: Sequence[Query]) -> PolicyOutput:
        """One forward pass: action logits (normalised, tempered, masked) and values for ``queries``."""
        packed = pack(
            self.joint,
            queries,
            pad_id=self.pad_id,
            padding_side=self.config.padding_side,
            max_prompt_tokens=self.config.max_prompt_tokens,
        ).to(self.device)
        self.longest_cut = max(self.longest_cut, packed.longest_cut)
        with self._autocast():
            logprobs, hidden = score_packed(self.lm, packed)
        scores = normalize(logprobs, packed, self.config.normalization) / self.config.temperature
        values = self.value_head(hidden.float()).squeeze(-1)
        return PolicyOutput(to_matrix(scores, packed), values, to_matrix(logprobs, packed))

    def lm_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """The language model's trainable parameters (its adapters only, with LoRA)."""
        return ((n, p) for n, p in self.lm.named_parameters() if p.requires_grad)

    def param_groups(self) -> list[dict[str, Any]]:
        """Optimizer groups with their own learning rates: the LM (``lr_lm``) and the value head."""
        return [
            {"params": [p for _, p in self.lm_parameters()], "lr": self.config.lr_lm, "name": "lm"},
            {"params": list(self.value_head.parameters()), "lr": self.config.lr_value_head, "name": "value_head"},
        ]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Every trainable tensor by a stable name (``lm.*``, ``value_head.*``), for checkpoints."""
        state: dict[str, torch.Tensor] = {f"lm.{n}": p for n, p in self.lm_parameters()}
        state.update({f"value_head.{n}": p for n, p in self.value_head.named_parameters()})
        return state
