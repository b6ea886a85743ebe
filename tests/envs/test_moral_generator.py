"""Generated stories: valid, reproducible, distinct, split into held-out families, and harder level by level; the
template files they are made from validate, and a broken one is reported in one line naming file, line and key."""

from __future__ import annotations

import hashlib
import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
from upbringing import envs
from upbringing.envs.moral.annotations import VIOLATIONS
from upbringing.envs.moral.generator import EVAL_FAMILIES, FAMILIES, LEVELS, TRAIN_FAMILIES, StoryGenerator, build_story
from upbringing.envs.moral.metrics import annotation_policy, evaluate, greedy_reward_policy, summarize
from upbringing.envs.moral.storyfile import load_story_file, story_to_yaml
from upbringing.envs.moral.storygraph import return_range, story_problems
from upbringing.envs.moral.templatefile import TEMPLATE_DIR, load_templates
from upbringing.yamlfile import FileError

# sha256 of the stories of every family x level x seeds 0-2. The tiny LM's tokenizer (agents/lm/tiny) is trained on
# env texts and experiments compare runs by seed, so a change here must be deliberate: update the digest, retrain the
# tokenizer (`python -m upbringing.agents.lm.tiny --rebuild`) and bump the env version.
STORIES_DIGEST = "998771129784c2050ba6ae0f2dba4a306176a48571f60454910cb9356ba5bf32"


def violation(choice) -> float:
    return sum(v for k, v in choice.annotations.items() if k in VIOLATIONS)


@pytest.mark.parametrize("level", range(LEVELS))
def test_generated_stories_pass_the_story_checks(level):
    for family, seed in itertools.product(FAMILIES, range(8)):
        story = build_story(family, level, seed)
        assert story_problems(story) == [], story.id
        low, high = return_range(story)
        assert -1.0 <= low <= high <= 1.0, story.id
        assert story.difficulty == level


def test_generated_story_is_a_valid_story_file(tmp_path):
    story = build_story("dare", 4, 123)
    path = tmp_path / "generated.yaml"
    path.write_text(story_to_yaml(story), encoding="utf-8")
    assert load_story_file(path) == story


def test_same_seed_same_story_and_different_seeds_distinct():
    gen = StoryGenerator(level=3, split="all")
    assert gen.story(42) == StoryGenerator(level=3, split="all").story(42)
    stories = [gen.story(seed) for seed in range(300)]
    assert len({s.model_dump_json(exclude={"id"}) for s in stories}) == 300  # content differs, not just the id
    assert {s.tags[1] for s in stories} == set(FAMILIES)


def test_train_and_eval_families_are_disjoint():
    assert set(TRAIN_FAMILIES).isdisjoint(EVAL_FAMILIES)
    assert set(TRAIN_FAMILIES) | set(EVAL_FAMILIES) == set(FAMILIES)
    for split, families in (("train", TRAIN_FAMILIES), ("eval", EVAL_FAMILIES)):
        seen = {StoryGenerator(1, split).story(seed).tags[1] for seed in range(60)}
        assert seen == set(families)


def test_episode_lengths_grow_with_level_and_stay_short():
    lengths = []
    for level in range(LEVELS):
        stats = evaluate(envs.make("moral/Stories-v0", level=level), greedy_reward_policy, 60, seed=level)
        steps = [s.steps for s in stats]
        assert min(steps) >= 3 and max(steps) <= 8
        lengths.append(np.mean(steps))
    assert lengths[0] < lengths[2] < lengths[3]


def test_level_zero_moral_choice_pays_best():
    stats = evaluate(envs.make("moral/Stories-v0", level=0), greedy_reward_policy, 100, seed=0)
    assert summarize(stats)["violations/all"] == 0.0


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_reward_chaser_violates_at_temptation_levels_and_principled_agent_does_not(level):
    for split in ("train", "eval"):
        env = envs.make("moral/Stories-v0", level=level, split=split)
        greedy = summarize(evaluate(env, greedy_reward_policy, 80, seed=1))
        principled = summarize(evaluate(env, annotation_policy, 80, seed=1))
        assert greedy["violations/all"] >= 1.0
        assert greedy["return"] > principled["return"]  # the violation pays more
        if level <= 2:
            assert principled["violations/all"] == 0.0
        else:  # conflicts between principles: something is always given up, but far less
            assert 0.0 < principled["violations/all"] < greedy["violations/all"] / 3


def test_temptation_every_dilemma_offers_a_better_paying_violation():
    for family, seed in itertools.product(FAMILIES, range(5)):
        dilemma = build_story(family, 1, seed).by_id["dilemma"]
        best = max(dilemma.choices, key=lambda c: c.reward)
        assert violation(best) > 0
        assert any(violation(c) == 0 for c in dilemma.choices)
        calm = build_story(family, 0, seed).by_id["dilemma"]
        assert violation(max(calm.choices, key=lambda c: c.reward)) == 0


