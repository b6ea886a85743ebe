"""Social metrics on hand-computed episodes: the pure functions, and what the envs report at an episode's end."""

from __future__ import annotations

import pytest
from upbringing import envs
from upbringing.envs.social.metrics import cooperation_rate, equality, gini, peace, social_metrics, sustainability


def test_gini_of_hand_computed_returns() -> None:
    assert gini([5, 5, 5]) == 0.0
    assert gini([0, 0, 0]) == 0.0
    # sum |xi - xj| over ordered pairs = 60; 2 * n * sum = 80.
    assert gini([0, 0, 0, 10]) == pytest.approx(0.75)
    # pairs (1,2), (1,3), (2,3) -> 1 + 2 + 1, twice = 8; 2 * 3 * 6 = 36.
    assert gini([1, 2, 3]) == pytest.approx(8 / 36)
    assert equality([1, 2, 3]) == pytest.approx(1 - 8 / 36)
    # Negative returns: the denominator uses absolute values and the result stays in [0, 1].
    assert gini([-1, 1]) == pytest.approx(0.5)
    assert 0.0 <= gini([-5, 0, 2]) <= 1.0


def test_sustainability_is_the_mean_time_of_positive_payoffs_over_the_horizon() -> None:
    payoffs = [[1, 0], [0, 0], [1, 2], [0, 0]]
    # player 0 gains at steps 1 and 3 (mean 2), player 1 at step 3: (2/4 + 3/4) / 2.
    assert sustainability(payoffs, horizon=4) == pytest.approx(0.625)
    # The same gains over a longer possible season: early relative to it.
    assert sustainability(payoffs, horizon=8) == pytest.approx(0.3125)
    assert sustainability([[0, 0]], horizon=4) == 0.0


def test_peace_and_cooperation_rate() -> None:
    assert peace([False, True, False, False]) == pytest.approx(0.75)
    assert peace([]) == 1.0
    assert cooperation_rate([1, 0.5, 0, 0.5]) == pytest.approx(0.5)


def test_social_metrics_of_a_hand_computed_prisoners_dilemma() -> None:
    # Rounds (C, C), (C, D), (D, D) with R=3, S=0, T=5, P=1: payoffs (3, 3), (0, 5), (1, 1); returns (4, 9).
    expected = {
        "efficiency": 13.0,
        "equality": 1 - 10 / 52,
        "sustainability": ((1 + 3) / 2 / 3 + (1 + 2 + 3) / 3 / 3) / 2,
        "peace": 2 / 3,
        "cooperation_rate": 0.5,
        "efficiency_normalised": 13 / 18,
    }
    computed = social_metrics(
        [[3, 3], [0, 5], [1, 1]], [1, 1, 1, 0, 0, 0], [False, False, True], horizon=3, optimum=18.0
    )
    assert computed == pytest.approx(expected)

    env = envs.make("social/IteratedPD-v0", horizon=3)
    env.reset(seed=0)
    for a, b in [(0, 0), (0, 1), (1, 1)]:
        _, _, _, _, infos = env.step({"player_0": a, "player_1": b})
    assert infos["player_0"]["social"] == pytest.approx(expected)
    assert infos["player_1"]["social"] == infos["player_0"]["social"]


def test_public_goods_metrics_and_events_of_a_hand_computed_round() -> None:
    env = envs.make(
        "social/PublicGoods-v0", n_players=3, endowment=10, multiplier=1.5, levels=3, horizon=1, punishment=True
    )
    env.reset(seed=0)
    # Contributions 10, 5, 0: pot 15 * 1.5 / 3 = 7.5 each.
    _, rewards, _, _, infos = env.step({"player_0": 2, "player_1": 1, "player_2": 0})
    assert [infos[a]["payoff"] for a in env.agents] == [7.5, 12.5, 17.5]
    assert infos["player_2"]["events"] == {"defected": 1.0, "free_rode": pytest.approx(0.75)}
    assert infos["player_0"]["events"] == {"cooperated": 1.0}
    assert rewards["player_2"] == pytest.approx(17.5 / (10 + 1.5 * 10 * 2 / 3))
    # player_0 punishes player_2 (2nd other seat after it); player_2 punishes player_0 (1st other seat after it).
    _, _, terminations, _, infos = env.step({"player_0": 2, "player_1": 0, "player_2": 1})
    assert [infos[a]["payoff"] for a in env.possible_agents] == [-4.0, 0.0, -4.0]
    assert infos["player_0"]["events"] == {"punished": 1.0, "was_punished": 1.0}
    # player_2 gave nothing and punished someone who gave more: antisocial punishment.
    assert infos["player_2"]["events"] == {"punished": 1.0, "was_punished": 1.0, "punished_contributor": 1.0}
    assert all(terminations.values())
    social = infos["player_1"]["social"]
    assert social["efficiency"] == pytest.approx(3.5 + 12.5 + 13.5)
    assert social["efficiency_normalised"] == pytest.approx(29.5 / 45)
    assert social["cooperation_rate"] == pytest.approx(0.5)
    assert social["peace"] == 0.0
    assert social["equality"] == pytest.approx(equality([3.5, 12.5, 13.5]))


def test_commons_metrics_of_a_hand_computed_collapse() -> None:
    # Two fishers, capacity 100, catches of up to 30 each: rounds leave 40 (regrows to 64), then 4 (< 5: collapse).
    env = envs.make("social/Commons-v0", n_players=2, max_harvest=30.0, levels=2, horizon=10)
    env.reset(seed=0)
    _, _, _, _, infos = env.step({"player_0": 1, "player_1": 1})
    assert infos["player_0"]["game"]["stock"] == pytest.approx(40 + 40 * 0.6)
    _, _, terminations, _, infos = env.step({"player_0": 1, "player_1": 1})
    assert all(terminations.values())
    social = infos["player_0"]["social"]
    assert social["efficiency"] == pytest.approx(60 + 60)
    assert social["sustainability"] == pytest.approx(1.5 / 10)
    assert social["survival"] == pytest.approx(0.1)
    assert social["final_stock"] == 0.0
    assert social["peace"] == 1.0
    # First catch: share (100 - 50) / 2 = 25 < 30; second: (64 - 50) / 2 = 7 < 30: both overharvest.
    assert social["cooperation_rate"] == 0.0
    assert infos["player_0"]["success"] is False
