"""Run configs: valid files load, extends and overrides merge, and every malformed file gives one clear error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from helpers.toy_envs import TOY_ID, toy_spec
from pydantic import ValidationError
from upbringing.curriculum.checks import load_config
from upbringing.curriculum.cli import main
from upbringing.curriculum.factory import stage_levels
from upbringing.envs.registry import registered
from upbringing.yamlfile import FileError


@pytest.fixture(autouse=True, scope="module")
def _toy_env():
    """The toy env is registered only while this module's tests run (other tests list the real registry)."""
    with registered(toy_spec()):
        yield


VALID = f"""\
name: toy
seed: 3
agent: {{kind: sb3_ppo, n_steps: 32}}
curriculum: {{chunk_steps: 128, n_envs: 2}}
tracking: {{wandb: off}}
stages:
  - name: two
    env: {TOY_ID}
    promotion: {{threshold: 0.9}}
    budget: 1000
"""


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(path: Path, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(FileError) as info:
        load_config(path, overrides)
    return [str(p) for p in info.value.problems]


def test_valid_config_loads_with_defaults(tmp_path):
    config = load_config(write(tmp_path, VALID))
    assert config.seed == 3 and config.stages[0].env == TOY_ID
    assert config.curriculum.teacher == "sequential" and config.tracking.wandb == "off"
    # levels omitted: the env's declared levels, easiest first
    assert stage_levels(config.stages[0]) == [{"n": 2}, {"n": 3}]


def test_config_is_frozen(tmp_path):
    config = load_config(write(tmp_path, VALID))
    with pytest.raises(ValidationError):
        config.seed = 4  # type: ignore[misc]  # frozen: the write under test


def test_extends_merges_mappings_and_replaces_lists(tmp_path):
    write(tmp_path, VALID, "base.yaml")
    child = write(tmp_path, "extends: base.yaml\nseed: 7\ncurriculum: {n_envs: 4}\n", "child.yaml")
    config = load_config(child)
    assert config.seed == 7 and config.curriculum.n_envs == 4
    assert config.curriculum.chunk_steps == 128  # kept from base
    assert config.name == "toy"


def test_extends_replaces_a_block_of_another_kind(tmp_path):
    write(tmp_path, VALID, "base.yaml")
    child = write(tmp_path, "extends: base.yaml\nagent: {kind: lm, n_steps: 64}\n", "child.yaml")
    config = load_config(child)  # the base's SB3 keys (batch_size, ...) are not merged into the LM agent
    assert config.agent.kind == "lm" and config.agent.n_steps == 64


def test_overrides_set_nested_keys_and_list_items(tmp_path):
    config = load_config(write(tmp_path, VALID), ["seed=11", "stages.0.budget=2048", "stages[0].levels=[{n: 4}]"])
    assert config.seed == 11 and config.stages[0].budget == 2048
    assert stage_levels(config.stages[0]) == [{"n": 4}]


def test_stage_kwargs_win_over_declared_levels_and_levels_win_over_kwargs(tmp_path):
    config = load_config(write(tmp_path, VALID), ["stages.0.kwargs={n: 5}"])
    assert stage_levels(config.stages[0]) == [{"n": 5}, {"n": 5}]
    config = load_config(write(tmp_path, VALID), ["stages.0.kwargs={n: 5}", "stages.0.levels=[{}, {n: 6}]"])
    assert stage_levels(config.stages[0]) == [{"n": 5}, {"n": 6}]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t.replace("name: toy\n", ""), "c.yaml:1: name: missing required key"),
        (lambda t: t.replace("seed: 3", "seed: three"), "c.yaml:2: seed: Input should be a valid integer"),
        (
            lambda t: t.replace("budget: 1000", "budget: -5"),
            "c.yaml:10: stages[0].budget: Input should be greater than 0",
        ),
        (
            lambda t: t.replace(f"env: {TOY_ID}", "env: physics/Nope-v0"),
            "c.yaml:8: stages[0].env: unknown env id 'physics/Nope-v0'",
        ),
        (lambda t: t[: t.index("stages:")] + "stages: []\n", "c.yaml:6: stages: List should have at least 1 item"),
        (lambda t: t + "colour: blue\n", "c.yaml:11: colour: unknown key"),
        (
            lambda t: t.replace("promotion: {threshold: 0.9}", "promotion: {threshold: 0.9, windw: 3}"),
            "c.yaml:9: stages[0].promotion.windw: unknown key",
        ),
        (lambda t: t.replace("seed: 3", "seed: [3"), "c.yaml:3: broken YAML"),
        (lambda t: t.replace("seed: 3", "seed: 3\nseed: 4"), "c.yaml:3: seed: duplicate key"),
        (
            lambda t: t.replace("{wandb: off}", "{wandb: maybe}"),
            "c.yaml:5: tracking.wandb: Input should be 'offline', 'online' or 'off'",
        ),
        (lambda t: t.replace("kind: sb3_ppo", "kind: dqn"), "c.yaml:3: agent"),
        (
            lambda t: t.replace("budget: 1000", "budget: 1000\n    kwargs: {n: 1}"),
            "c.yaml:11: stages[0].kwargs: test/Lights-v0: n must be an int >= 2",
        ),
        (lambda t: t.replace("chunk_steps: 128", "chunk_steps: 100"), "chunk_steps (100) must be a multiple of"),
        (
            lambda t: t.replace("promotion: {threshold: 0.9}", "promotion: {threshold: 1.5}"),
            "threshold for metric=success must be within [0, 1]",
        ),
    ],
    ids=[
        "missing-key",
        "wrong-type",
        "negative-budget",
        "unknown-env",
        "empty-stages",
        "unknown-key",
        "unknown-nested-key",
        "broken-yaml",
        "duplicate-key",
        "bad-choice",
        "unknown-agent",
        "bad-env-kwargs",
        "chunk-not-whole-rollouts",
        "threshold-out-of-range",
    ],
)
def test_malformed_configs_give_one_clear_error(tmp_path, edit, expected):
    found = problems(write(tmp_path, edit(VALID)))
    assert len(found) == 1, found
    assert expected in found[0], found[0]
    assert str(tmp_path / "c.yaml") in found[0]


