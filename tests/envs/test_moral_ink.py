"""moral/Ink-v0 and compiled Ink stories: playing the shipped stories, tags and variables as events and reward,
seeded randomness, the mask, the step limit, clear errors, ``upbringing check``, and sources that match their JSON."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from upbringing import envs
from upbringing.curriculum.cli import main
from upbringing.curriculum.commands import check_file
from upbringing.envs.contract import check_info
from upbringing.envs.moral.ink_env import InkEnv
from upbringing.envs.moral.inkcheck import check_ink_file
from upbringing.envs.moral.inkfile import INK_DIR, shipped_stories
from upbringing.yamlfile import FileError

pytest.importorskip("bink")

FIXTURES = Path(__file__).resolve().parent / "ink"
SHIPPED = sorted(shipped_stories())


def play(env: InkEnv, choices: list[int], seed: int = 0) -> list[tuple[float, dict, bool, bool, dict]]:
    """Reset, then take ``choices`` in order; return (reward, events, terminated, truncated, info) per step."""
    _, info = env.reset(seed=seed)
    check_info(info, int(env.action_space.n), env.event_names, at_reset=True)
    out = []
    for action in choices:
        _, reward, terminated, truncated, info = env.step(action)
        check_info(info, int(env.action_space.n), env.event_names)
        out.append((reward, info["events"], terminated, truncated, info))
    return out


def test_shipped_stories_are_the_registered_levels():
    assert sorted(level["story"] for level in envs.spec("moral/Ink-v0").levels) == SHIPPED
    assert len(SHIPPED) >= 4


@pytest.mark.parametrize("story", SHIPPED)
def test_each_story_plays_through_under_every_policy_seed(story):
    env = envs.make("moral/Ink-v0", story=story)
    check_env(env, skip_render_check=True)
    endings = set()
    for seed in range(30):
        _, info = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        done = False
        while not done:
            action = int(rng.choice(np.flatnonzero(info["action_mask"])))
            obs, _, terminated, truncated, info = env.step(action)
            assert env.observation_space.contains(obs)
            check_info(info, env.action_space.n, env.event_names)
            done = terminated or truncated
        assert terminated and not truncated  # every shipped story ends within the step limit
        endings.add(info["ending"])
        assert info["success"] == (info["ending"] == "good")
    assert {"good", "bad"} <= endings


def test_promise_story_tags_become_events_reward_and_the_ending():
    env = envs.make("moral/Ink-v0", story="den-promise", render_mode="ansi")
    _, info = env.reset(seed=0)
    assert info["text"].startswith("The Blanket Den\n\n") and "Will you help me?" in info["text"]
    assert info["action_texts"][:2] == ['"I promise I\'ll help you after school."', '"Maybe. We\'ll see."']
    promise, jess, lie = play(env, [0, 0, 1])
    assert promise[1] == {} and promise[0] == 0.0
    assert {"school", "remember"} <= set(promise[4]["knots"])  # the tunnel was entered
    assert "You remember the promise" in promise[4]["text"]
    assert jess[0] == pytest.approx(0.3) and jess[1] == {"broke_promise": 1.0}
    assert (
        lie[1] == {"deceived": 1.0}
        and lie[0] == pytest.approx(-0.5)
        and lie[2]
        and lie[4]["ending"] == "bad"
        and lie[4]["success"] is False
    )
    assert "[0]" not in env.render() and "The story is over." in env.render()
    # Without the promise the same route breaks nothing; the fallback choice ends the day, not quite well.
    _, play_game = play(env, [1, 0])
    assert play_game[1] == {} and play_game[0] == pytest.approx(0.3)
    assert play_game[2] and play_game[4]["ending"] == "okay" and play_game[4]["success"] is False
    _, helped = play(env, [0, 1])
    assert helped[1] == {"kept_promise": 1.0} and helped[0] == pytest.approx(0.5)  # the good ending's reward tag
    assert helped[4]["ending"] == "good" and helped[4]["success"] is True


def test_choice_tags_are_counted_once_and_dynamic_tags_are_read():
    env = envs.make("moral/Ink-v0", story=FIXTURES / "tags.json")
    pick, give = play(env, [0, 0])
    assert pick[1] == {"stole": 1.0}  # on the choice and on its echoed line: one event
    assert pick[0] == pytest.approx(1.0)  # `# reward: {coins}` after picking the coin up
    assert give[1] == {"helped": 1.0} and give[0] == pytest.approx(0.25) and give[2]
    leave, _ = play(env, [1, 0])
    assert leave[1] == {} and leave[0] == pytest.approx(0.1 + 0.0)


def test_variables_map_to_events_and_reward_from_tags_and_from_arguments():
    env = envs.make("moral/Ink-v0", story="swing-turns")
    (push, keep) = play(env, [0, 1])
    # Global tags: `variable: pushed harm_other`, `variable: fairness unfair -1`, `reward_variable: fun`.
    assert push[1] == {"harm_other": 1.0, "unfair": 1.0} and push[0] == pytest.approx(1.0)
    assert push[4]["variables"] == {"pushed": 1.0, "fairness": -1.0, "fun": 1.0}
    # fun rose 0.5 and the bad ending's reward tag costs 0.5
    assert keep[1] == {"harm_other": 1.0} and keep[0] == pytest.approx(0.0) and keep[4]["ending"] == "bad"
    (fair,) = play(env, [2])  # fairness rose: only a fall counts as unfair; fun 0.5 and the good ending's 0.5
    assert fair[1] == {} and fair[0] == pytest.approx(1.0) and fair[4]["ending"] == "good"
    # Arguments override the tags per variable and replace the reward variable.
    mapped = envs.make(
        "moral/Ink-v0",
        story="swing-turns",
        variables={"fairness": "helped", "pushed": {"event": "harm_other", "scale": 0.5}},
        reward_variable="pushed",
        reward_scale=-2.0,
    )
    (push, _), (fair,) = play(mapped, [0, 1]), play(mapped, [2])
    assert push[1] == {"harm_other": 0.5} and push[0] == pytest.approx(-2.0)
    assert fair[1] == {"helped": 1.0} and fair[0] == pytest.approx(0.5)  # only the ending's reward tag


def test_bad_variable_mappings_are_clear_errors():
    with pytest.raises(envs.EnvArgumentError, match=r"'kindnes' is not declared \(VAR\); declared: snacks, kindness"):
        envs.make("moral/Ink-v0", story="snack-box", variables={"kindnes": "helped"})
    with pytest.raises(envs.EnvArgumentError, match="'promised' holds False; expected a number"):
        envs.make("moral/Ink-v0", story="den-promise", variables={"promised": "kept_promise"})
    with pytest.raises(envs.EnvArgumentError, match="unknown event 'kindness'"):
        envs.make("moral/Ink-v0", story="snack-box", variables={"kindness": "kindness"})
    with pytest.raises(envs.EnvArgumentError, match="'score' is not declared"):
        envs.make("moral/Ink-v0", story="snack-box", reward_variable="score")


def test_seed_reproduces_inks_random_state():
    env = envs.make("moral/Ink-v0", story="kite-wind")

    def episode(seed: int) -> list[str]:
        texts = [env.reset(seed=seed)[1]["text"]]
        for action in (1, 1):  # hide the kite, then put Aisha off (or, when found out, blame your sister)
            texts.append(env.step(action)[4]["text"])
        return texts

    assert episode(5) == episode(5)
    runs = [episode(seed) for seed in range(30)]
    assert len({r[0] for r in runs}) == 3  # the shuffled wind: gusty, strong, wild
    found = ["spots the tail" in r[1] for r in runs]
    assert 0 < sum(found) < len(found)  # RANDOM(1, 3) decides whether the hidden kite is found


def test_mask_follows_the_choices_and_invalid_actions_cost_without_moving():
    env = envs.make("moral/Ink-v0", story="snack-box", invalid_penalty=0.1)
    _, info = env.reset(seed=0)
    assert info["action_mask"].tolist() == [1, 1, 1, 0, 0, 0]
    assert info["action_texts"][3:] == ["(no choice)"] * 3
    _, reward, terminated, truncated, after = env.step(5)
    assert after["invalid_action"] and reward == -0.1 and not (terminated or truncated) and after["events"] == {}
    assert after["text"] == info["text"]
    _, _, _, _, info = env.step(2)  # ask Mo: a once-only choice
    assert info["action_texts"][:2] == ["Eat a strawberry yourself.", "Give Mo a strawberry."]
    assert "Ask Mo if he is hungry." not in info["action_texts"] and info["action_mask"].sum() == 2
    for left in (2, 1, 0):  # sticky choices come back until the box is empty
        _, reward, _, _, info = env.step(1)
        assert info["events"] == {"shared": 1.0} and reward == (0.5 if left == 0 else 0.0)
    # Nothing left to choose: the fallback choice took the story home.
    assert "Mo waves all the way to the gate" in info["text"] and info["success"] and info["ending"] == "good"
    assert info["action_mask"].tolist() == [1, 0, 0, 0, 0, 0]
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)


def test_step_limit_truncates_and_too_many_choices_is_an_error():
    env = envs.make("moral/Ink-v0", story="snack-box", max_steps=2)
    first, second = play(env, [0, 0])
    assert not first[3] and second[3] and not second[2] and second[4]["success"] is False
    small = envs.make("moral/Ink-v0", story="snack-box", max_choices=2)
    with pytest.raises(ValueError, match="offers 3 choices at once but max_choices is 2"):
        small.reset(seed=0)


def test_missing_files_foreign_json_and_missing_bink_are_clear(tmp_path, monkeypatch):
    with pytest.raises(FileError, match="file not found; expected a compiled Ink JSON file or a shipped story"):
        envs.make("moral/Ink-v0", story=str(tmp_path / "nope.json"))
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"scenes": []}')
    with pytest.raises(FileError, match="not compiled Ink JSON"):
        envs.make("moral/Ink-v0", story=foreign)
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    with pytest.raises(FileError, match="not JSON"):
        envs.make("moral/Ink-v0", story=broken)
    with pytest.raises(envs.EnvArgumentError, match="story= is required"):
        envs.make("moral/Ink-v0")
    monkeypatch.setitem(sys.modules, "bink", None)
    monkeypatch.setitem(sys.modules, "bink.story", None)
    with pytest.raises(ImportError, match=r"pip install 'upbringing\[ink\]'"):
        envs.make("moral/Ink-v0", story="snack-box")
    problems = check_file(INK_DIR / "snack-box.json")
    assert len(problems) == 1 and "upbringing[ink]" in problems[0].message


@pytest.mark.parametrize("story", SHIPPED)
def test_check_passes_every_shipped_story(story):
    report = check_ink_file(INK_DIR / f"{story}.json")
    assert report.problems == [] and report.complete
    assert {"good", "bad"} <= set(report.endings) and report.knots_reached == report.knots


def test_check_names_each_problem_of_a_broken_story(capsys):
    path = FIXTURES / "broken.json"
    messages = [str(p) for p in check_file(path)]
    expected = [
        "before any knot: tag 'event: stolen 1': unknown event 'stolen'",
        "before any knot: unknown tag 'mood: happy'",
        "Ink variable 'kindness' is not declared (VAR); declared: score",
        "tag 'event: helped 1' comes before the first choice",
        "dead end after choices 'Keep it > Spend it': the flow runs out of content",
        "ending 'secret' is never reached",
        "knot 'lost' is never reached",
    ]
    for text in expected:
        assert any(text in m and m.startswith(f"{path}: ") for m in messages), text
    assert len(messages) == len(expected)
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "endings reached: good; knots reached 2/3" in err
    assert main(["check", str(INK_DIR / "kite-wind.json")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{INK_DIR / 'kite-wind.json'}: ok (all ") and "knots reached 5/5" in out


def _compiler() -> str | None:
    found = os.environ.get("INKJS_COMPILER") or shutil.which("inkjs-compiler")
    local = Path(__file__).resolve().parents[2] / ".inkjs" / "node_modules" / ".bin" / "inkjs-compiler"
    return found or (str(local) if local.exists() else None)


@pytest.mark.parametrize("source", sorted(INK_DIR.glob("*.ink")) + sorted(FIXTURES.glob("*.ink")), ids=lambda p: p.name)
def test_sources_compile_to_the_committed_json(source, tmp_path):
    compiler = _compiler()
    if compiler is None:
        pytest.skip("inkjs-compiler not found (make ink-compiler, or set INKJS_COMPILER)")
    out = tmp_path / "out.json"
    run = subprocess.run([compiler, "-o", str(out), source.name], cwd=source.parent, capture_output=True, text=True)
    assert run.returncode == 0 and "ERROR" not in run.stdout + run.stderr, run.stdout + run.stderr
    if source.parent == INK_DIR:
        assert "WARNING" not in run.stdout + run.stderr, run.stdout + run.stderr
    assert out.read_bytes() == source.with_suffix(".json").read_bytes(), f"recompile {source} and commit its JSON"


def test_threads_and_external_functions_with_and_without_an_ink_fallback():
    env = envs.make("moral/Ink-v0", story=FIXTURES / "threads.json")
    _, info = env.reset(seed=0)
    assert "You feel fine." in info["text"]  # the EXTERNAL function's Ink fallback ran
    assert info["action_texts"][:2] == ["Side choice", "Main choice"]  # the thread's choice beside the main one
    _, _, terminated, _, info = env.step(0)
    assert info["events"] == {"shared": 1.0} and terminated and info["ending"] is None and not info["success"]
    external = envs.make("moral/Ink-v0", story=FIXTURES / "external.json")
    with pytest.raises(RuntimeError, match="Missing function binding for external: 'ping'"):
        external.reset(seed=0)
    (problem,) = check_file(FIXTURES / "external.json")
    assert "no fallback ink function found" in problem.message


def test_a_config_with_an_ink_stage_says_when_bink_is_missing(monkeypatch):
    full = Path(__file__).resolve().parents[2] / "configs" / "full.yaml"
    monkeypatch.setitem(sys.modules, "bink", None)
    monkeypatch.setitem(sys.modules, "bink.story", None)
    (problem,) = check_file(full)
    assert problem.key == "stages[9].kwargs" and "pip install 'upbringing[ink]'" in problem.message
