"""Prioritized Level Replay: rank prioritisation, staleness, unseen seeds first, and exact resume of its state."""

from __future__ import annotations

import json

import numpy as np
from upbringing.curriculum.promotion import Verdict
from upbringing.curriculum.teachers import TEACHERS, PrioritizedLevelReplay, ReviewSettings, Task

NO_REVIEW = ReviewSettings(floor=0.0, boost=0.0)


def drive(teacher: PrioritizedLevelReplay, chunks: int, score_of: dict[int, float]) -> list[Task]:
    """Train ``chunks`` chunks, each seed's score a fixed function of the seed (high for a few)."""
    tasks = []
    for _ in range(chunks):
        task = teacher.next_task()
        assert task is not None and task.seed is not None
        tasks.append(task)
        teacher.record_training(task, 100)
        teacher.record_update(task, {"train/positive_value_loss": score_of.get(task.seed, 0.01)})
    return tasks


def test_plr_is_registered_and_picks_seeds_from_a_pool():
    teacher = TEACHERS["plr"]([1, 1], [10**9, 10**9], NO_REVIEW, seed=3)
    tasks = drive(teacher, 20, {})
    pool = teacher.pools["0:0"]["seeds"]
    assert len(pool) == teacher.settings.n_seeds
    assert all(t.stage == 0 and t.level == 0 and t.seed in pool for t in tasks)


def test_high_scoring_seeds_are_replayed_most():
    teacher = PrioritizedLevelReplay([1], [10**9], NO_REVIEW, seed=0)
    pool = teacher._pool(0, 0)["seeds"]
    hard = set(pool[:3])
    tasks = drive(teacher, 400, dict.fromkeys(hard, 1.0))
    late = [t.seed for t in tasks[200:]]
    share = sum(s in hard for s in late) / len(late)
    # 3 of 50 seeds: uniform play would give them 6%; rank prioritisation with beta 0.1 gives them most replays.
    assert share > 0.3


def test_replay_distribution_mixes_rank_and_staleness():
    teacher = PrioritizedLevelReplay([1], [10**9], NO_REVIEW, seed=0)
    pool = teacher._pool(0, 0)
    pool["scores"][:3] = [0.5, 0.9, 0.1]
    pool["last_seen"][:3] = [1, 2, 3]
    pool["chunks"] = 3
    p = teacher.replay_distribution(pool)
    h = np.array([1 / 2, 1 / 1, 1 / 3]) ** 10  # ranks 2, 1, 3 with beta = 0.1
    stale = np.array([2, 1, 0]) / 3
    expected = 0.9 * h / h.sum() + 0.1 * stale
    np.testing.assert_allclose(p[:3], expected)
    assert p[3:].sum() == 0 and abs(p.sum() - 1) < 1e-12  # unseen seeds are never "replayed"


def test_unseen_seeds_are_tried_before_the_pool_is_exhausted():
    teacher = PrioritizedLevelReplay([1], [10**9], NO_REVIEW, seed=1)
    drive(teacher, 60, {})
    tried = sum(s is not None for s in teacher.pools["0:0"]["scores"])
    assert 15 < tried < 50  # about half the chunks try a new seed


def test_a_new_level_gets_a_pool_of_its_own():
    teacher = PrioritizedLevelReplay([2], [10**9], NO_REVIEW, seed=1)
    drive(teacher, 3, {})
    teacher.record_evaluation(Task(0, 0), Verdict(True, {}), 1.0)  # level up
    task = teacher.next_task()
    assert task is not None and task.level == 1 and task.seed in teacher.pools["0:1"]["seeds"]


def test_plr_state_resumes_exactly():
    scores = {}
    full = PrioritizedLevelReplay([1, 1], [5000, 10**9], NO_REVIEW, seed=7)
    scores = dict.fromkeys(full._pool(0, 0)["seeds"][:5], 0.8)
    first = drive(full, 30, scores)
    state = json.loads(json.dumps(full.state_dict()))  # what engine.json holds
    rest = drive(full, 40, scores)

    resumed = PrioritizedLevelReplay([1, 1], [5000, 10**9], NO_REVIEW, seed=7)
    drive(resumed, 5, {})  # whatever it did before, loading puts it where the checkpoint was
    resumed.load_state_dict(state)
    assert drive(resumed, 40, scores) == rest
    assert resumed.state_dict() == full.state_dict()
    assert first != rest