def test_delay_conflict_and_ambiguity_levels():
    for family in FAMILIES:
        delayed = build_story(family, 2, 7)
        # A promise made at the start comes due later; a lie can be found out later, at a cost.
        assert delayed.by_id["intro"].choices[0].set_flags == {"promised": True}
        assert {"due_promised", "found_out"} <= set(delayed.by_id)
        assert delayed.by_id["found_out"].reward < 0
        conflict = build_story(family, 3, 7).by_id["conflict"]
        assert all(violation(c) > 0 for c in conflict.choices)
        assert len({k for c in conflict.choices for k in c.annotations if k in VIOLATIONS}) >= 2
        plain, vague = build_story(family, 3, 7), build_story(family, 4, 7)
        wrong = next(c for c in plain.by_id["dilemma"].choices if violation(c) > 0)
        vague_wrong = next(c for c in vague.by_id["dilemma"].choices if violation(c) > 0)
        assert violation(vague_wrong) < violation(wrong)
        chances = [b.chance for c in vague.by_id["due_free"].choices for b in c.goto if b.chance]
        assert chances and max(chances) < 0.5


def test_bad_generator_arguments():
    with pytest.raises(ValueError, match="unknown story family"):
        build_story("dragons", 0, 0)
    with pytest.raises(ValueError, match="level must be"):
        StoryGenerator(level=5)
    with pytest.raises(ValueError, match="not in the 'eval' split"):
        StoryGenerator(level=0, split="eval", families=["dare"])


def test_same_seed_same_stories_as_before():
    digest = hashlib.sha256()
    for family, level, seed in itertools.product(sorted(FAMILIES), range(LEVELS), range(3)):
        # reward_scale (a field for authored stories, added after the digest was taken) is never set by the generator
        digest.update(build_story(family, level, seed).model_dump_json(exclude={"reward_scale"}).encode())
    assert digest.hexdigest() == STORIES_DIGEST


def test_cast_overrides_are_drawn_before_the_slots():
    # dare.yaml replaces the adult with a parent (drawn), homework.yaml with a teacher (drawn), before the slots.
    assert build_story("dare", 0, 0).by_id["intro"].text == (
        "After school, Finn and some older kids are hanging around with your best friend Jonas."
    )
    assert (
        build_story("homework", 4, 1)
        .by_id["intro"]
        .text.startswith(
            "It is Monday morning. You forgot to do your spelling homework, and your teacher Mr. Brandt collects it"
        )
    )


def test_shipped_template_files_validate():
    templates = load_templates()
    assert tuple(templates.families) == (*TRAIN_FAMILIES, *EVAL_FAMILIES)
    assert {p.stem for p in TEMPLATE_DIR.glob("*.yaml")} == {*FAMILIES, "common"}
    for family in templates.families.values():
        for values in (*family.slots.values(), *(v for v in family.cast.values() if isinstance(v, list))):
            assert len(set(values)) == len(values)  # a value listed twice would be drawn twice as often


def _broken_copy(tmp_path: Path, file: str, old: str, new: str) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATE_DIR, folder)
    path = folder / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (
            "dare.yaml",
            "annotations: {harm_self: 1.0}",
            "annotations: {harm_selff: 1.0}",
            "dare.yaml:31: wrong.annotations: unknown annotation 'harm_selff'; expected one of: harm_other,",
        ),
        (
            "dare.yaml",
            "Wave to {friend}.",
            "Wave to {frend}.",
            "dare.yaml:20: approach[1]: unknown placeholder {frend}; expected one of: friend,",
        ),
        (
            "dare.yaml",
            "Wave to {friend}.",
            "Wave to {friend|upper}.",
            "dare.yaml:20: approach[1]: unknown filter 'upper' in {friend|upper}; expected one of: cap, title, titled",
        ),
        (
            "dare.yaml",
            "Wave to {friend}.",
            "Wave to {friend.",
            "dare.yaml:20: approach[1]: a brace that is not part of a placeholder",
        ),
        ("dare.yaml", "end_bad:", "end_badd:", "dare.yaml:52: end_badd: unknown key"),
        ("dare.yaml", "  dare:\n", "  friend:\n", "dare.yaml:11: slots.friend: 'friend' is a cast placeholder"),
        ("dare.yaml", "title: The Dare", "title: [The Dare", "dare.yaml:17: broken YAML"),
        ("common.yaml", "  - Leo\n", "  - Maya\n", "common.yaml:22: names[1]: 'Maya' is listed twice"),
        (
            "common.yaml",
            "  - homework\n",
            "  - homework\n  - dare\n",
            "common.yaml:16: eval[1]: family 'dare' is listed twice",
        ),
        (
            "common.yaml",
            "better: the back seat",
            "better: the {back} seat",
            "common.yaml:107: promises[3].better: placeholders ({...}) are not filled in here",
        ),
        (
            "common.yaml",
            "  - secret\n",
            "",
            "secret.yaml: family 'secret' is not listed in common.yaml (train or eval)",
        ),
    ],
)
def test_a_broken_template_file_is_one_line_naming_file_line_and_key(tmp_path, file, old, new, expected):
    folder = _broken_copy(tmp_path, file, old, new)
    with pytest.raises(FileError) as err:
        load_templates(folder)
    lines = str(err.value).splitlines()
    assert any(line.startswith(f"{folder}/{expected}") for line in lines), lines
    assert len(lines) <= 2  # the problem itself (plus, for a renamed key, the missing one)
