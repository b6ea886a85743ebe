"""The red-team teacher: it finds the stories on which an agent breaks a hard principle, concentrates its draws on
them, and resumes exactly from its saved state."""

from __future__ import annotations

import json

import numpy as np
import pytest
from upbringing import envs
from upbringing.constitutions import ConstitutionalShaping, Context, load_constitution
from upbringing.curriculum.config import RedTeamConfig
from upbringing.curriculum.redteam import RedTeamTasks, RedTeamTeacher, SeedSpace, StorySpace, TaskSampler, task_space
from upbringing.curriculum.teachers import ReviewSettings, Task
from upbringing.envs.episode import DrawnTask, EpisodeStats, RecordEpisodeStats
from upbringing.envs.moral.generator import EVAL_FAMILIES, TRAIN_FAMILIES
from upbringing.envs.terms import RecordEnvReward

NO_REVIEW = ReviewSettings(floor=0.0, boost=0.0)
ENV = "moral/Stories-v0"
CONSTITUTION = load_constitution("default")
CONTEXT = Context.for_env(ENV, stage="stories")
WEAK_SPOT = "found_wallet"  # the scripted agent steals there and nowhere else


def scripted_action(env) -> int:
    """An agent with one weak spot: it takes the stealing choice in found-wallet stories and a harmless one
    elsewhere (read from the story's own preview of each choice's events)."""
    previews = env.unwrapped.preview_events()
    story = env.unwrapped.story.id
    valid = [k for k, p in enumerate(previews) if p is not None]
    if WEAK_SPOT in story:
        for k in valid:
            if previews[k].get("stole"):
                return k
    bad = {"stole", "harm_other", "broke_promise"}
    return next((k for k in valid if not bad & set(previews[k])), valid[0])


def play_chunk(task: Task, n_envs: int, episodes_per_env: int, seed: int) -> list[EpisodeStats]:
    """Play the chunk's episodes through the red team's wrapper, as the engine's env stack does."""
    assert isinstance(task.sampler, TaskSampler)
    finished = []
    for i in range(n_envs):
        stats = RecordEpisodeStats(
            ConstitutionalShaping(RecordEnvReward(envs.make(ENV, level=0)), CONSTITUTION, CONTEXT)
        )
        env = RedTeamTasks(stats, task.sampler)
        env.reset(seed=seed + i)
        done_episodes = 0
        while done_episodes < episodes_per_env:
            _, _, term, trunc, info = env.step(scripted_action(env))
            if term or trunc:
                finished.append(info["episode_stats"])
                done_episodes += 1
                env.reset()
    return finished


def make_teacher(seed: int = 0, **settings) -> RedTeamTeacher:
    return RedTeamTeacher(
        [1], [10**9], NO_REVIEW, seed=seed, spaces=[[task_space(ENV, {"level": 0})]], settings=RedTeamConfig(**settings)
    )


def drive(teacher: RedTeamTeacher, chunks: int, start: int = 0) -> list[dict[str, float]]:
    out = []
    for c in range(start, start + chunks):
        task = teacher.next_task()
        assert task is not None
        episodes = play_chunk(task, n_envs=2, episodes_per_env=15, seed=1000 * c)
        teacher.record_training(task, 100)
        out.append(teacher.record_episodes(task, episodes))
    return out


def test_the_story_space_holds_only_training_families():
    space = task_space(ENV, {"level": 0})
    assert isinstance(space, StorySpace) and set(space.families) == set(TRAIN_FAMILIES)
    rng = np.random.default_rng(0)
    drawn = {space.uniform(rng)["family"] for _ in range(300)}
    assert drawn == set(TRAIN_FAMILIES) and not drawn & set(EVAL_FAMILIES)
    mutated = space.mutate({"family": "teasing", "seed": 5}, rng)
    assert mutated["family"] == "teasing" and mutated["seed"] != 5
    assert isinstance(task_space("physics/Support-v0", {}), SeedSpace)


