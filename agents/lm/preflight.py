"""Checks of an LM agent's config that run before training (and in ``upbringing check``), each one line a researcher
can act on instead of a library traceback minutes into a run: the model resolves, the device exists in this torch
build, the dtype suits the hardware, and prompts fit the budget (measured with the configured tokenizer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from upbringing.agents.lm.config import LMConfig
from upbringing.agents.lm.models import ModelError
from upbringing.agents.lm.policy import load_tokenizer, model_source, prompt_format
from upbringing.agents.lm.prompt import PromptFormat
from upbringing.agents.lm.scoring import JointTokenizer


@dataclass(frozen=True)
class Finding:
    """One preflight result.

    Attributes:
        key: The config key it is about (``agent.model``, ...).
        message: One line: what is wrong and what to do.
        error: True stops the run; False is a warning.
    """

    key: str
    message: str
    error: bool = True


def check_model(config: LMConfig) -> list[Finding]:
    """Model, device and dtype findings for ``config`` (cheap: nothing is loaded but the model's name)."""
    found: list[Finding] = []
    if config.architecture == "causal":
        try:
            model_source(config.model)
        except ModelError as err:
            found.append(Finding("agent.model", str(err)))
    if config.device == "cuda":
        if torch.version.cuda is None:
            found.append(
                Finding(
                    "agent.device",
                    f"cuda, but this torch build ({torch.__version__}) has no CUDA support: use device: auto or cpu, "
                    "or install a CUDA build of torch",
                )
            )
        elif not torch.cuda.is_available():
            found.append(Finding("agent.device", "cuda, but no GPU is visible to torch: use device: auto or cpu"))
    on_gpu = torch.cuda.is_available() and config.device != "cpu"
    if config.dtype == "bfloat16":
        if not on_gpu:
            found.append(
                Finding(
                    "agent.dtype",
                    "bfloat16 on a CPU is much slower than float32 here (8-14x for SmolLM2-135M on 2 cores) and "
                    "inexact (PPO's ratio check only warns): use dtype: auto",
                    error=False,
                )
            )
        elif not torch.cuda.is_bf16_supported():
            found.append(Finding("agent.dtype", "bfloat16, but this GPU does not support it: use dtype: auto"))
    return found


class PromptMeter:
    """Measures prompts in tokens exactly as :func:`~agents.lm.scoring.pack` counts them (the tokens the candidates
    share before their spans), with the configured tokenizer and prompt format.

    Args:
        config: The agent config (model, prompt format, list_options, history_window).
        tokenizer: Its tokenizer (default: loaded from ``config.model``; the weights are not loaded).
    """

    def __init__(self, config: LMConfig, tokenizer: Any = None) -> None:
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(config)
        self.format: PromptFormat = prompt_format(config, self.tokenizer)
        self.joint = JointTokenizer(self.tokenizer)

    def tokens(self, info: Mapping[str, Any]) -> int:
        """The prompt length, in tokens, of the query built from one env info dict (no earlier turns)."""
        query = self.format.query(info)
        encs = self.joint.encode([(query.prompt, query.actions[a]) for a in query.valid], separator=query.separator)
        return min(e.start for e in encs)

    def longest(self, infos: Iterable[Mapping[str, Any]]) -> int:
        """The longest prompt among ``infos`` (0 when there are none)."""
        return max((self.tokens(info) for info in infos), default=0)
