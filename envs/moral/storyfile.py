"""Story files: read, check and write the YAML format documented in ``envs/moral/STORY_FORMAT.md``.

:func:`check_story_file` is what ``upbringing check story.yaml`` runs: it returns one
:class:`~upbringing.yamlfile.Problem` per problem (file, line, key, what was expected), covering broken YAML, wrong
types, unknown keys and every graph check of :func:`upbringing.envs.moral.story.story_problems`.
:func:`load_story_file` returns the :class:`~envs.moral.story.Story` or raises :class:`~upbringing.yamlfile.FileError`
listing every problem.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from upbringing.envs.moral.story import ENDINGS, SCALED, Choice, KeyPath, Passage, Scene, Story
from upbringing.envs.moral.storygraph import normalise, story_problems
from upbringing.yamlfile import FileError, LineMap, Problem, dotted, load_yaml, pydantic_problems

STORY_DIR = Path(__file__).parent / "stories"
"""The hand-written stories shipped with Upbringing."""

_EXPECTED = "expected a story: a mapping with `id`, `title`, `start` and `scenes` (see envs/moral/STORY_FORMAT.md)"
# Parsed stories by (path, modification time, size): every env built in a process shares one parse per file.
_CACHE: dict[tuple[str, int, int], Story] = {}


def _graph_problems(story: Story, opaque: frozenset[int], file: str, lines: LineMap) -> list[Problem]:
    return [
        Problem(file, message, key=dotted(path), line=lines.line(path))
        for path, message in story_problems(story, opaque)
    ]


def _partial_scene(raw: Any, context: dict[str, Any]) -> tuple[Scene, bool]:
    """What can be read of one scene: the scene (invalid parts replaced by stand-ins) and whether all its exits are
    known. Problems inside the stand-ins are already reported by the schema check and are filtered out later."""
    try:
        return Scene.model_validate(raw, context=context), True
    except ValidationError:
        pass
    raw = raw if isinstance(raw, dict) else {}
    raw_choices = raw.get("choices", [])
    exits_known = isinstance(raw_choices, list)
    choices = []
    for item in raw_choices if exits_known else []:
        try:
            choices.append(Choice.model_validate(item, context=context))
        except ValidationError:
            exits_known = False
            choices.append(Choice.model_construct(text="?", goto=(), reward=0.0, annotations={}, set_flags={}, when={}))
    passages = []
    for item in raw.get("passages", []) if isinstance(raw.get("passages"), list) else []:
        try:
            passages.append(Passage.model_validate(item, context=context))
        except ValidationError:
            passages.append(Passage.model_construct(text="?", when={}))
    reward = raw.get("reward", 0.0)
    scene = Scene.model_construct(
        id=raw["id"] if isinstance(raw.get("id"), str) else "",
        text="?",
        passages=tuple(passages),
        reward=float(reward) if isinstance(reward, int | float) and -1.0 <= reward <= 1.0 else 0.0,  # stand-in only
        choices=tuple(choices),
        ending=raw.get("ending") if raw.get("ending") in ENDINGS else None,
    )
    return scene, exits_known


def _partial(data: dict[str, Any], context: dict[str, Any]) -> tuple[Story, frozenset[int]] | None:
    """The readable part of a story whose file has schema errors, so the graph checks can still run on it."""
    raw_scenes = data.get("scenes")
    if not isinstance(raw_scenes, list):
        return None
    scenes, opaque = [], set()
    for i, raw in enumerate(raw_scenes):
        scene, exits_known = _partial_scene(raw, context)
        scenes.append(scene)
        if not exits_known:
            opaque.add(i)
    start = data.get("start")
    story = Story.model_construct(
        id="partial",
        title="partial",
        start=start if isinstance(start, str) else "",
        scenes=tuple(scenes),
        summary="",
        difficulty=0,
        tags=(),
    )
    return story, frozenset(opaque)


def _within(path: KeyPath, reported: list[KeyPath]) -> bool:
    return any(path[: len(r)] == r or r[: len(path)] == path for r in reported)


def parse_story(data: Any, lines: LineMap, file: str) -> tuple[Story | None, list[Problem]]:
    """Validate parsed YAML ``data`` as a story; return the story (None if invalid) and every problem found.

    A story that declares ``reward_scale`` is returned with its rewards on the env's scale (:func:`normalise`)."""
    if not isinstance(data, dict) or "scenes" not in data:
        return None, [Problem(file, _EXPECTED, line=lines.line(()))]
    # Rewards on the author's own scale are accepted when the file declares one (it is checked as part of the story).
    context = {SCALED: data.get("reward_scale") is not None}
    try:
        story = Story.model_validate(data, context=context)
    except ValidationError as err:
        problems = pydantic_problems(err, file, lines, data=data)
        partial = _partial(data, context)
        if partial is not None:
            reported = [tuple(e["loc"]) for e in err.errors(include_url=False)]
            for path, message in story_problems(*partial):
                if not _within(path, reported):
                    problems.append(Problem(file, message, key=dotted(path), line=lines.line(path)))
        return None, problems
    problems = _graph_problems(story, frozenset(), file, lines)
    return (None if problems else normalise(story)), problems


