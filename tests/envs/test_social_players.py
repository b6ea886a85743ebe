"""Built-in background players and how the solo views and background seats seat them (without Axelrod)."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test
from upbringing import envs
from upbringing.envs.social.players import BUILTIN_PLAYERS, BackgroundPlayer, TitForTat, make_player
from upbringing.envs.social.seats import BackgroundSeats


def _opponent_moves(opponent, learner_actions: list[int], **kwargs) -> list[int]:
    env = envs.make("social/IteratedPDSolo-v0", opponents=[opponent], horizon=len(learner_actions), **kwargs)
    env.reset(seed=0)
    moves = []
    for action in learner_actions:
        _, _, _, _, info = env.step(action)
        moves.append(info["game"]["last_actions"][1])
    return moves


def test_matrix_strategies_answer_the_learners_moves() -> None:
    learner = [0, 1, 0, 0, 1, 1, 0, 0]
    assert _opponent_moves("always_cooperate", learner) == [0] * 8
    assert _opponent_moves("always_defect", learner) == [1] * 8
    assert _opponent_moves("tit_for_tat", learner) == [0, *learner[:-1]]
    assert _opponent_moves("grim_trigger", learner) == [0, 0, 1, 1, 1, 1, 1, 1]
    assert _opponent_moves({"name": "generous_tit_for_tat", "generosity": 0.0}, learner) == [0, *learner[:-1]]
    assert _opponent_moves({"name": "generous_tit_for_tat", "generosity": 1.0}, learner) == [0] * 8
    assert _opponent_moves({"name": "random", "p_cooperate": 1.0}, learner) == [0] * 8
    assert _opponent_moves({"name": "random", "p_cooperate": 0.0}, learner) == [1] * 8


def test_tit_for_tat_with_several_players_retaliates_against_any_defector() -> None:
    env = envs.make("social/IteratedPDSolo-v0", opponents=["tit_for_tat", "always_defect"], n_players=3, horizon=3)
    env.reset(seed=0)
    env.step(0)
    _, _, _, _, info = env.step(0)
    # Seats after the learner: tit_for_tat, then always_defect, who defected in round 1.
    assert info["game"]["last_actions"] == (0, 1, 1)


def test_public_goods_contributor_gives_its_share_and_punishes_low_givers() -> None:
    env = envs.make(
        "social/PublicGoodsSolo-v0",
        opponents=[{"name": "fixed_contributor", "fraction": 0.5, "punish_below": 0.5}, "always_cooperate"],
        n_players=3,
        levels=5,
        punishment=True,
    )
    env.reset(seed=0)
    _, _, _, _, info = env.step(1)  # the learner gives a quarter
    assert info["game"]["contributions"] == (2.5, 5.0, 10.0)
    _, _, _, _, info = env.step(0)
    assert info["events"] == {"was_punished": 1.0}
    assert info["game"]["received"] == (1.0, 0.0, 0.0)


def test_harvesters_choose_their_catch_from_the_stock() -> None:
    view = {"kind": "commons", "levels": (0.0, 2.5, 5.0, 7.5, 10.0), "stock": 80.0, "sustainable_share": 7.4}
    info = {"game": view, "action_mask": np.ones(5, dtype=np.int8)}
    assert make_player("greedy_harvester").act(np.zeros(1), info) == 4
    assert make_player("sustainable_harvester").act(np.zeros(1), info) == 2
    assert make_player({"name": "proportional_harvester", "fraction": 0.1}).act(np.zeros(1), info) == 3


def test_random_player_repeats_with_its_seed() -> None:
    info = {"game": {"kind": "commons"}, "action_mask": np.array([1, 1, 0, 1], dtype=np.int8)}
    player = make_player("random")
    player.reset(seed=3)
    first = [player.act(np.zeros(1), info) for _ in range(30)]
    player.reset(seed=3)
    assert [player.act(np.zeros(1), info) for _ in range(30)] == first
    assert set(first) == {0, 1, 3}


def test_opponent_pool_draws_per_episode_with_the_weights() -> None:
    env = envs.make(
        "social/IteratedPDSolo-v0",
        opponent_pool=["always_cooperate", "always_defect", "tit_for_tat"],
        opponent_weights=[3, 1, 0],
        n_players=3,
    )
    names = []
    _, info = env.reset(seed=0)
    for _ in range(100):
        names.extend(info["opponents"])
        _, info = env.reset()
    counts = {name: names.count(name) for name in set(names)}
    assert set(counts) == {"always_cooperate", "always_defect"}
    assert 0.65 < counts["always_cooperate"] / len(names) < 0.85


def test_learner_can_take_any_seat() -> None:
    env = envs.make("social/IteratedPDSolo-v0", opponents=["always_defect"], seat=1)
    _, info = env.reset(seed=0)
    assert env.unwrapped.agent == "player_1"
    assert info["text"].startswith("You are player_1")
    _, reward, _, _, info = env.step(0)
    assert reward == 0.0 and info["payoff"] == 0.0 and info["events"] == {"cooperated": 1.0, "was_betrayed": 1.0}


def test_a_custom_player_instance_takes_a_seat_and_is_copied_per_seat() -> None:
    class Counter(BackgroundPlayer):
        name = "counter"
        games = frozenset({"matrix"})

        def reset(self, seed: int | None = None) -> None:
            self.calls = 0

        def act(self, observation, info) -> int:
            self.calls += 1
            return self.calls % 2

    shared = Counter()
    env = envs.make("social/IteratedPDSolo-v0", opponents=[shared], n_players=3, horizon=4)
    env.reset(seed=0)
    for _ in range(4):
        _, _, _, _, info = env.step(0)
    assert [p.calls for p in env.unwrapped.players.values()] == [4, 4]
    assert info["opponents"] == ["counter", "counter"]


def test_unknown_players_and_bad_arguments_are_explained() -> None:
    with pytest.raises(ValueError, match="built-ins: always_cooperate"):
        make_player("tit_for_two_tats")
    with pytest.raises(ValueError, match="needs a 'name'"):
        make_player({"fraction": 0.5})
    with pytest.raises(ValueError, match="fixed_contributor"):
        make_player({"name": "fixed_contributor", "level": 3})
    with pytest.raises(ValueError, match="generosity"):
        make_player({"name": "generous_tit_for_tat", "generosity": 2})
    with pytest.raises(envs.EnvArgumentError, match="either opponents or opponent_pool"):
        envs.make("social/IteratedPDSolo-v0", opponents=["tit_for_tat"], opponent_pool=["tit_for_tat"])
    with pytest.raises(envs.EnvArgumentError, match="opponent_weights"):
        envs.make("social/IteratedPDSolo-v0", opponent_pool=["tit_for_tat"], opponent_weights=[1, 2])
    assert isinstance(make_player("tit_for_tat"), TitForTat)
    assert set(BUILTIN_PLAYERS) >= {"always_cooperate", "always_defect", "tit_for_tat", "random", "grim_trigger"}


def test_background_seats_keep_several_focal_seats_as_agents() -> None:
    def make():
        game = envs.make("social/PublicGoods-v0", n_players=5, punishment=True, horizon=3)
        return BackgroundSeats(game, focal_seats=[0, 2], opponent_pool=["random", "fixed_contributor"])

    parallel_api_test(make(), num_cycles=50)
    parallel_seed_test(make)
    env = make()
    obs, infos = env.reset(seed=4)
    assert env.agents == ["player_0", "player_2"] and set(obs) == {"player_0", "player_2"}
    assert len(infos["player_0"]["opponents"]) == 3
    while env.agents:
        _, rewards, _, _, infos = env.step({a: 4 for a in env.agents})
    assert set(rewards) == {"player_0", "player_2"}
    assert infos["player_2"]["social"]["cooperation_rate"] > 0
    with pytest.raises(ValueError, match="focal_seats"):
        BackgroundSeats(envs.make("social/IteratedPD-v0"), focal_seats=[2])
