"""``moral/Ink-v0``: play a compiled Ink story (Inky export or ``inkjs-compiler``) as a Gymnasium env.

The story itself carries the ground truth: tags on choices and lines, and numeric Ink variables mapped to events
or reward (:mod:`upbringing.envs.moral.inkfile`, ``envs/moral/INK_FORMAT.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from upbringing.envs.moral.annotations import ANNOTATION_NAMES
from upbringing.envs.moral.engine import _hashed_words
from upbringing.envs.moral.inkfile import InkPlayer, Passage, load_ink, numeric_variables, story_mappings
from upbringing.envs.moral.inktags import tag_effects

TEXT_FEATURES = 128
"""Size of the hashed bag of words of the situation in the numeric observation."""
KNOT_FEATURES = 16
"""Size of the hashed bag of the knots entered on the last step."""
CHOICE_FEATURES = 32
"""Size of the hashed bag of words of each choice's text."""
_HEAD = 3  # step fraction, open-choice fraction, return so far
_SLOT = 1 + CHOICE_FEATURES  # open flag, words
_ENDED = "The story is over."
_NO_CHOICE = "(no choice)"


class InkEnv(gym.Env):
    """Play a compiled Ink story: read what the story says, pick one of its choices, until the story ends.

    **Task.** Each episode plays the story from its start. The situation (``info["text"]``) is the story's title and
    the text Ink produced since the last choice; the candidate actions are the current Ink choices. The episode ends
    (``terminated``) when the story does (``-> END``/``-> DONE``, no choices left), or is truncated after
    ``max_steps`` choices (stories with loops).

    **Spaces.** Actions: ``Discrete(max_choices)``; slot ``i`` is the story's ``i``-th current choice and
    ``info["action_mask"]`` marks the slots in use. A story that offers more choices than ``max_choices`` raises
    ``ValueError`` (raise ``max_choices``; ``upbringing check STORY.json`` reports the most a story offers).
    Observation: ``Box(-1, 1, (3 + 128 + 16 + 33 * max_choices,), float32)``: step fraction, open-choice fraction,
    return so far (clipped), a signed hashed bag of words of the situation, a hashed bag of the knots entered on the
    last step, and per slot an open flag and a hashed bag of words of the choice's text. Tags and variables are never
    observed.

    **Rewards.** The sum of the step's ``# reward: X`` tags (on the chosen choice and on the lines that follow it)
    plus the change of the reward variable (``reward_variable`` or the story's ``# reward_variable:`` tag) times
    its scale. An invalid action (a closed slot) leaves the story where it is, costs ``invalid_penalty``, reports no
    events, counts toward ``max_steps`` and sets ``info["invalid_action"]``.

    **Events.** ``# event: NAME [MAGNITUDE]`` tags of the step, plus for each mapped variable its rise times its
    scale when positive (``variables`` or the story's ``# variable:`` tags). Names: the project's annotation names
    (``envs.moral.annotations``). Empty on reset: tags before the first choice are not reported
    (``upbringing check`` flags them).

    **Info.** The contract of ``upbringing.envs.contract``, plus ``story_id`` (the file's stem), ``tags`` (every tag
    of the step), ``knots`` (knots and stitches entered), ``variables`` (current values of the mapped variables),
    and at the end ``success`` (the story ended on an ``# ending: good`` tag) and ``ending`` (the last ending tag's
    name, or None).

    **Randomness.** ``reset(seed=...)`` seeds Ink's own random state (``RANDOM``, shuffle sequences) from the env's
    ``np_random``, so a seed reproduces the run.

    **Not supported.** External functions without an Ink fallback (the host binds none), multiple flows, list-valued
    variables as mapped variables; threads, tunnels, sequences and everything else the runtime plays are supported.

    Args:
        story: A compiled Ink JSON file, or the name of a shipped story (``envs/moral/ink/*.json``).
        variables: Numeric Ink variables mapped to events: ``{VAR: EVENT}`` or ``{VAR: {event: EVENT, scale: S}}``
            (a negative scale maps a fall of the variable); override the story's ``# variable:`` tags.
        reward_variable: A numeric Ink variable whose change is reward (overrides ``# reward_variable:``).
        reward_scale: Scale of the reward variable's change.
        max_choices: Action slots (the most choices the story may offer at once).
        max_steps: Choices before an episode is truncated.
        invalid_penalty: Cost of choosing a closed slot.
        render_mode: None or ``"ansi"``.

    Raises:
        yamlfile.FileError: the story file is missing or not compiled Ink JSON.
        ImportError: the optional ``bink`` runtime is not installed (``pip install 'upbringing[ink]'``).
        ValueError: a bad argument, or a mapping that names an undeclared or non-numeric variable.

    **Versions.** v0: first version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}  # noqa: RUF012 (Gymnasium's declared interface)
    action_space: spaces.Discrete
    observation_space: spaces.Box
    event_names: tuple[str, ...] = ANNOTATION_NAMES

    def __init__(
        self,
        story: str | Path | None = None,
        variables: Mapping[str, Any] | None = None,
        reward_variable: str | None = None,
        reward_scale: float = 1.0,
        max_choices: int = 6,
        max_steps: int = 50,
        invalid_penalty: float = 0.05,
        render_mode: str | None = None,
    ):
        if story is None:
            raise ValueError("story= is required: a compiled Ink JSON file or the name of a shipped story")
        for name, value, low in (("max_choices", max_choices, 1), ("max_steps", max_steps, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if invalid_penalty < 0:
            raise ValueError(f"invalid_penalty must be >= 0, got {invalid_penalty}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.doc = load_ink(story)
        self.player = InkPlayer(self.doc)
        self.mapped, self.reward_variable = story_mappings(self.player, variables, reward_variable, reward_scale)
        reward_names = [self.reward_variable.variable] if self.reward_variable else []
        self._watched = [m.variable for m in self.mapped] + reward_names
        self.max_choices = int(max_choices)
        self.max_steps = int(max_steps)
        self.invalid_penalty = float(invalid_penalty)
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(self.max_choices)
        size = _HEAD + TEXT_FEATURES + KNOT_FEATURES + self.max_choices * _SLOT
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(size,), dtype=np.float32)
        self._passage: Passage | None = None
        self._choices: list[tuple[str, tuple[str, ...]]] = []
        self._values: dict[str, float] = {}
        self._steps = 0
        self._return = 0.0
        self._ending: str | None = None

    # -- views ------------------------------------------------------------------------------------------------

    def _ended(self) -> bool:
        return self._passage is not None and not self._choices

    def _mask(self) -> np.ndarray:
        mask = np.zeros(self.max_choices, dtype=np.int8)
        # At the end no choice is open; slot 0 stays valid so the mask is never all zeros (as in StoryEnv).
        mask[: len(self._choices) if self._choices else 1] = 1
        return mask

    def action_masks(self) -> np.ndarray:
        """The action mask as a bool array (the method name sb3-contrib's ``MaskablePPO`` looks for)."""
        return self._mask().astype(bool)

    def _text(self) -> str:
        assert self._passage is not None
        return f"{self.player.title}\n\n{self._passage.text or '(the story goes on)'}"

    def _action_texts(self) -> list[str]:
        if not self._choices:
            return [_ENDED] + [_NO_CHOICE] * (self.max_choices - 1)
        return [t.strip() or "(continue)" for t, _ in self._choices] + [_NO_CHOICE] * (
            self.max_choices - len(self._choices)
        )

    def _obs(self) -> np.ndarray:
        assert self._passage is not None
        obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        obs[0] = self._steps / self.max_steps
        obs[1] = len(self._choices) / self.max_choices
        obs[2] = np.clip(self._return, -1.0, 1.0)
        at = _HEAD
        obs[at : at + TEXT_FEATURES] = _hashed_words(self._passage.text, TEXT_FEATURES)
        at += TEXT_FEATURES
        obs[at : at + KNOT_FEATURES] = _hashed_words(" ".join(self._passage.knots), KNOT_FEATURES)
        at += KNOT_FEATURES
        for i, (text, _) in enumerate(self._choices):
            obs[at + i * _SLOT] = 1.0
            obs[at + i * _SLOT + 1 : at + (i + 1) * _SLOT] = _hashed_words(text, CHOICE_FEATURES)
        return obs

    def _info(self, events: dict[str, float], tags: tuple[str, ...]) -> dict[str, Any]:
        assert self._passage is not None
        return {
            "text": self._text(),
            "action_texts": self._action_texts(),
            "action_mask": self._mask(),
            "events": events,
            "story_id": self.doc.name,
            "tags": list(tags),
            "knots": list(self._passage.knots),
            "variables": dict(self._values),
        }

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: the situation and its numbered choices."""
        if self.render_mode != "ansi" or self._passage is None:
            return None
        lines = [self._text(), ""]
        lines += [f"  [{i}] {t}" for i, (t, _) in enumerate(self._choices)] or [f"  {_ENDED}"]
        return "\n".join(lines)

    # -- dynamics ---------------------------------------------------------------------------------------------

    def _enter(self, passage: Passage) -> None:
        self._passage = passage
        self._choices = self.player.choices()
        if len(self._choices) > self.max_choices:
            raise ValueError(
                f"{self.doc.path}: the story offers {len(self._choices)} choices at once but max_choices is "
                f"{self.max_choices}; make the env with max_choices={len(self._choices)} or more"
            )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        # Small seeds: Ink adds storySeed to its counters in 32-bit ints.
        passage = self.player.reset(int(self.np_random.integers(2**20)))
        self._steps, self._return, self._ending = 0, 0.0, None
        self._values = numeric_variables(self.player, self._watched)
        self._enter(passage)
        return self._obs(), self._info({}, passage.tags)

    def step(self, action: Any):
        if self._passage is None or self._ended():
            raise RuntimeError("the story has ended (or not started): call reset()")
        slot = int(action)
        self._steps += 1
        tags: tuple[str, ...] = ()
        if 0 <= slot < len(self._choices):
            choice_tags = self._choices[slot][1]
            passage = self.player.choose(slot)
            tags = choice_tags + passage.tags
            effects = tag_effects(tags, str(self.doc.path))
            events, reward = dict(effects.events), effects.reward
            if effects.ending is not None:
                self._ending = effects.ending
            values = numeric_variables(self.player, self._watched)
            for m in self.mapped:
                rise = (values[m.variable] - self._values[m.variable]) * m.scale
                if rise > 0:
                    events[m.event] = events.get(m.event, 0.0) + rise
            if self.reward_variable is not None:
                name = self.reward_variable.variable
                reward += (values[name] - self._values[name]) * self.reward_variable.scale
            self._values = values
            self._enter(passage)
            invalid = False
        else:
            reward, events, invalid = -self.invalid_penalty, {}, True
        self._return += reward
        terminated = self._ended()
        truncated = not terminated and self._steps >= self.max_steps
        info = self._info(events, tags)
        if invalid:
            info["invalid_action"] = True
        if terminated or truncated:
            info["success"] = bool(terminated and self._ending == "good")
        if terminated:
            info["ending"] = self._ending
        return self._obs(), float(reward), terminated, truncated, info
