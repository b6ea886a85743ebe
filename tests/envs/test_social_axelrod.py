"""Axelrod strategies in a seat play exactly as in ``axelrod.Match`` against the same learner action sequence."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from upbringing import envs
from upbringing.envs.social.players import AxelrodPlayer, make_player

# Imported once for the module: the library takes many seconds to import.
axl = pytest.importorskip("axelrod")

pytestmark = pytest.mark.axelrod

C, D = axl.Action.C, axl.Action.D
# Deterministic ones, one that reads the known match length (BackStabber), and stochastic ones.
STRATEGIES = ["TitForTat", "Grudger", "Alternator", "BackStabber", "SuspiciousTitForTat", "Random", "GTFT", "ZDExtort2"]


def _learner_actions(turns: int, seed: int) -> list[int]:
    return [int(a) for a in np.random.default_rng(seed).integers(0, 2, turns)]


def _play_solo(env_id: str, strategy: str, actions: list[int], seat: int, seed: int, **kwargs):
    env = envs.make(env_id, opponents=[f"axelrod:{strategy}"], seat=seat, **kwargs)
    env.reset(seed=seed)
    (player,) = env.players.values()
    joint, payoffs = [], []
    for action in actions:
        _, _, terminated, truncated, info = env.step(action)
        # info["game"] lists seats relative to the learner: the learner first, then the Axelrod seat.
        joint.append(info["game"]["last_actions"])
        payoffs.append(info["game"]["last_payoffs"])
        if terminated or truncated:
            break
    return player, joint, payoffs


def _match(strategy: str, actions: list[int], seat: int, seed: int, **kwargs):
    mock = axl.MockPlayer([C if a == 0 else D for a in actions])
    players = (mock, getattr(axl, strategy)()) if seat == 0 else (getattr(axl, strategy)(), mock)
    match = axl.Match(players, turns=len(actions), seed=seed, **kwargs)
    plays = match.play()
    scores = match.scores()
    learner = 0 if seat == 0 else 1
    joint = [(0 if p[learner] == C else 1, 0 if p[1 - learner] == C else 1) for p in plays]
    payoffs = [(s[learner], s[1 - learner]) for s in scores]
    return joint, payoffs


@pytest.mark.parametrize("seat", [0, 1])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_full_match_gives_the_actions_and_scores_of_axelrod_match(strategy: str, seat: int) -> None:
    turns = 40
    actions = _learner_actions(turns, seed=len(strategy) + seat)
    player, joint, payoffs = _play_solo("social/IteratedPDSolo-v0", strategy, actions, seat, seed=5, horizon=turns)
    assert len(joint) == turns
    expected_joint, expected_payoffs = _match(strategy, actions, seat, seed=player.seed)
    assert joint == expected_joint
    assert payoffs == [tuple(float(x) for x in p) for p in expected_payoffs]


def test_stochastic_strategy_differs_between_episodes_but_repeats_with_the_seed() -> None:
    actions = [0] * 30
    _, first, _ = _play_solo("social/IteratedPDSolo-v0", "Random", actions, 0, seed=1, horizon=30)
    _, again, _ = _play_solo("social/IteratedPDSolo-v0", "Random", actions, 0, seed=1, horizon=30)
    _, other, _ = _play_solo("social/IteratedPDSolo-v0", "Random", actions, 0, seed=2, horizon=30)
    assert first == again
    assert first != other


def test_other_2x2_games_pass_their_payoffs_to_the_strategy() -> None:
    # ZDExtort2 computes its cooperation probabilities from the game's payoffs, so a wrong mapping changes its play.
    turns = 40
    actions = _learner_actions(turns, seed=3)
    player, joint, payoffs = _play_solo("social/StagHuntSolo-v0", "ZDExtort2", actions, 0, seed=9, horizon=turns)
    game = axl.Game(r=4, s=0, t=3, p=2)
    expected_joint, expected_payoffs = _match("ZDExtort2", actions, 0, seed=player.seed, game=game)
    assert joint == expected_joint
    assert payoffs == [tuple(float(x) for x in p) for p in expected_payoffs]


def test_unknown_horizon_hides_the_match_length_from_the_strategy() -> None:
    # BackStabber defects in the last two rounds of a match whose length it knows; here it must not know it.
    player, joint, _ = _play_solo(
        "social/IteratedPDSolo-v0", "BackStabber", [0] * 200, 0, seed=4, horizon=200, continuation=0.97
    )
    actions = [0] * len(joint)
    attributes = {"length": float("inf"), "game": axl.Game(), "noise": 0}
    expected_joint, _ = _match("BackStabber", actions, 0, seed=player.seed, match_attributes=attributes)
    assert joint == expected_joint
    assert all(theirs == 0 for _, theirs in joint[-2:])


def test_axelrod_seats_are_refused_where_no_mapping_exists() -> None:
    with pytest.raises(envs.EnvArgumentError, match="two-player"):
        envs.make("social/IteratedPDSolo-v0", opponents=["axelrod:TitForTat"], n_players=3)
    with pytest.raises(envs.EnvArgumentError, match="not 'commons'"):
        envs.make("social/CommonsSolo-v0", opponents=["axelrod:TitForTat"])
    with pytest.raises(ValueError, match="did you mean"):
        make_player("axelrod:TitForTatt")
    with pytest.raises(ValueError, match="cannot take a seat"):
        AxelrodPlayer("Darwin")


def test_axelrod_strategy_arguments_pass_through_a_mapping() -> None:
    player = make_player({"name": "axelrod:GTFT", "p": 0.9})
    assert isinstance(player, AxelrodPlayer)
    assert player.strategy.init_kwargs["p"] == 0.9


def test_importing_the_envs_does_not_import_axelrod() -> None:
    code = (
        "import sys; from upbringing import envs; import upbringing.envs.social.solo;"
        "e = envs.make('social/IteratedPDSolo-v0', opponents=['grim_trigger']); e.reset(seed=0); e.step(0);"
        "assert 'axelrod' not in sys.modules, 'axelrod was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "name, strategy",
    [
        ("Joss", "FirstByJoss"),  # as Axelrod's first tournament lists its entrants
        ("joss", "FirstByJoss"),
        ("First by Joss", "FirstByJoss"),  # the strategy's own name
        ("FirstByJoss", "FirstByJoss"),
        ("Stein and Rapoport", "FirstBySteinAndRapoport"),
        ("Tideman-Chieruzzi", "FirstByTidemanAndChieruzzi"),
        ("Grofman", "FirstByGrofman"),  # entered both tournaments: the first one's
        ("Champion", "SecondByChampion"),  # only in the second tournament
        ("tit for tat", "TitForTat"),
        ("SoftJoss", "SoftJoss"),
    ],
)
def test_axelrod_names_resolve_as_the_tournaments_list_them(name: str, strategy: str) -> None:
    assert make_player(f"axelrod:{name}").name == f"axelrod:{strategy}"


def test_every_first_tournament_entrant_resolves_by_the_name_in_its_own_data() -> None:
    from upbringing.envs.social.players import axelrod_strategy

    for cls in axl.axelrod_first_strategies:
        assert axelrod_strategy(cls.name) is cls
        if cls.name.startswith("First by "):
            assert axelrod_strategy(cls.name.removeprefix("First by ")) is cls


@pytest.mark.parametrize(
    "name, hint",
    [
        ("Jos", "did you mean FirstByJoss?"),
        ("Gruger", "did you mean Grudger, SoftGrudger?"),
        ("Tit4Tat", "did you mean TitForTat"),
    ],
)
def test_unknown_axelrod_names_get_hints_from_real_matches(name: str, hint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"axelrod has no strategy '{name}'; {hint}")):
        make_player(f"axelrod:{name}")
    with pytest.raises(ValueError, match=r"^axelrod:GTFT: .*unexpected keyword argument 'q'"):
        make_player({"name": "axelrod:GTFT", "q": 0.9})
