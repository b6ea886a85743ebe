"""The social games' rules: payoffs, events, horizons, observations, the commons' dynamics."""

from __future__ import annotations

import numpy as np
import pytest
from upbringing import envs
from upbringing.envs.social.players import make_player


def _play_commons(learner: str, others: str, **kwargs):
    """One CommonsSolo episode in which the learner's seat follows the scripted rule ``learner`` too."""
    env = envs.make("social/CommonsSolo-v0", opponents=[others], **kwargs)
    me = make_player(learner)
    obs, info = env.reset(seed=0)
    me.reset(seed=0)
    events, done = [], False
    while not done:
        obs, _, terminated, truncated, info = env.step(me.act(obs, info))
        events.append(info["events"])
        done = terminated or truncated
    return info, events


@pytest.mark.parametrize("level", range(3))
def test_commons_collapses_under_greedy_harvesting(level) -> None:
    kwargs = envs.spec("social/Commons-v0").levels[level]
    info, events = _play_commons("greedy_harvester", "greedy_harvester", **kwargs)
    rounds = len(events) // (2 if kwargs.get("pledges") else 1)
    assert rounds < kwargs["horizon"]
    assert info["success"] is False
    assert events[-1]["resource_collapsed"] == 1.0
    assert any("overharvested" in e for e in events)
    assert info["social"]["survival"] < 0.5
    assert info["social"]["final_stock"] == 0.0


@pytest.mark.parametrize("level", range(3))
def test_commons_survives_under_the_sustainable_rule(level) -> None:
    kwargs = envs.spec("social/Commons-v0").levels[level]
    info, events = _play_commons("sustainable_harvester", "sustainable_harvester", **kwargs)
    assert info["success"] is True
    assert info["social"]["survival"] == 1.0
    assert info["social"]["cooperation_rate"] == 1.0
    assert info["social"]["final_stock"] > 0.5
    assert not any("overharvested" in e or "broke_pledge" in e for e in events)
    if kwargs.get("pledges"):
        assert sum("kept_pledge" in e for e in events) == kwargs["horizon"]


def test_one_greedy_fisher_among_sustainable_ones_gains_more_but_lowers_equality() -> None:
    fair, _ = _play_commons("sustainable_harvester", "sustainable_harvester", n_players=4, horizon=30)
    greedy, _ = _play_commons("greedy_harvester", "sustainable_harvester", n_players=4, horizon=30)
    assert greedy["social"]["equality"] < fair["social"]["equality"]


def test_commons_regrowth_rationing_and_pledges() -> None:
    env = envs.make("social/Commons-v0", n_players=2, capacity=100, max_harvest=40, levels=5, pledges=True)
    env.reset(seed=0)
    # Pledge steps pay nothing; pledges show up in the next observation.
    obs, rewards, _, _, infos = env.step({"player_0": 1, "player_1": 4})
    assert rewards == {"player_0": 0.0, "player_1": 0.0}
    assert infos["player_0"]["game"]["pledges"] == (10.0, 40.0)
    assert infos["player_1"]["game"]["pledges"] == (40.0, 10.0)
    assert obs["player_0"][-2:].tolist() == [0.25, 1.0]
    # player_0 catches 30 after pledging 10; player_1 keeps its pledge of 40. 100 - 70 = 30 regrows by 30 * 0.7.
    _, rewards, _, _, infos = env.step({"player_0": 3, "player_1": 4})
    assert infos["player_0"]["events"]["broke_pledge"] == pytest.approx(20 / 40)
    assert infos["player_1"]["events"]["kept_pledge"] == 1.0
    assert rewards["player_0"] == pytest.approx(30 / 40)
    assert infos["player_0"]["game"]["stock"] == pytest.approx(30 + 30 * 0.7)
    # Requests beyond the stock (51) are shared out in proportion: 40 + 40 > 51.
    env.step({"player_0": 0, "player_1": 0})
    _, _, terminations, _, infos = env.step({"player_0": 4, "player_1": 4})
    assert infos["player_0"]["payoff"] == pytest.approx(51 / 2)
    assert infos["player_0"]["events"]["resource_collapsed"] == 1.0
    assert all(terminations.values())


