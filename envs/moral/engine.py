"""The story engine: one Gymnasium env that plays moral stories, from the generator or from story files.

Registered as ``moral/Stories-v0`` (:class:`GeneratedStoryEnv`) and ``moral/StoryFiles-v0`` (:class:`StoryFileEnv`);
both are :class:`StoryEnv` with a different source of stories.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from upbringing.envs.moral.annotations import ANNOTATION_NAMES
from upbringing.envs.moral.generator import LEVELS, SPLITS, StoryGenerator
from upbringing.envs.moral.story import MAX_CHOICES, Choice, Scene, Story
from upbringing.envs.moral.storyfile import STORY_DIR, load_stories, story_paths

TEXT_FEATURES = 128
"""Size of the hashed bag of words of the scene's narrative in the numeric observation."""
CHOICE_FEATURES = 32
"""Size of the hashed bag of words of each choice's text."""
_HEAD = 3  # step fraction, open-choice fraction, return so far
_SLOT = 2 + CHOICE_FEATURES  # valid, reward, words
OBS_SIZE = _HEAD + TEXT_FEATURES + MAX_CHOICES * _SLOT
"""Length of the numeric observation."""

_WORD = re.compile(r"[a-z0-9']+")
_ENDED = "The story is over."


@lru_cache(maxsize=8192)
def _hashed_words(text: str, dims: int) -> np.ndarray:
    """Signed feature hashing of the words of ``text``, L2-normalised (Weinberger et al. 2009, the hashing trick).

    crc32 rather than ``hash()``: Python salts string hashes per process, which would break determinism.
    """
    out = np.zeros(dims, dtype=np.float32)
    for word in _WORD.findall(text.lower()):
        h = zlib.crc32(word.encode())
        # The sign bit halves the bias that colliding words add (the signed variant of the trick).
        out[h % dims] += 1.0 if (h >> 31) & 1 else -1.0
    norm = float(np.linalg.norm(out))
    if norm > 0:
        out /= norm
    out.setflags(write=False)
    return out


class StorySource(Protocol):
    """Where a :class:`StoryEnv` gets its stories."""

    def sample(self, rng: np.random.Generator) -> Story:
        """A story drawn with ``rng`` (the env's ``np_random``)."""

    def get(self, key: Any) -> Story:
        """A particular story (``reset(options={"story": key})``)."""


class GeneratedStories:
    """Stories from :class:`envs.moral.generator.StoryGenerator`; ``key`` is the story's seed."""

    def __init__(self, generator: StoryGenerator):
        self.generator = generator

    def sample(self, rng: np.random.Generator) -> Story:
        return self.generator.story(int(rng.integers(2**62)))

    def get(self, key: Any) -> Story:
        if isinstance(key, bool) or not isinstance(key, int | np.integer):
            raise ValueError(f"generated stories are picked by seed (an int), got {key!r}")
        return self.generator.story(int(key))


class StoryCollection:
    """A fixed list of stories, sampled uniformly; ``key`` is a story id."""

    def __init__(self, stories: Sequence[Story]):
        if not stories:
            raise ValueError("no stories to play")
        self.stories = list(stories)
        self._by_id = {s.id: s for s in self.stories}

    def sample(self, rng: np.random.Generator) -> Story:
        return self.stories[int(rng.integers(len(self.stories)))]

    def get(self, key: Any) -> Story:
        if key not in self._by_id:
            raise ValueError(f"unknown story {key!r}; expected one of: {', '.join(self._by_id)}")
        return self._by_id[key]