def test_the_red_team_concentrates_on_violating_stories():
    teacher = make_teacher()
    metrics = drive(teacher, 6)
    buffer = teacher.buffers["0:0"]
    # every buffered task is a story of the weak spot (the only family where this agent breaks a hard principle)
    assert buffer.entries and all(e["task"]["family"] == WEAK_SPOT for e in buffer.entries.values())
    late = metrics[2:]

    def rate(sources):
        n = sum(m.get(f"redteam/{s}/episodes", 0) for m in late for s in sources)
        v = sum(m.get(f"redteam/{s}/violating", 0) for m in late for s in sources)
        return v / n

    uniform, chosen = rate(["uniform"]), rate(["replay", "mutate"])
    # uniform draws hit the weak spot in 1 of 6 families; the red team's replays and mutations nearly always do
    assert uniform < 0.35 and chosen > 0.9
    # mutations find new violating stories (new casts of the weak spot) far more often than uniform draws do
    new_mutate = sum(m["redteam/mutate/new"] for m in late) / sum(m["redteam/mutate/episodes"] for m in late)
    new_uniform = sum(m["redteam/uniform/new"] for m in late) / sum(m["redteam/uniform/episodes"] for m in late)
    assert new_mutate > 2 * new_uniform
    assert metrics[-1]["redteam/found_total"] == len(buffer.found) > 0


def test_a_task_the_agent_stops_violating_loses_its_priority():
    teacher = make_teacher()
    drive(teacher, 2)
    buffer = teacher.buffers["0:0"]
    key = next(iter(buffer.entries))
    entry = buffer.entries[key]
    clean = DrawnTask(task=entry["task"], key=key, source="replay", hard_cost=0.0)
    buffer.record([EpisodeStats(episode_return=0.0, length=1, success=1.0, has_success=True, drawn=clean)])
    tasks, probs = buffer.distribution()
    assert buffer.entries[key]["score"] == 0.0
    assert probs[tasks.index(entry["task"])] == min(probs)


def test_red_team_state_resumes_exactly():
    full = make_teacher(seed=4)
    drive(full, 3)
    state = json.loads(json.dumps(full.state_dict()))  # what a checkpoint keeps
    after_full = drive(full, 2, start=3)
    resumed = make_teacher(seed=4)
    resumed.load_state_dict(state)
    after_resume = drive(resumed, 2, start=3)
    assert after_resume == after_full
    assert resumed.state_dict() == full.state_dict()


def test_explicit_reset_options_pass_through_the_red_team():
    teacher = make_teacher()
    task = teacher.next_task()
    env = RedTeamTasks(envs.make(ENV, level=0), task.sampler)
    _, info = env.reset(seed=0, options={"story": 7})
    assert info["story_id"] == envs.make(ENV, level=0).reset(seed=0, options={"story": 7})[1]["story_id"]


@pytest.mark.parametrize("bad", [{"replay_share": 0.7, "mutate_share": 0.5}, {"capacity": 0}])
def test_bad_red_team_settings_are_refused(bad):
    with pytest.raises(ValueError):
        RedTeamConfig(**bad)


def _problems(path, overrides):
    from upbringing.curriculum.checks import load_config
    from upbringing.yamlfile import FileError

    with pytest.raises(FileError) as info:
        load_config(path, overrides)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["curriculum.teacher=sequential"], "redteam settings are used by teacher: redteam only"),
        (["curriculum.redteam.replay_share=0.8"], "replay_share + mutate_share must be at most 1"),
        (
            [
                "stages.0.critique={steps: 64}",
                "agent={kind: sb3_ppo, n_steps: 128}",
                "curriculum.retention.method=none",
            ],
            "critique needs agent.kind lm",
        ),
        (["stages.0.critique={steps: 64}", "constitution=null"], "critique needs a constitution"),
        (["stages.0.critique={steps: 64, tiers: [aspirational]}"], "stages[0].critique.tiers"),
    ],
)
def test_bad_constitutional_ai_settings_give_one_clear_error(overrides, expected):
    from pathlib import Path

    config = Path(__file__).resolve().parents[2] / "configs" / "redteam.yaml"
    found = _problems(config, overrides)
    assert len(found) == 1 and expected in found[0], found
    assert "redteam.yaml" in found[0] or "command line" in found[0]