def test_n_player_matrix_game_averages_pairwise_payoffs_and_counts_events() -> None:
    env = envs.make("social/IteratedPD-v0", n_players=3, horizon=2)
    env.reset(seed=0)
    _, rewards, _, _, infos = env.step({"player_0": 0, "player_1": 0, "player_2": 1})
    # player_0 meets one cooperator (R=3) and one defector (S=0); player_2 exploits two cooperators (T=5).
    assert [infos[a]["payoff"] for a in env.agents] == [1.5, 1.5, 5.0]
    assert rewards["player_2"] == pytest.approx(1.0)
    assert infos["player_0"]["events"] == {"cooperated": 1.0, "was_betrayed": 1.0}
    assert infos["player_2"]["events"] == {"defected": 1.0, "betrayed_cooperator": 2.0}
    _, _, _, _, infos = env.step({"player_0": 1, "player_1": 0, "player_2": 1})
    assert infos["player_0"]["events"] == {"defected": 1.0, "betrayed_cooperator": 1.0, "conflict": 1.0}
    assert infos["player_0"]["social"]["peace"] == 0.5


def test_stag_hunt_has_no_conflict_and_chicken_crashes_are_conflict() -> None:
    hunt = envs.make("social/StagHunt-v0", horizon=1)
    hunt.reset(seed=0)
    _, _, _, _, infos = hunt.step({"player_0": 1, "player_1": 1})
    assert infos["player_0"]["payoff"] == 2.0 and "conflict" not in infos["player_0"]["events"]
    assert infos["player_0"]["social"]["peace"] == 1.0
    chicken = envs.make("social/Chicken-v0", horizon=1)
    chicken.reset(seed=0)
    _, _, _, _, infos = chicken.step({"player_0": 1, "player_1": 1})
    assert infos["player_0"]["payoff"] == 0.0 and infos["player_0"]["events"]["conflict"] == 1.0
    assert infos["player_0"]["social"]["peace"] == 0.0


def test_observation_holds_the_recent_joint_actions_from_each_seat() -> None:
    env = envs.make("social/IteratedPD-v0", horizon=4, history_window=2)
    env.reset(seed=0)
    obs, _, _, _, _ = env.step({"player_0": 0, "player_1": 1})
    # [newest round: own one-hot, other one-hot | older round | rounds played / horizon]
    assert obs["player_0"].tolist() == [1, 0, 0, 1, 0, 0, 0, 0, 0.25]
    assert obs["player_1"].tolist() == [0, 1, 1, 0, 0, 0, 0, 0, 0.25]
    obs, _, _, _, infos = env.step({"player_0": 1, "player_1": 1})
    assert obs["player_0"].tolist() == [0, 1, 0, 1, 1, 0, 0, 1, 0.5]
    text = infos["player_0"]["text"]
    assert "Round 1: you cooperated; player_1 defected. You got 0 points." in text
    assert "Round 3 of 4 is next" in text


def test_unknown_horizon_varies_the_length_and_caps_it_with_truncation() -> None:
    lengths, truncated_any, terminated_any = [], False, False
    env = envs.make("social/IteratedPD-v0", horizon=4, continuation=0.7)
    for seed in range(60):
        env.reset(seed=seed)
        steps = 0
        while env.agents:
            _, _, terminations, truncations, infos = env.step({"player_0": 0, "player_1": 0})
            steps += 1
        lengths.append(steps)
        truncated_any |= truncations["player_0"]
        terminated_any |= terminations["player_0"]
        assert "of 4" not in infos["player_0"]["text"]
    assert max(lengths) == 4 and min(lengths) == 1
    assert truncated_any and terminated_any
    # Without a binding cap the mean length is 1 / (1 - continuation).
    env = envs.make("social/IteratedPD-v0", horizon=10_000, continuation=0.8, text_view=False)
    lengths = []
    for seed in range(400):
        env.reset(seed=seed)
        steps = 0
        while env.agents:
            env.step({"player_0": 0, "player_1": 0})
            steps += 1
        lengths.append(steps)
    assert np.mean(lengths) == pytest.approx(5.0, rel=0.1)


def test_invalid_actions_are_played_as_documented() -> None:
    env = envs.make("social/PublicGoods-v0", n_players=2, levels=3, punishment=True)
    _, infos = env.reset(seed=0)
    assert infos["player_0"]["action_mask"].tolist() == [1, 1, 1]
    # Contribution step: an action outside the levels gives nothing.
    _, _, _, _, infos = env.step({"player_0": 7, "player_1": 2})
    assert infos["player_0"]["events"]["defected"] == 1.0
    assert infos["player_0"]["action_mask"].tolist() == [1, 1, 0]
    assert infos["player_0"]["action_texts"][2] == "(not available now)"
    # Punishment step: an action outside the mask punishes no one.
    _, _, _, _, infos = env.step({"player_0": 2, "player_1": 0})
    assert infos["player_0"]["events"] == {} and infos["player_1"]["events"] == {}