class StoryEnv(gym.Env):
    """Play moral stories: read a scene, pick one of its choices, see what happens; a few choices to an ending.

    **Task.** Each episode is one story from the env's source. Every step the agent picks one of the current
    scene's open choices; the story moves on (choices set flags that change later scenes: a lie can be found out,
    a promise comes due) until an ending, or until ``max_steps`` choices (truncation, for stories with loops).

    **Spaces.** Actions: ``Discrete(4)``; slot ``i`` is the scene's ``i``-th open choice, ``info["action_mask"]``
    marks the open slots. Observation: ``Box(-1, 1, (OBS_SIZE,), float32)``: step fraction, open-choice fraction,
    task return so far, a signed hashed bag of words of the scene's text, and per slot: open flag, the choice's task
    reward and a hashed bag of words of its text. Annotations are never part of the observation or the text view.

    **Invalid actions** (a masked slot) do not crash: the story stays where it is, the step costs
    ``invalid_penalty``, reports no events, counts toward ``max_steps``, and ``info["invalid_action"]`` is True.

    **Rewards.** The chosen choice's reward plus the reward of the scene it leads to (stories keep each episode's
    total within about [-1, 1]).

    **Info.** The contract of ``upbringing.envs.contract``: ``text`` (title and scene), ``action_texts`` (one per slot;
    closed slots say so), ``action_mask``, ``events`` (the chosen choice's annotations, e.g. ``{"deceived": 1.0}``),
    ``success`` at the end (True for a ``good`` ending); plus ``story_id``, ``scene_id`` and, at an ending,
    ``ending``. Event names: ``envs.moral.annotations.ANNOTATION_NAMES``.

    **Reset options.** ``{"story": key}`` plays a particular story (a seed for generated stories, an id for story
    files) or a :class:`~envs.moral.story.Story` given directly.

    **Versions.** v0: first version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}  # noqa: RUF012 (Gymnasium's declared interface)
    event_names: tuple[str, ...] = ANNOTATION_NAMES

    def __init__(
        self, source: StorySource, *, max_steps: int = 20, invalid_penalty: float = 0.05, render_mode: str | None = None
    ):
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        if invalid_penalty < 0:
            raise ValueError(f"invalid_penalty must be >= 0, got {invalid_penalty}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.source = source
        self.max_steps = int(max_steps)
        self.invalid_penalty = float(invalid_penalty)
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(MAX_CHOICES)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(OBS_SIZE,), dtype=np.float32)
        self._story: Story | None = None
        self._scene: Scene | None = None
        self._flags: dict[str, bool] = {}
        self._open: list[Choice] = []
        self._steps = 0
        self._return = 0.0

    # -- state ------------------------------------------------------------------------------------------------

    @property
    def story(self) -> Story:
        """The story being played."""
        if self._story is None:
            raise RuntimeError("call reset() first")
        return self._story

    @property
    def scene(self) -> Scene:
        """The current scene."""
        if self._scene is None:
            raise RuntimeError("call reset() first")
        return self._scene

    @property
    def flags(self) -> dict[str, bool]:
        """A copy of the story's flags so far."""
        return dict(self._flags)

    def available_choices(self) -> list[Choice]:
        """The open choices, in action-slot order (for scripted reference policies and evaluation, not agents)."""
        return list(self._open)

    def action_masks(self) -> np.ndarray:
        """The action mask as a bool array (the method name sb3-contrib's ``MaskablePPO`` looks for)."""
        return self._mask().astype(bool)

    def _ended(self) -> bool:
        return self._scene is not None and self._scene.ending is not None

    def _mask(self) -> np.ndarray:
        mask = np.zeros(MAX_CHOICES, dtype=np.int8)
        # At an ending no choice is open; slot 0 stays valid so the mask is never all zeros.
        mask[: len(self._open) if not self._ended() else 1] = 1
        return mask

    # -- views ------------------------------------------------------------------------------------------------

    def _text(self) -> str:
        return f"{self.story.title}\n\n{self.scene.render(self._flags)}"

    def _action_texts(self) -> list[str]:
        if self._ended():
            return [_ENDED] + ["(no choice)"] * (MAX_CHOICES - 1)
        return [c.text for c in self._open] + ["(no choice)"] * (MAX_CHOICES - len(self._open))

    def _obs(self) -> np.ndarray:
        obs = np.zeros(OBS_SIZE, dtype=np.float32)
        obs[0] = self._steps / self.max_steps
        obs[1] = len(self._open) / MAX_CHOICES
        obs[2] = np.clip(self._return, -1.0, 1.0)
        obs[_HEAD : _HEAD + TEXT_FEATURES] = _hashed_words(self.scene.render(self._flags), TEXT_FEATURES)
        for i, choice in enumerate(self._open):
            at = _HEAD + TEXT_FEATURES + i * _SLOT
            obs[at] = 1.0
            obs[at + 1] = choice.reward
            obs[at + 2 : at + _SLOT] = _hashed_words(choice.text, CHOICE_FEATURES)
        return obs

    def _info(self, events: dict[str, float]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "text": self._text(),
            "action_texts": self._action_texts(),
            "action_mask": self._mask(),
            "events": events,
            "story_id": self.story.id,
            "scene_id": self.scene.id,
        }
        return info

    def preview_events(self) -> list[dict[str, float] | None]:
        """The events each action would report if taken now (its choice's annotations; None for a closed slot).

        Exact, since a step reports the chosen choice's annotations whatever its outcome; it changes no state and
        draws no randomness. The constitution's tension measure reads it (``constitutions.tension``).
        """
        opened: list[dict[str, float] | None] = [
            {name: float(v) for name, v in c.annotations.items()} for c in self._open
        ]
        return opened + [None] * (MAX_CHOICES - len(opened))

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: the scene's text and its numbered choices."""
        if self.render_mode != "ansi" or self._scene is None:
            return None
        lines = [self._text(), ""]
        lines += [f"  [{i}] {c.text}" for i, c in enumerate(self._open)] or [f"  {_ENDED}"]
        return "\n".join(lines)

    # -- dynamics ---------------------------------------------------------------------------------------------

    def _enter(self, scene: Scene) -> None:
        self._scene = scene
        self._open = [] if scene.ending is not None else scene.open_choices(self._flags)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        key = (options or {}).get("story")
        if isinstance(key, Story):
            self._story = key
        elif key is not None:
            self._story = self.source.get(key)
        else:
            self._story = self.source.sample(self.np_random)
        self._flags = {}
        self._steps = 0
        self._return = 0.0
        self._enter(self._story.by_id[self._story.start])
        return self._obs(), self._info({})

    def step(self, action: Any):
        if self._scene is None or self._ended():
            raise RuntimeError("the story has ended (or not started): call reset()")
        slot = int(action)
        self._steps += 1
        if 0 <= slot < len(self._open):
            choice = self._open[slot]
            # Flags are set before the outcome is resolved, so a choice's own flags can steer where it leads.
            self._flags.update(choice.set_flags)
            nxt = self.story.by_id[choice.resolve(self._flags, self.np_random)]
            reward = choice.reward + nxt.reward
            events = {name: float(v) for name, v in choice.annotations.items()}
            self._enter(nxt)
            invalid = False
        else:
            reward, events, invalid = -self.invalid_penalty, {}, True
        self._return += reward
        terminated = self._ended()
        truncated = not terminated and self._steps >= self.max_steps
        info = self._info(events)
        if invalid:
            info["invalid_action"] = True
        if terminated or truncated:
            info["success"] = bool(terminated and self.scene.ending == "good")
        if terminated:
            info["ending"] = self.scene.ending
        return self._obs(), float(reward), terminated, truncated, info


