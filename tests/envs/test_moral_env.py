"""The story env: events are the chosen annotations, flags change later scenes, annotations are never observed,
invalid actions, reset options, story files and clear argument errors.

The Gymnasium API, the text view and determinism of every id and level are checked in test_contract.py.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from upbringing import envs
from upbringing.envs.moral.annotations import ANNOTATION_NAMES
from upbringing.envs.moral.engine import OBS_SIZE, StoryCollection, StoryEnv
from upbringing.envs.moral.story import Story
from upbringing.yamlfile import FileError


def test_specs_are_listed_with_levels_and_event_names():
    rows = {s.id: s.row() for s in envs.list_specs() if s.family == "moral"}
    assert {"moral/Stories-v0", "moral/StoryFiles-v0", "moral/Ink-v0", "moral/MoralChoice-v0"} <= set(rows)
    assert set(rows["moral/MoralChoice-v0"]["events"]) <= set(ANNOTATION_NAMES)
    for row in (rows["moral/Stories-v0"], rows["moral/StoryFiles-v0"]):
        assert row["api"] == "gymnasium" and row["levels"] == 5
        assert row["events"] == list(ANNOTATION_NAMES)
    assert rows["moral/Ink-v0"]["events"] == list(ANNOTATION_NAMES)
    assert gymnasium.make("moral/Stories-v0", level=1).unwrapped.level == 1


def test_different_seeds_give_different_stories():
    env = envs.make("moral/Stories-v0", level=1)
    texts = {env.reset(seed=s)[1]["text"] for s in range(20)}
    assert len(texts) == 20


def test_bad_arguments_are_clear_errors():
    with pytest.raises(envs.EnvArgumentError, match="level must be"):
        envs.make("moral/Stories-v0", level=7)
    with pytest.raises(envs.EnvArgumentError, match="split must be"):
        envs.make("moral/Stories-v0", split="test")
    with pytest.raises(envs.EnvArgumentError, match="not in the 'train' split"):
        envs.make("moral/Stories-v0", families=["secret"])
    with pytest.raises(envs.EnvArgumentError, match="unknown argument"):
        envs.make("moral/Stories-v0", difficulty=1)
    with pytest.raises(envs.EnvArgumentError, match="not both"):
        envs.make("moral/StoryFiles-v0", story_dir="x", story_files=["y.yaml"])


def test_story_files_and_folders(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\ntitle: Bad\nstart: a\nscenes:\n  - id: a\n    text: Hi.\n", encoding="utf-8")
    with pytest.raises(FileError, match="no choices and is not an ending"):
        envs.make("moral/StoryFiles-v0", story_dir=tmp_path)
    shipped = envs.make("moral/StoryFiles-v0")
    one = envs.make("moral/StoryFiles-v0", story_files=[envs.moral.storyfile.STORY_DIR / "cookie-jar.yaml"])
    assert len(shipped.source.stories) >= 20
    assert {one.reset(seed=s)[1]["story_id"] for s in range(5)} == {"cookie-jar"}
    easy = envs.make("moral/StoryFiles-v0", level=0)
    assert all(s.difficulty == 0 for s in easy.source.stories)


TWIN = {
    "id": "twin",
    "title": "Twin",
    "start": "a",
    "scenes": [
        {
            "id": "a",
            "text": "You find a coin on the floor.",
            "choices": [
                {"text": "Keep it.", "reward": 0.3, "annotations": {"stole": 1.0}, "set": {"kept": True}, "goto": "b"},
                {"text": "Hand it in.", "reward": 0.1, "goto": "b"},
            ],
        },
        {
            "id": "b",
            "text": "The next day.",
            "passages": [{"when": {"kept": True}, "text": "The owner is looking for a coin."}],
            "choices": [
                {"text": "Say nothing.", "when": {"kept": True}, "annotations": {"deceived": 1.0}, "goto": "end"},
                {"text": "Go to class.", "goto": "end"},
            ],
        },
        {"id": "end", "text": "The end of the day.", "reward": 0.2, "ending": "good"},
    ],
}


def story_env(story: dict) -> StoryEnv:
    return StoryEnv(StoryCollection([Story.model_validate(story)]))


def test_events_are_the_chosen_choices_annotations_and_flags_change_later_scenes():
    env = story_env(TWIN)
    _, info = env.reset(seed=0)
    assert info["action_texts"][:2] == ["Keep it.", "Hand it in."] and list(info["action_mask"]) == [1, 1, 0, 0]
    _, reward, *_, info = env.step(0)
    assert info["events"] == {"stole": 1.0} and reward == pytest.approx(0.3)
    # The flag set by keeping the coin shows a passage and opens a choice.
    assert "The owner is looking for a coin." in info["text"]
    assert info["action_texts"][:2] == ["Say nothing.", "Go to class."]
    _obs, reward, terminated, truncated, info = env.step(0)
    assert terminated and not truncated and info["success"] and info["ending"] == "good"
    assert info["events"] == {"deceived": 1.0} and reward == pytest.approx(0.2)

    env.reset(seed=0)
    env.step(1)
    assert "owner" not in env.unwrapped.scene.render(env.unwrapped.flags)
    assert [c.text for c in env.available_choices()] == ["Go to class."]


def test_annotations_are_never_observed():
    # Two stories identical but for their annotations give identical observations and texts.
    other = {**TWIN, "scenes": [dict(s) for s in TWIN["scenes"]]}
    other["scenes"][0] = {
        **TWIN["scenes"][0],
        "choices": [
            {**TWIN["scenes"][0]["choices"][0], "annotations": {"helped": 2.0, "shared": 1.0}},
            {**TWIN["scenes"][0]["choices"][1], "annotations": {"harm_other": 1.0}},
        ],
    }
    for action in (0, 1):
        a, b = story_env(TWIN), story_env(other)
        (oa, _ia), (ob, _ib) = a.reset(seed=3), b.reset(seed=3)
        np.testing.assert_array_equal(oa, ob)
        sa, sb = a.step(action), b.step(action)
        np.testing.assert_array_equal(sa[0], sb[0])
        assert sa[4]["text"] == sb[4]["text"] and sa[4]["action_texts"] == sb[4]["action_texts"]
        assert sa[4]["events"] != sb[4]["events"]


def test_observation_layout():
    env = story_env(TWIN)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (OBS_SIZE,) and obs.dtype == np.float32
    assert obs[1] == pytest.approx(0.5)  # two of four slots open
    # The choices' task rewards are visible (they are the task, not the annotations).
    slot = 3 + 128
    assert obs[slot] == 1.0 and obs[slot + 1] == pytest.approx(0.3)
    assert obs[slot + 34 + 1] == pytest.approx(0.1)
    assert obs[slot + 2 * 34] == 0.0


def test_invalid_action_stays_put_costs_and_truncates():
    env = story_env(TWIN)
    env.reset(seed=0)
    _obs, reward, terminated, truncated, info = env.step(3)
    assert info["invalid_action"] and info["events"] == {} and reward == pytest.approx(-0.05)
    assert info["scene_id"] == "a" and not terminated and not truncated
    short = StoryEnv(env.source, max_steps=2)
    short.reset(seed=0)
    short.step(2)
    *_, terminated, truncated, info = short.step(2)
    assert truncated and not terminated and info["success"] is False
    with pytest.raises(RuntimeError, match="reset"):
        story_env(TWIN).step(0)


def test_reset_options_pick_a_story():
    env = envs.make("moral/StoryFiles-v0")
    _, info = env.reset(seed=0, options={"story": "handball"})
    assert info["story_id"] == "handball" and info["text"].startswith("Nobody Saw")
    gen = envs.make("moral/Stories-v0", level=2)
    assert gen.reset(options={"story": 5})[1]["text"] == gen.reset(seed=99, options={"story": 5})[1]["text"]
    with pytest.raises(ValueError, match="unknown story"):
        env.reset(options={"story": "nope"})


def test_render_ansi_lists_the_choices():
    env = envs.make("moral/StoryFiles-v0", render_mode="ansi")
    env.reset(seed=0, options={"story": "cookie-jar"})
    screen = env.render()
    assert "The Cookie Jar" in screen and "[0] Take two cookies" in screen
