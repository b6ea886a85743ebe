"""What ``upbringing check`` adds for LM agents beyond validating the file: warnings a researcher should see before a
run starts, above all stages whose prompts can exceed ``agent.max_prompt_tokens`` (measured with the configured
tokenizer and prompt format on sampled episodes of every level, both splits).

Errors (a model that does not resolve, a device this torch lacks) are raised by
:func:`upbringing.curriculum.config.load_config` itself, so ``train`` stops on them too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from upbringing import envs
from upbringing.agents.lm.config import LMConfig
from upbringing.agents.lm.preflight import PromptMeter, check_model
from upbringing.curriculum.config import RunConfig, StageConfig
from upbringing.curriculum.factory import StageEnvFactory, stage_levels


def sample_infos(
    stage: StageConfig, level_kwargs: dict[str, Any], episodes: int = 4, max_steps: int = 40, seed: int = 0
) -> Iterator[dict[str, Any]]:
    """Info dicts of a single-agent stage at one level: ``episodes`` episodes per split under uniformly random valid
    actions (a random policy visits more distinct situations than a trained one)."""
    factory = StageEnvFactory(stage, level_kwargs)
    rng = np.random.default_rng(seed)
    for split in ("train", "eval"):
        for episode in range(episodes):
            env = factory(split)
            try:
                _, info = env.reset(seed=seed + episode)
                for _ in range(max_steps):
                    yield info
                    mask = info.get("action_mask")
                    valid = np.flatnonzero(mask) if mask is not None else np.arange(len(info["action_texts"]))
                    _, _, terminated, truncated, info = env.step(int(rng.choice(valid)))
                    if terminated or truncated:
                        break
            finally:
                env.close()


def prompt_budget_warnings(config: RunConfig, meter: PromptMeter | None = None) -> list[str]:
    """One line per single-agent stage whose measured prompts exceed ``agent.max_prompt_tokens``.

    Multi-agent stages are not measured (their text views need the population); nor are earlier turns
    (``history_window``), which only lengthen prompts further.
    """
    agent = config.agent
    if not isinstance(agent, LMConfig) or agent.architecture != "causal":
        return []
    meter = meter if meter is not None else PromptMeter(agent)
    lines = []
    for i, stage in enumerate(config.stages):
        if envs.spec(stage.env).api == "pettingzoo":
            continue
        longest = 0
        for level in stage_levels(stage):
            longest = max(longest, meter.longest(sample_infos(stage, level)))
        if longest > agent.max_prompt_tokens:
            lines.append(
                f"stages[{i}] ({stage.name}): prompts reach {longest} tokens with {agent.model!r} "
                f"(agent.max_prompt_tokens is {agent.max_prompt_tokens}): their beginnings will be cut; raise "
                f"agent.max_prompt_tokens to at least {longest}"
            )
    return lines


def config_warnings(config: RunConfig, *, prompts: bool = True) -> list[str]:
    """Everything worth a warning before training ``config`` (no errors: :func:`load_config` raises those)."""
    agent = config.agent
    if not isinstance(agent, LMConfig):
        return []
    out = [f"{f.key}: {f.message}" for f in check_model(agent) if not f.error]
    if prompts:
        out += prompt_budget_warnings(config)
    return out