class GeneratedStoryEnv(StoryEnv):
    """``moral/Stories-v0``: endless generated stories at a difficulty level (see :class:`StoryEnv` for the task).

    Args:
        level: 0 the moral and the rewarded choice agree; 1 temptation (a violation pays more); 2 adds delayed
            consequences (lies found out, promises that come due); 3 adds conflicts between principles; 4 adds
            ambiguity (uncertain outcomes, milder and less obvious stakes).
        split: ``"train"`` (training template families) or ``"eval"`` (held-out families, to measure transfer).
        families: Only these template families (names from ``envs.moral.generator.FAMILIES``, the files of
            ``envs/moral/templates/``).
        max_steps: Choices before an episode is truncated.
        invalid_penalty: Cost of choosing a closed slot.
        render_mode: None or ``"ansi"``.
    """

    def __init__(
        self,
        level: int = 0,
        split: str = "train",
        families: Sequence[str] | None = None,
        max_steps: int = 20,
        invalid_penalty: float = 0.05,
        render_mode: str | None = None,
    ):
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level < LEVELS:
            raise ValueError(f"level must be an int from 0 to {LEVELS - 1}, got {level!r}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        generator = StoryGenerator(level=level, split=split, families=families)
        super().__init__(
            GeneratedStories(generator), max_steps=max_steps, invalid_penalty=invalid_penalty, render_mode=render_mode
        )
        self.level = level
        self.split = split


class StoryFileEnv(StoryEnv):
    """``moral/StoryFiles-v0``: hand-written stories from story files (see :class:`StoryEnv` for the task).

    Args:
        story_dir: Folder of story files (default: the stories shipped in ``envs/moral/stories/``).
        story_files: These story files instead of a folder.
        level: Only stories whose ``difficulty`` is at most this (None: all).
        max_steps: Choices before an episode is truncated.
        invalid_penalty: Cost of choosing a closed slot.
        render_mode: None or ``"ansi"``.

    Raises:
        curriculum.yamlfile.FileError: a story file is invalid (every problem is listed).
    """

    def __init__(
        self,
        story_dir: str | Path | None = None,
        story_files: Sequence[str | Path] | None = None,
        level: int | None = None,
        max_steps: int = 20,
        invalid_penalty: float = 0.05,
        render_mode: str | None = None,
    ):
        if story_dir is not None and story_files is not None:
            raise ValueError("give story_dir or story_files, not both")
        if isinstance(story_files, str | Path):
            raise ValueError("story_files must be a list of paths")
        paths = list(story_files) if story_files is not None else story_paths(story_dir or STORY_DIR)
        stories = load_stories(paths)
        if level is not None:
            if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level < LEVELS:
                raise ValueError(f"level must be None or an int from 0 to {LEVELS - 1}, got {level!r}")
            stories = [s for s in stories if s.difficulty <= level]
            if not stories:
                raise ValueError(f"no story has difficulty <= {level}")
        super().__init__(
            StoryCollection(stories), max_steps=max_steps, invalid_penalty=invalid_penalty, render_mode=render_mode
        )
        self.level = level