def check_story_file(path: str | Path) -> list[Problem]:
    """Every problem in the story file at ``path`` (empty when it is a valid story)."""
    try:
        data, lines = load_yaml(path)
    except FileError as err:
        return err.problems
    return parse_story(data, lines, str(path))[1]


def load_story_file(path: str | Path) -> Story:
    """Read a story file.

    Raises:
        FileError: the file is missing, is not valid YAML, or is not a valid story; lists every problem.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        raise FileError([Problem(str(path), "file not found")]) from None
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _CACHE:
        data, lines = load_yaml(path)
        story, problems = parse_story(data, lines, str(path))
        if problems or story is None:
            raise FileError(problems)
        _CACHE[key] = story
    return _CACHE[key]


def story_paths(story_dir: str | Path) -> list[Path]:
    """The story files (``*.yaml``, ``*.yml``) in ``story_dir``, sorted by name."""
    folder = Path(story_dir)
    if not folder.is_dir():
        raise FileError([Problem(str(folder), "story folder not found")])
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def load_stories(paths: Iterable[str | Path]) -> list[Story]:
    """Read several story files; raise one :class:`FileError` listing the problems of all of them.

    Story ids must be unique across the files (an env picks stories by id).
    """
    stories: list[Story] = []
    problems: list[Problem] = []
    first_file: dict[str, str] = {}
    for path in paths:
        try:
            story = load_story_file(path)
        except FileError as err:
            problems += err.problems
            continue
        if story.id in first_file:
            line = load_yaml(path)[1].line(("id",))
            problems.append(
                Problem(
                    str(path),
                    f"duplicate story id {story.id!r}, already used by {first_file[story.id]}",
                    key="id",
                    line=line,
                )
            )
            continue
        first_file[story.id] = str(path)
        stories.append(story)
    if problems:
        raise FileError(problems)
    if not stories:
        raise FileError([Problem("(story files)", "no story files given")])
    return stories


def load_story_dir(story_dir: str | Path = STORY_DIR) -> list[Story]:
    """Read every story file in ``story_dir`` (default: the stories shipped with Upbringing)."""
    paths = story_paths(story_dir)
    if not paths:
        raise FileError([Problem(str(story_dir), "no story files (*.yaml) in this folder")])
    return load_stories(paths)


def story_to_dict(story: Story) -> dict[str, Any]:
    """The story as plain data in the story-file layout (defaults left out, single-scene `goto` as a scene id)."""

    def choice(c: Any) -> dict[str, Any]:
        out = c.model_dump(by_alias=True, exclude_defaults=True, exclude={"goto"})
        if len(c.goto) == 1 and c.goto[0].unconditional:
            goto: Any = c.goto[0].scene
        else:
            goto = [b.model_dump(exclude_defaults=True) for b in c.goto]
        return {"text": out.pop("text"), **out, "goto": goto}

    def scene(s: Scene) -> dict[str, Any]:
        out = s.model_dump(by_alias=True, exclude_defaults=True, exclude={"choices", "passages"})
        if s.passages:
            out["passages"] = [p.model_dump() for p in s.passages]
        if s.choices:
            out["choices"] = [choice(c) for c in s.choices]
        return out

    head = story.model_dump(exclude_defaults=True, exclude={"scenes", "id", "title", "start"})
    tags = {"tags": list(head.pop("tags"))} if "tags" in head else {}
    return {
        "id": story.id,
        "title": story.title,
        **head,
        **tags,
        "start": story.start,
        "scenes": [scene(s) for s in story.scenes],
    }


def story_to_yaml(story: Story) -> str:
    """The story as the text of a story file (loading it back gives an equal story)."""
    return yaml.safe_dump(story_to_dict(story), sort_keys=False, allow_unicode=True, width=110)
