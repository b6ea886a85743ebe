"""What a run shows on the terminal: a progress bar per stage and one-time warnings (never silent, never repeated)."""

from __future__ import annotations

import sys

from tqdm import tqdm
from upbringing.curriculum.teachers import Teacher


class Console:
    """Progress bars of a run's stages and its one-time warnings.

    Args:
        names: The stages' names, in order.
        enabled: Draw progress bars (warnings are written either way).
        max_prompt_tokens: The LM agent's prompt budget (None for agents without one), named in the warning.
    """

    def __init__(self, names: list[str], enabled: bool, max_prompt_tokens: int | None = None):
        self.names = names
        self.enabled = enabled
        self.max_prompt_tokens = max_prompt_tokens
        self._bars: dict[int, tqdm] = {}
        self._cut_warned: set[int] = set()  # stages whose cut prompts were reported

    def warn_cut_prompts(self, stage: int, metrics: dict[str, float]) -> None:
        """Say once per stage that prompts were cut to the LM agent's ``max_prompt_tokens`` (never silently)."""
        longest = int(metrics.get("train/longest_prompt_cut", 0) or 0)
        if longest <= 0 or stage in self._cut_warned:
            return
        self._cut_warned.add(stage)
        tqdm.write(
            f"warning: stage {self.names[stage]}: prompts of up to {longest} tokens were cut to "
            f"agent.max_prompt_tokens={self.max_prompt_tokens} (their beginnings are not seen); "
            f"raise it to at least {longest}",
            file=sys.stderr,
        )

    def bar(self, stage: int, teacher: Teacher) -> tqdm | None:
        """The stage's progress bar (created at the stage's recorded steps), or None when bars are off."""
        if not self.enabled or teacher.progress[stage].finished:
            return self._bars.get(stage)
        if stage not in self._bars:
            self._bars[stage] = tqdm(
                total=teacher.budgets[stage],
                initial=teacher.progress[stage].steps,
                desc=f"stage {stage + 1}/{len(self.names)} {self.names[stage]}",
                unit="step",
                leave=True,
                dynamic_ncols=True,
            )
        return self._bars[stage]

    def close(self, stage: int) -> None:
        """The stage is finished: close its bar."""
        bar = self._bars.pop(stage, None)
        if bar is not None:
            bar.close()
