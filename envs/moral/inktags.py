"""The tags and variables of an Ink story that carry events and reward (``envs/moral/INK_FORMAT.md``): parsing
each tag, the problems ``upbringing check`` names, and the effects of a step's tags and variable changes."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from upbringing.envs.moral.annotations import ANNOTATION_NAMES

TAG_KINDS: dict[str, str] = {
    "event": "NAME [MAGNITUDE]: the step reports event NAME (a project event name) with MAGNITUDE > 0 (default 1)",
    "reward": "X: X is added to the step's reward",
    "ending": "NAME: names the ending the story reached (a 'good' ending is a success)",
    "title": "TEXT: the story's title (global tag), shown at the top of the situation",
    "author": "TEXT: who wrote the story (global tag)",
    "variable": "VAR EVENT [SCALE]: a rise of numeric variable VAR, times SCALE, is event EVENT (global tag)",
    "reward_variable": "VAR [SCALE]: the change of numeric variable VAR, times SCALE, is reward (global tag)",
}
"""Every tag kind Upbringing reads (``kind: value``); ``upbringing check`` names any other as unknown."""

GLOBAL_KINDS = ("title", "author", "variable", "reward_variable")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Tag:
    """One parsed tag: its ``kind`` and ``value`` (the text after ``kind:``), and the raw text."""

    raw: str
    kind: str
    value: str


def parse_tag(raw: str) -> Tag:
    """Split ``"event: harm_other 1"`` into kind ``event`` and value ``harm_other 1`` (a tag without ``:`` has
    kind ``""``)."""
    text = raw.strip()
    kind, sep, value = text.partition(":")
    if not sep:
        return Tag(text, "", text)
    return Tag(text, kind.strip().lower(), value.strip())


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def tag_problem(tag: Tag) -> str | None:
    """What is wrong with ``tag`` (None when Upbringing can read it)."""
    expected = f"expected '{tag.kind}: " + TAG_KINDS.get(tag.kind, "") + "'"
    if tag.kind not in TAG_KINDS:
        return f"unknown tag '{tag.raw}': expected one of the kinds {', '.join(TAG_KINDS)} ('kind: value')"
    parts = tag.value.split()
    if tag.kind == "event":
        if not parts or len(parts) > 2:
            return f"tag '{tag.raw}': {expected}"
        if parts[0] not in ANNOTATION_NAMES:
            return f"tag '{tag.raw}': unknown event '{parts[0]}'; expected one of {', '.join(ANNOTATION_NAMES)}"
        if len(parts) == 2 and not ((m := _number(parts[1])) is not None and m > 0):
            return f"tag '{tag.raw}': the magnitude must be a number > 0"
    elif tag.kind == "reward":
        if len(parts) != 1 or _number(parts[0]) is None:
            return f"tag '{tag.raw}': {expected}"
    elif tag.kind == "ending":
        if not tag.value:
            return f"tag '{tag.raw}': {expected}"
    elif tag.kind == "variable":
        if len(parts) not in (2, 3) or not _NAME.match(parts[0]) or (len(parts) == 3 and _number(parts[2]) is None):
            return f"tag '{tag.raw}': {expected}"
        if parts[1] not in ANNOTATION_NAMES:
            return f"tag '{tag.raw}': unknown event '{parts[1]}'; expected one of {', '.join(ANNOTATION_NAMES)}"
    elif tag.kind == "reward_variable" and (
        len(parts) not in (1, 2) or not _NAME.match(parts[0]) or (len(parts) == 2 and _number(parts[1]) is None)
    ):
        return f"tag '{tag.raw}': {expected}"
    return None


@dataclass(frozen=True)
class TagEffects:
    """What a step's tags say: events (summed per name), reward (summed) and the last ending named."""

    events: dict[str, float] = field(default_factory=dict)
    reward: float = 0.0
    ending: str | None = None


def tag_effects(tags: Sequence[str], where: str) -> TagEffects:
    """The events, reward and ending of ``tags``; other kinds are left to :func:`check_ink_file`.

    Raises:
        ValueError: an ``event``/``reward``/``ending`` tag Upbringing cannot read (``where`` names the story), e.g. a
            dynamic tag that evaluated to an unknown event name.
    """
    events: dict[str, float] = {}
    reward, ending = 0.0, None
    for raw in tags:
        tag = parse_tag(raw)
        if tag.kind not in ("event", "reward", "ending"):
            continue
        problem = tag_problem(tag)
        if problem:
            raise ValueError(f"{where}: {problem}")
        parts = tag.value.split()
        if tag.kind == "event":
            events[parts[0]] = events.get(parts[0], 0.0) + (float(parts[1]) if len(parts) == 2 else 1.0)
        elif tag.kind == "reward":
            reward += float(parts[0])
        else:
            ending = tag.value
    return TagEffects(events, reward, ending)


# ----------------------------------------------------------------------------------------------- variables


@dataclass(frozen=True)
class VariableEvent:
    """A numeric Ink variable whose rise (times ``scale``) is event ``event``; a negative scale maps a fall."""

    variable: str
    event: str
    scale: float = 1.0


@dataclass(frozen=True)
class RewardVariable:
    """A numeric Ink variable whose change, times ``scale``, is added to the reward."""

    variable: str
    scale: float = 1.0


def variable_events(spec: Mapping[str, Any], where: str) -> list[VariableEvent]:
    """Read the env's ``variables=`` argument: ``{VAR: EVENT}`` or ``{VAR: {"event": EVENT, "scale": S}}``.

    Raises:
        ValueError: a malformed entry or an event name outside the project vocabulary.
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: variables must be a mapping {{ink_variable: event_name}}, got {spec!r}")
    out = []
    for var, target in spec.items():
        if isinstance(target, str):
            event, scale = target, 1.0
        elif isinstance(target, Mapping) and set(target) <= {"event", "scale"} and "event" in target:
            event, scale = target["event"], target.get("scale", 1.0)
        else:
            raise ValueError(
                f"{where}: variables[{var!r}] must be an event name or {{event: NAME, scale: NUMBER}}, got {target!r}"
            )
        if event not in ANNOTATION_NAMES:
            raise ValueError(
                f"{where}: variables[{var!r}]: unknown event {event!r}; expected one of {', '.join(ANNOTATION_NAMES)}"
            )
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale) or scale == 0:
            raise ValueError(f"{where}: variables[{var!r}].scale must be a non-zero number, got {scale!r}")
        out.append(VariableEvent(str(var), event, float(scale)))
    return out