def test_every_problem_is_reported_not_just_the_first(tmp_path):
    text = VALID.replace("seed: 3", "seed: -1").replace("budget: 1000", "budget: 0") + "extra: 1\n"
    assert len(problems(write(tmp_path, text))) == 3


def test_bad_override_names_the_command_line(tmp_path):
    found = problems(write(tmp_path, VALID), ["stages.5.budget=3"])
    assert found == ["command line: stages.5.budget: no list item stages[5]"]
    assert "expected key=value" in problems(write(tmp_path, VALID), ["seed"])[0]


def test_extends_errors(tmp_path):
    assert "extended file nope.yaml not found" in problems(write(tmp_path, "extends: nope.yaml\n"))[0]
    write(tmp_path, "extends: b.yaml\n", "a.yaml")
    b = write(tmp_path, "extends: a.yaml\n", "b.yaml")
    assert "extends itself" in problems(b)[0]


def test_yaml_is_never_executed(tmp_path):
    found = problems(write(tmp_path, VALID.replace("seed: 3", "seed: !!python/object/apply:os.system ['true']")))
    assert "broken YAML" in found[0]


@pytest.mark.parametrize("mode", ["check", "train"])
def test_cli_reports_errors_without_traceback_and_leaves_no_run_folder(tmp_path, capsys, mode):
    bad = write(tmp_path, VALID.replace("budget: 1000", "budget: -1"))
    run_dir = tmp_path / "run"
    argv = ["check", str(bad)] if mode == "check" else ["train", str(bad), "--run-dir", str(run_dir)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "stages[0].budget" in err and "Traceback" not in err
    assert not run_dir.exists()


def test_check_prints_ok_for_a_valid_config(tmp_path, capsys):
    good = write(tmp_path, VALID)
    assert main(["check", str(good)]) == 0
    assert capsys.readouterr().out.strip() == f"{good}: ok"


def test_check_rejects_unrecognised_files(tmp_path, capsys):
    assert main(["check", str(write(tmp_path, "hello: world\n"))]) == 1
    assert "unrecognised file" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "missing.yaml")]) == 1
    assert "file not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda t: t[: t.index("stages:")] + "stages: 5\n", "c.yaml:6: stages: Input should be a valid list (got 5)"),
        (
            lambda t: t[: t.index("stages:")] + "stages: 5.0\n",
            "c.yaml:6: stages: Input should be a valid list (got 5.0)",
        ),
        (
            lambda t: t[: t.index("stages:")] + "stages: true\n",
            "c.yaml:6: stages: Input should be a valid list (got True)",
        ),
        (lambda t: t + "constitution: [a]\n", "c.yaml:11: constitution: Input should be a valid string (got ['a'])"),
        (
            lambda t: t.replace("    budget: 1000", "    budget: 1000\n    constitution: 7"),
            "stages[0].constitution: Input should be a valid string (got 7)",
        ),
        (lambda t: t.replace("seed: 3", "seed: 4294967296"), "seed: Input should be less than or equal to 4294967295"),
        (lambda t: t.replace("seed: 3", "seed: .nan"), "c.yaml:2: seed: Input should be a finite number (got nan)"),
        (
            lambda t: t.replace("{threshold: 0.9}", "{threshold: .inf}"),
            "stages[0].promotion.threshold: Input should be a finite number",
        ),
        (
            lambda t: "extends: [base.yaml]\n" + t,
            "c.yaml:1: extends: expected a path to another config, got ['base.yaml']",
        ),
        (
            lambda t: t.replace("seed: 3", "seed: 2024-02-30"),
            "c.yaml:2: seed: '2024-02-30' reads as a date but is not one",
        ),
    ],
    ids=[
        "stages-int",
        "stages-float",
        "stages-bool",
        "constitution-list",
        "stage-constitution-int",
        "seed-too-big",
        "seed-nan",
        "inf",
        "extends-list",
        "bad-date",
    ],
)
def test_no_step_before_validation_trusts_a_type(tmp_path, edit, expected):
    found = problems(write(tmp_path, edit(VALID)))
    assert len(found) == 1 and expected in found[0], found


