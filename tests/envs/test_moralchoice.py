"""moral/MoralChoice-v0: both orders, seeded order, events from Gert's rules, rewards, splits, levels, CSV errors."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.moralchoice import TINY_ROWS, dev_split, row, write_csv
from upbringing import envs
from upbringing.envs.moral.moralchoice import NO_AGREEMENT, RULE_EVENTS, load_scenarios, split_of
from upbringing.yamlfile import FileError

ID = "moral/MoralChoice-v0"


@pytest.fixture
def tiny(tmp_path):
    return write_csv(tmp_path / "tiny.csv", TINY_ROWS)


def test_both_orders_events_and_success(tiny):
    env = envs.make(ID, path=str(tiny))
    _, given = env.reset(seed=0, options={"scenario": "T_1", "order": "given"})
    assert given["action_texts"] == ["I swim out and rescue the child (T_1).", "I keep reading my magazine (T_1)."]
    assert given["action_ids"] == [0, 1] and given["order"] == "given" and given["events"] == {}
    _, reward, terminated, truncated, info = env.step(1)
    assert terminated and not truncated and reward == 0.0 and info["success"] is False and info["chosen"] == 1
    assert info["events"] == {"killed": 1.0, "neglected_duty": 1.0}

    _, swapped = env.reset(seed=0, options={"scenario": "T_1", "order": "swapped"})
    assert swapped["action_texts"] == given["action_texts"][::-1] and swapped["action_ids"] == [1, 0]
    _, reward, *_, info = env.step(1)  # the second-listed action is now the commonsense one
    assert reward == 1.0 and info["success"] is True and info["events"] == {}
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_random_order_is_seeded_and_fixed_orders_hold(tiny):
    orders = [envs.make(ID, path=str(tiny)).reset(seed=s)[1]["order"] for s in range(30)]
    assert orders == [envs.make(ID, path=str(tiny)).reset(seed=s)[1]["order"] for s in range(30)]
    assert {"given", "swapped"} == set(orders)
    fixed = envs.make(ID, path=str(tiny), order="swapped")
    assert {fixed.reset(seed=s)[1]["order"] for s in range(10)} == {"swapped"}


def test_no_agreement_is_its_own_value_and_rewards_are_configurable(tiny):
    env = envs.make(ID, path=str(tiny), commonsense_reward=2.0, other_reward=-1.0, rule_rewards={"break_promise": -1.0})
    env.reset(seed=0, options={"scenario": "T_2", "order": "given"})
    _, reward, *_, info = env.step(1)
    assert info["events"] == {"deceived": 1.0, "broke_promise": NO_AGREEMENT}
    assert reward == pytest.approx(-1.0 - NO_AGREEMENT)
    env.reset(seed=0, options={"scenario": "T_2", "order": "given"})
    assert env.step(0)[1] == 2.0
    assert set(RULE_EVENTS.values()) == set(env.event_names)


def test_high_ambiguity_has_no_success_and_zero_reward(tmp_path):
    path = write_csv(
        tmp_path / "high.csv", [row("H_1", "high", a1={"pain": "Yes"}, a2={"deceive": "Yes"}), *TINY_ROWS[:2]]
    )
    env = envs.make(ID, path=str(path), level="high")
    assert [s.id for s in env.scenarios] == ["H_1"]
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(0)
    assert terminated and reward == 0.0 and "success" not in info
    assert [s.id for s in envs.make(ID, path=str(path), level="low").scenarios] == ["T_1", "T_2"]
    assert [s.id for s in envs.make(ID, path=str(path), level="deceive").scenarios] == ["H_1", "T_2"]
    with pytest.raises(envs.EnvArgumentError, match="level must be"):
        envs.make(ID, path=str(path), level="murder")


def test_split_is_a_stable_partition_by_scenario_id(tmp_path):
    # Fixed answers: the split must not change across machines, Python versions or releases.
    assert [split_of(f"C_{i:03d}") for i in range(1, 11)] == [
        "eval",
        "train",
        "train",
        "train",
        "train",
        "eval",
        "eval",
        "train",
        "eval",
        "eval",
    ]
    rows = [row(f"S_{i}") for i in range(200)]
    path = write_csv(tmp_path / "many.csv", rows)
    train = {s.id for s in envs.make(ID, path=str(path), split="train").scenarios}
    held = {s.id for s in envs.make(ID, path=str(path), split="eval").scenarios}
    assert not train & held and len(train | held) == 200 and 20 <= len(held) <= 60
    # the same ids in another order, with other rows around them: the same split
    shuffled = write_csv(tmp_path / "shuffled.csv", [*rows[::-1], row("X_1")])
    assert held <= {s.id for s in envs.make(ID, path=str(shuffled), split="eval").scenarios}


@pytest.mark.parametrize(
    "change,where",
    [
        (
            lambda rows, cols: (rows, [c for c in cols if c != "a2_cheat"]),
            "tiny.csv:1: not a MoralChoice scenario CSV: missing column(s) a2_cheat",
        ),
        (
            lambda rows, cols: ([*rows[:2], {**rows[2], "a1_pain": "Maybe"}], cols),
            "tiny.csv:4: a1_pain: row 3: expected Yes, No or No Agreement, got 'Maybe'",
        ),
        (
            lambda rows, cols: ([rows[0], {**rows[1], "ambiguity": "medium"}], cols),
            "tiny.csv:3: ambiguity: row 2: expected low or high, got 'medium'",
        ),
        (
            lambda rows, cols: ([rows[0], rows[0]], cols),
            "tiny.csv:3: scenario_id: row 2: duplicate scenario id 'T_1' (first on row 1)",
        ),
        (lambda rows, cols: ([{**rows[0], "action2": " "}], cols), "tiny.csv:2: action2: row 1: empty text"),
    ],
)
def test_a_malformed_csv_is_one_clear_error(tmp_path, change, where):
    from upbringing.envs.moral.moralchoice import COLUMNS

    rows, cols = change(list(TINY_ROWS), list(COLUMNS))
    path = write_csv(tmp_path / "tiny.csv", rows, cols)
    with pytest.raises(FileError) as err:
        envs.make(ID, path=str(path))
    assert len(err.value.problems) == 1 and str(err.value) == f"{tmp_path / where}"


def test_missing_file_short_row_and_no_path(tmp_path):
    with pytest.raises(FileError, match="not found"):
        envs.make(ID, path=str(tmp_path / "nope.csv"))
    path = write_csv(tmp_path / "short.csv", TINY_ROWS[:1])
    path.write_text(path.read_text() + "T_9,low,Generated\n")
    with pytest.raises(FileError, match=r"short.csv:3: .*row 2: missing cell"):
        envs.make(ID, path=str(path))
    with pytest.raises(envs.EnvArgumentError, match="path= is required"):
        envs.make(ID)


def test_annotations_are_never_observed(tmp_path):
    a = write_csv(tmp_path / "a.csv", [row("Z", a2={"death": "Yes"})])
    b = write_csv(tmp_path / "b.csv", [row("Z", a1={"pain": "Yes"}, a2={"deceive": "No Agreement"})])
    (oa, ia), (ob, ib) = envs.make(ID, path=str(a)).reset(seed=4), envs.make(ID, path=str(b)).reset(seed=4)
    np.testing.assert_array_equal(oa, ob)
    assert ia["text"] == ib["text"] and ia["action_texts"] == ib["action_texts"]


def test_dev_split_loads():
    path = dev_split()
    if path is None:
        pytest.skip("the MoralChoice development split is not in ../shared/data/moralchoice/ beside the repository")
    scenarios = load_scenarios(path)
    assert len(scenarios) == 349 and {s.ambiguity for s in scenarios} == {"low"}
    env = envs.make(ID, path=str(path), split="eval")
    assert 0 < len(env.scenarios) < 349
