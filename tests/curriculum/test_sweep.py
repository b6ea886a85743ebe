"""``upbringing sweep``: a grid of ordinary runs on a local Ray, resumed when interrupted, bad grids refused."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers.events import comparable
from helpers.ray_runs import tiny_two_stage
from upbringing.curriculum.checks import load_config
from upbringing.curriculum.cli import main
from upbringing.curriculum.launch import train
from upbringing.curriculum.sweep import SWEEP_FILE, parse_grid, parse_resources
from upbringing.yamlfile import FileError

ray = pytest.importorskip("ray")

CONFIG = tiny_two_stage(0)

GRID = ["--grid", "curriculum.teacher=sequential,direct"]


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(CONFIG)
    return path


@pytest.mark.slow
def test_a_sweep_runs_each_variant_as_train_would_and_resumes_when_interrupted(
    local_ray, tmp_path, config_path, capsys
):
    root = tmp_path / "sweep"
    assert main(["sweep", str(config_path), *GRID, "--run-dir", str(root)]) == 0
    out = capsys.readouterr().out
    record = json.loads((root / SWEEP_FILE).read_text())
    assert [r["variant"] for r in record["runs"]] == ["curriculum.teacher=sequential", "curriculum.teacher=direct"]
    assert [r["status"] for r in record["runs"]] == ["trained", "trained"]
    assert "curriculum.teacher=direct" in out and "direct (control)" in out  # the table and the comparison
    assert record["compare"]["groups"].keys() == {"sequential", "direct"}
    # Each run is the run `upbringing train CONFIG curriculum.teacher=direct` makes.
    direct = root / "curriculum.teacher=direct"
    config = load_config(config_path, ["curriculum.teacher=direct", "name=tiny-curriculum.teacher=direct"])
    alone, summary = train(config, tmp_path / "alone", progress=False)
    assert json.loads((direct / "summary.json").read_text()) == summary
    assert comparable(direct) == comparable(alone)

    # Interrupt the sequential run after its third chunk's checkpoint: no summary, no later checkpoint.
    sequential = root / "curriculum.teacher=sequential"
    finished = json.loads((sequential / "summary.json").read_text())
    full_events = comparable(sequential)
    (sequential / "summary.json").unlink()
    for later in sorted((sequential / "checkpoints").glob("chunk-*"))[1:]:
        shutil.rmtree(later)
    kept = sorted((sequential / "checkpoints").glob("chunk-*"))[-1].name
    (sequential / "checkpoints" / "latest.json").write_text(json.dumps({"checkpoint": kept}))
    direct_mtime = (direct / "summary.json").stat().st_mtime_ns

    assert main(["sweep", str(config_path), *GRID, "--run-dir", str(root)]) == 0
    record = json.loads((root / SWEEP_FILE).read_text())
    assert [r["status"] for r in record["runs"]] == ["resumed", "done before"]
    assert (direct / "summary.json").stat().st_mtime_ns == direct_mtime  # never retrained
    assert json.loads((sequential / "summary.json").read_text()) == finished
    assert comparable(sequential) == full_events  # nothing lost, nothing counted twice


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "curriculum.teachr=sequential,direct"], "curriculum.teachr: unknown key"),
        (["--grid", "curriculum.teacher=sequential,sequentail"], "(got 'sequentail')"),
        (["--grid", "curriculum.teacher"], "--grid: expected KEY=VALUE1,VALUE2,... (got 'curriculum.teacher')"),
        (["--grid", "seed=1,2", "--seeds", "0,1"], "--grid: seed is swept with --seeds"),
        (["--seeds", "0,x"], "--seeds: expected distinct non-negative integers"),
        (["--grid", "stages.0.levels.0.screen_width=3,9"], "screen_width must be an int in [2, 6], got 9"),
        ([], "nothing to sweep"),
    ],
)
def test_a_bad_grid_is_one_clear_line_before_anything_runs(tmp_path, config_path, capsys, monkeypatch, args, message):
    def no_ray(*_args, **_kw):
        raise AssertionError("Ray was joined before every variant was validated")

    monkeypatch.setattr("upbringing.curriculum.sweep.connect", no_ray)
    assert main(["sweep", str(config_path), *args, "--run-dir", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "s").exists()


def test_a_folder_holding_another_configs_run_is_refused(tmp_path, config_path):
    from upbringing.curriculum.sweep import plan

    other = tmp_path / "s" / "seed=0"
    other.mkdir(parents=True)
    (other / "config.yaml").write_text("name: other\n")
    with pytest.raises(FileError, match="holds a run of another config"):
        plan(config_path, [], [], ["0"], tmp_path / "s")


def test_grid_values_and_resources_parse():
    assert parse_grid(["stages.0.levels=[{n: 1},{n: 2}],[{n: 3}]", "seed=1"]) == [
        ("stages.0.levels", ["[{n: 1},{n: 2}]", "[{n: 3}]"]),
        ("seed", ["1"]),
    ]
    assert parse_resources(["CPU=2,gpu=0.5", "big_memory=1"]) == {
        "num_cpus": 2.0,
        "num_gpus": 0.5,
        "resources": {"big_memory": 1.0},
    }
    with pytest.raises(FileError, match="expected NAME=AMOUNT"):
        parse_resources(["CPU=two"])
