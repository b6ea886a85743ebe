"""The moral family of environments: text scenarios where the agent chooses what to do and the story answers.

``SPECS`` lists them (see :class:`envs.registry.EnvSpec`):

- ``moral/Stories-v0``: endless generated stories (``upbringing.envs.moral.generator``) at difficulty levels 0..4, from
  the training or the held-out template families (``split``);
- ``moral/StoryFiles-v0``: hand-written story files (``envs/moral/stories/`` by default; the format is documented
  in ``envs/moral/STORY_FORMAT.md``);
- ``moral/Ink-v0``: a compiled Ink story (``story=``; the format and how to author one: ``envs/moral/INK_FORMAT.md``),
  played with the optional ``bink`` runtime; its levels are the stories shipped in ``envs/moral/ink/``.
- ``moral/MoralChoice-v0``: one decision between the two actions of a MoralChoice scenario (Scherrer et al. 2023),
  read from the user's copy of the published CSVs (``path=``; the project ships no data), events from the
  annotations of Gert's rules (:mod:`upbringing.envs.moral.moralchoice`).

The first two are :class:`envs.moral.engine.StoryEnv`, the Ink env is :class:`envs.moral.ink_env.InkEnv`. Story
files are checked with :func:`upbringing.envs.moral.storyfile.check_story_file` (Ink stories with
:func:`upbringing.envs.moral.inkcheck.check_ink_file`); metrics (task return, violations per category, violations
normalised to a random agent) are in :mod:`upbringing.envs.moral.metrics`.
"""

from __future__ import annotations

from upbringing.envs.moral.annotations import ANNOTATION_NAMES, GERT_RULE_EVENTS
from upbringing.envs.registry import EnvSpec

SPECS: list[EnvSpec] = [
    EnvSpec(
        id="moral/Stories-v0",
        entry_point="upbringing.envs.moral.engine:GeneratedStoryEnv",
        family="moral",
        api="gymnasium",
        description="Generated moral stories: choose what to do, live with the consequences (3-7 choices).",
        event_names=ANNOTATION_NAMES,
        levels=tuple({"level": level} for level in range(5)),
        extra={
            "level_names": ["agree", "temptation", "delayed consequences", "conflicting principles", "ambiguity"],
            "splits": ["train", "eval", "all"],
            "age": "children and young people",
        },
    ),
    EnvSpec(
        id="moral/StoryFiles-v0",
        entry_point="upbringing.envs.moral.engine:StoryFileEnv",
        family="moral",
        api="gymnasium",
        description="Hand-written moral stories from story files (a folder or a list of YAML files).",
        event_names=ANNOTATION_NAMES,
        levels=tuple({"level": level} for level in range(5)),
        extra={"source": "envs/moral/stories", "format": "envs/moral/STORY_FORMAT.md"},
    ),
    EnvSpec(
        id="moral/Ink-v0",
        entry_point="upbringing.envs.moral.ink_env:InkEnv",
        family="moral",
        api="gymnasium",
        description="A compiled Ink story (story=): its text and choices; events and reward from its tags, variables.",
        event_names=ANNOTATION_NAMES,
        levels=tuple({"story": name} for name in ("swing-turns", "snack-box", "den-promise", "kite-wind")),
        extra={"source": "envs/moral/ink", "format": "envs/moral/INK_FORMAT.md", "requires": "upbringing[ink]"},
    ),
    EnvSpec(
        id="moral/MoralChoice-v0",
        entry_point="upbringing.envs.moral.moralchoice:MoralChoiceEnv",
        family="moral",
        api="gymnasium",
        description="MoralChoice scenarios (your copy of the CSVs, path=): choose one of two actions, once.",
        event_names=tuple(GERT_RULE_EVENTS.values()),
        extra={
            "needs": "path= a MoralChoice scenario CSV (the project ships no data)",
            "level_kwargs_by": "level=low|high (ambiguity) or one of Gert's rules: " + ", ".join(GERT_RULE_EVENTS),
            "splits": ["train", "eval", "all"],
            "source": "Scherrer, Shi, Feder & Blei, NeurIPS 2023 (MIT licence)",
        },
    ),
]
