"""Story files: every shipped story is valid, and the checker names each kind of mistake with its line."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from upbringing.envs.moral.annotations import ANNOTATIONS, GERT_VIOLATIONS
from upbringing.envs.moral.storyfile import (
    STORY_DIR,
    check_story_file,
    load_stories,
    load_story_dir,
    load_story_file,
    story_paths,
    story_to_yaml,
)
from upbringing.envs.moral.storygraph import return_range
from upbringing.yamlfile import FileError

SHIPPED = story_paths(STORY_DIR)

GOOD = """\
id: tiny
title: Tiny
start: a
scenes:
  - id: a
    text: You find a coin.
    choices:
      - text: Keep it.
        reward: 0.5
        annotations: {stole: 1}
        set: {kept: true}
        goto: b
      - text: Hand it in.
        goto: b
  - id: b
    text: Later.
    passages:
      - when: {kept: true}
        text: The coin is heavy in your pocket.
    choices:
      - text: Go home.
        goto:
          - when: {kept: true}
            chance: 0.5
            scene: caught
          - scene: home
  - id: caught
    text: Caught.
    reward: -0.5
    ending: bad
  - id: home
    text: Home.
    ending: good
"""


def write(tmp_path: Path, text: str, name: str = "story.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the ``nth`` line containing ``needle``."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return hits[nth - 1]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_story_validates(path):
    assert check_story_file(path) == []
    story = load_story_file(path)
    bounds = return_range(story)
    assert bounds is None or (bounds[0] >= -1.0 and bounds[1] <= 1.0)


def test_shipped_stories_are_many_and_cover_every_annotation():
    stories = load_story_dir()
    assert len(stories) >= 20
    assert len({s.id for s in stories}) == len(stories)
    used = set().union(*(s.annotation_names() for s in stories))
    assert used == set(ANNOTATIONS) - set(GERT_VIOLATIONS)  # Gert's adult rules come from MoralChoice
    # Multi-step with delayed consequences: flags set early and read later, in (nearly) every story.
    with_flags = [s for s in stories if any(c.set_flags for sc in s.scenes for c in sc.choices)]
    assert len(with_flags) >= 20
    assert {s.difficulty for s in stories} == {0, 1, 2, 3, 4}


def test_documented_example_is_a_valid_story(tmp_path):
    doc = (STORY_DIR.parent / "STORY_FORMAT.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(.*?)```", doc, re.S).group(1)
    assert check_story_file(write(tmp_path, example)) == []


def test_good_file_loads(tmp_path):
    story = load_story_file(write(tmp_path, GOOD))
    assert story.id == "tiny" and [s.id for s in story.scenes] == ["a", "b", "caught", "home"]
    assert story.by_id["a"].choices[0].set_flags == {"kept": True}
    assert return_range(story) == (-0.5, 0.5)


def test_story_round_trips_through_yaml(tmp_path):
    story = load_story_file(STORY_DIR / "library-book.yaml")
    again = load_story_file(write(tmp_path, story_to_yaml(story)))
    assert again == story


# Each broken variant of GOOD: (replace this, with this, expected message fragment, the line it must be on: the
# first line containing this text, or the nth for (text, n)).
BROKEN = {
    "unknown scene reference": (
        "          - scene: home",
        "          - scene: hom",
        "unknown scene 'hom'",
        "scene: hom",
    ),
    "unknown start": ("start: a", "start: nowhere", "unknown scene 'nowhere'", "start: nowhere"),
    "choice without outcome": (
        "      - text: Hand it in.\n        goto: b",
        "      - text: Hand it in.",
        "choice has no outcome",
        "Hand it in.",
    ),
    "branches can all fail": (
        "          - scene: home",
        "          - scene: home\n            when: {kept: false}",
        "last branch must have no `when`",
        "- scene: home",
    ),
    "duplicate scene id": ("  - id: caught", "  - id: home", "duplicate scene id 'home'", ("- id: home", 2)),
    "unknown annotation": ("{stole: 1}", "{stealing: 1}", "unknown annotation 'stealing'", "stealing"),
    "wrong type": ("reward: 0.5", "reward: lots", "valid number", "reward: lots"),
    "unknown key": ("    text: Later.", "    text: Later.\n    colour: blue", "unknown key", "colour: blue"),
    "missing key": ("title: Tiny\n", "", "missing required key", "id: tiny"),
    "flag never set": (
        "      - when: {kept: true}\n        text: The coin",
        "      - when: {kept2: true}\n        text: The coin",
        "flag 'kept2' is never set",
        "kept2",
    ),
    "ending with choices": (
        "    reward: -0.5\n    ending: bad",
        "    reward: -0.5\n    ending: bad\n    choices:\n      - text: Again.\n        goto: a",
        "an ending has no choices",
        ("choices:", 3),
    ),
    "not an ending and no choices": (
        "    text: Home.\n    ending: good",
        "    text: Home.",
        "has no choices and is not an ending",
        "- id: home",
    ),
    "reward out of range": ("reward: 0.5", "reward: 1.5", "a reward is within [-1, 1]", "reward: 1.5"),
    "path return too large": (
        "    text: Home.\n    ending: good",
        "    text: Home.\n    reward: 0.9\n    ending: good",
        "the path a -> b -> home adds up to +1.4; keep every path's total within [-1, 1]",
        "- id: home",
    ),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_checker_names_each_kind_of_mistake_with_its_line(tmp_path, kind):
    old, new, message, where = BROKEN[kind]
    assert old in GOOD, kind
    text = GOOD.replace(old, new, 1)
    path = write(tmp_path, text)
    problems = check_story_file(path)
    matching = [p for p in problems if message in p.message]
    assert matching, f"{kind}: no problem says {message!r}; got {[str(p) for p in problems]}"
    needle, nth = where if isinstance(where, tuple) else (where, 1)
    assert matching[0].line == line_of(text, needle, nth), str(matching[0])
    assert matching[0].file == str(path)
    with pytest.raises(FileError) as err:
        load_story_file(path)
    assert message in str(err.value)


def test_unreachable_scene_and_cycle_without_ending(tmp_path):
    text = GOOD.replace("      - text: Hand it in.\n        goto: b", "      - text: Hand it in.\n        goto: loop1")
    scenes = """\
        - id: island
          text: Nobody comes here.
          ending: mixed
        - id: loop1
          text: Round and round.
          choices:
            - text: On.
              goto: loop2
        - id: loop2
          text: And round.
          choices:
            - text: Back.
              goto: loop1
        """
    text += textwrap.indent(textwrap.dedent(scenes), "  ")
    problems = check_story_file(write(tmp_path, text))
    messages = {p.message: p.line for p in problems}
    assert messages["scene 'island' cannot be reached from the start scene"] == line_of(text, "- id: island")
    assert messages["scenes 'loop1', 'loop2' form a cycle with no way out to an ending"] == line_of(text, "- id: loop1")
    assert len(problems) == 2, [str(p) for p in problems]


def test_every_problem_is_listed_at_once(tmp_path):
    text = (
        GOOD.replace("{stole: 1}", "{stealing: 1}")
        .replace("          - scene: home", "          - scene: hom")
        .replace("    text: Later.", "    text: Later.\n    colour: blue")
    )
    problems = check_story_file(write(tmp_path, text))
    said = " | ".join(p.message for p in problems)
    for fragment in ("unknown annotation 'stealing'", "unknown scene 'hom'", "unknown key"):
        assert fragment in said
    # One problem per mistake, not a cascade.
    assert len(problems) == 3, said


def test_files_that_are_not_stories(tmp_path):
    assert "expected a story" in check_story_file(write(tmp_path, "- just\n- a list\n"))[0].message
    assert "broken YAML" in check_story_file(write(tmp_path, "id: [unclosed\n"))[0].message
    assert check_story_file(tmp_path / "missing.yaml")[0].message == "file not found"


def test_duplicate_story_ids_across_files(tmp_path):
    a = write(tmp_path, GOOD, "a.yaml")
    b = write(tmp_path, GOOD, "b.yaml")
    with pytest.raises(FileError) as err:
        load_stories([a, b])
    (problem,) = err.value.problems
    assert problem.file == str(b) and problem.line == 1 and "duplicate story id 'tiny'" in problem.message


# Rewards as an author writes them: from -9 to +12 along the paths, with the scale declared.
SCALED = (
    GOOD.replace("reward: 0.5", "reward: 12")
    .replace("reward: -0.5", "reward: -9")
    .replace("start: a", "start: a\nreward_scale: {min: -9, max: 12}")
)


def test_a_story_on_its_own_scale_loads_divided_into_the_env_scale(tmp_path):
    path = write(tmp_path, SCALED)
    assert check_story_file(path) == []
    story = load_story_file(path)
    assert story.reward_scale is None  # what the env plays is on its own scale
    keep = story.by_id["a"].choices[0]
    assert keep.reward == 1.0 and story.by_id["caught"].reward == -9 / 12
    assert return_range(story) == (-9 / 12, 1.0)  # hand it in, then caught (-9); keep (+12), then home
    again = write(tmp_path, story_to_yaml(story), "again.yaml")  # and it writes back as a story on the env scale
    assert load_story_file(again) == story


def test_auto_scale_divides_by_the_largest_path_total(tmp_path):
    story = load_story_file(write(tmp_path, SCALED.replace("reward_scale: {min: -9, max: 12}", "reward_scale: auto")))
    assert return_range(story) == (-9 / 12, 1.0)


@pytest.mark.parametrize(
    "scale, message",
    [
        ("{min: -5, max: 12}", "the path a -> b -> caught adds up to -9; keep every path's total within [-5, 12]"),
        ("{min: -9, max: 10}", "the path a -> b -> home adds up to +12; keep every path's total within [-9, 10]"),
        ("{min: 3, max: -3}", "min must be below max (got min 3, max -3)"),
        ("{min: -9}", "missing required key"),
        ("lots", "expected auto or {min: LOWEST_TOTAL, max: HIGHEST_TOTAL}"),
    ],
)
def test_a_declared_scale_is_checked_and_paths_are_named(tmp_path, scale, message):
    text = SCALED.replace("{min: -9, max: 12}", scale)
    problems = check_story_file(write(tmp_path, text))
    assert [p.message for p in problems if message in p.message], [str(p) for p in problems]


def test_auto_scale_needs_a_story_without_loops(tmp_path):
    text = SCALED.replace("reward_scale: {min: -9, max: 12}", "reward_scale: auto").replace(
        "      - text: Hand it in.\n        goto: b", "      - text: Hand it in.\n        goto: a"
    )
    (problem,) = check_story_file(write(tmp_path, text))
    assert problem.key == "reward_scale" and "auto needs a story without loops" in problem.message


def test_without_a_scale_rewards_stay_within_one(tmp_path):
    problems = check_story_file(write(tmp_path, SCALED.replace("reward_scale: {min: -9, max: 12}\n", "")))
    assert {p.key for p in problems} == {"scenes[0].choices[0].reward", "scenes[2].reward"}
    assert all("declares it: reward_scale: {min, max}" in p.message for p in problems)
