"""Generated stories: valid, reproducible, distinct, split into held-out families, and harder level by level."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from upbringing import envs
from upbringing.envs.moral.annotations import VIOLATIONS
from upbringing.envs.moral.generator import EVAL_FAMILIES, FAMILIES, LEVELS, TRAIN_FAMILIES, StoryGenerator, build_story
from upbringing.envs.moral.metrics import annotation_policy, evaluate, greedy_reward_policy, summarize
from upbringing.envs.moral.story import return_range, story_problems
from upbringing.envs.moral.storyfile import load_story_file, story_to_yaml


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