@pytest.mark.parametrize(
    "override, expected",
    [
        ("stages=5", "c.yaml:6: stages: Input should be a valid list (got 5)"),
        ("constitution=[1]", "constitution: Input should be a valid string (got [1])"),
        ("seed=[", "command line: seed: cannot parse the value of override 'seed=['"),
        ("seed=&a [*a]", "an alias (*name) refers to a block that contains it"),
        ("seed={1: 2}", "a key must be a name"),
    ],
)
def test_overrides_go_through_the_same_validation(tmp_path, override, expected):
    found = problems(write(tmp_path, VALID), [override])
    assert len(found) == 1 and expected in found[0], found


def test_constitution_paths_resolve_against_the_config_after_validation(tmp_path):
    shipped = Path(__file__).resolve().parents[2] / "constitutions" / "minimal.yaml"
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "mine.yaml").write_text(shipped.read_text())
    config = load_config(write(tmp_path, VALID + "constitution: rules/mine.yaml\n"))
    assert config.constitution == str((tmp_path / "rules" / "mine.yaml").resolve())
    config = load_config(write(tmp_path, VALID + "constitution: minimal\n"))
    assert config.constitution == "minimal"
    (found,) = problems(write(tmp_path, VALID + "constitution: defualt\n"))
    assert found.endswith(
        "constitution: constitution 'defualt': unknown constitution (did you mean 'default'?); shipped: default, "
        "minimal, layered, or give a path to a YAML file"
    )
