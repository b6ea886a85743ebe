"""The training runner end to end on a tiny env: run folder, events, W&B records, retention, exact resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.events import comparable
from helpers.toy_envs import TOY_ID, toy_spec
from upbringing.curriculum.checks import load_config
from upbringing.curriculum.launch import resume, train
from upbringing.curriculum.tracking import read_events, wandb_history
from upbringing.envs.registry import registered


@pytest.fixture(autouse=True, scope="module")
def _toy_env():
    """The toy env is registered only while this module's tests run (other tests list the real registry)."""
    with registered(toy_spec()):
        yield


ROOT = Path(__file__).resolve().parents[2]

CONFIG = f"""\
name: toy
seed: 5
agent: {{kind: sb3_ppo, n_steps: 32, batch_size: 32}}
curriculum: {{chunk_steps: 128, n_envs: 4, review_fraction: 0.3}}
tracking: {{wandb: offline, sample_episodes: 2}}
stages:
  - name: pairs
    env: {TOY_ID}
    promotion: {{threshold: 0.95, window: 40, min_episodes: 40}}
    budget: 4000
  - name: fives
    env: {TOY_ID}
    levels: [{{n: 4}}, {{n: 5}}]
    promotion: {{threshold: 0.95, window: 40, min_episodes: 40}}
    budget: 6000
    feedback:
      mode: mix
      weight: 0.5
      budget: 60
      segment_length: 1
      raters: [{{name: teacher, epsilon: 0.1, profile: {{pressed_wrong: -1.0}}}}]
      true_profile: {{pressed_wrong: -1.0}}
"""


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(CONFIG)
    return path


@pytest.mark.slow
def test_training_run_writes_a_complete_run_folder(tmp_path, config_path):
    run_dir, summary = train(load_config(config_path), tmp_path / "run", progress=False)
    assert {p.name for p in run_dir.iterdir()} >= {
        "config.yaml",
        "events.jsonl",
        "checkpoints",
        "summary.json",
        "retention.json",
        "wandb",
    }
    # the developmental summary: every stage, steps to mastery or not, final held-out score
    names = [s["name"] for s in summary["stages"]]
    assert names == ["pairs", "fives"]
    pairs = summary["stages"][0]
    assert pairs["mastered"] and 0 < pairs["steps_to_mastery"] <= 4000 and pairs["final_score"] >= 0.9
    # promotions and evaluations are logged with their evidence
    promotions = read_events(run_dir, "promotion")
    assert promotions[0]["stage"] == "pairs" and promotions[0]["evidence"]["mean"] >= 0.95
    assert promotions[0]["evidence"]["episodes"] == 40
    # retention matrix: a row after each finished stage, scores for it and every earlier stage
    retention = json.loads((run_dir / "retention.json").read_text())
    assert retention["after"][0] == "pairs" and retention["matrix"][0][1] is None
    # review chunks happened after the first promotion and did not spend the stage budget
    metrics = [r["metrics"] for r in read_events(run_dir, "metrics") if "curriculum/review" in r["metrics"]]
    assert any(m["curriculum/review"] == 1.0 for m in metrics)
    steps = [r["step"] for r in read_events(run_dir, "metrics")]
    assert steps == sorted(steps)
    # W&B offline run: metrics against the global env step, an episode table, the resolved config + git commit
    history = wandb_history(run_dir)
    assert any("eval/pairs/score" in row and row["global_step"] > 0 for row in history)
    assert any(k.startswith("eval/pairs/episodes") for row in history for k in row)
    assert any("train/reward_terms/env" in row for row in history)
    # simulated feedback on the second stage: queries asked, preferences saved, the learned term in the reward
    fives = summary["stages"][1]["feedback"]
    assert 0 < fives["queries_used"] <= 60
    assert (run_dir / "feedback" / "fives" / "preferences.jsonl").stat().st_size > 0
    assert any("train/reward_terms/feedback" in row for row in history)
    assert any("feedback/queries_used" in r["metrics"] for r in read_events(run_dir, "metrics"))
    tables = read_events(run_dir, "table")
    assert tables and tables[0]["rows"][0][4].startswith("Light")
    saved = (run_dir / "config.yaml").read_text()
    assert "name: toy" in saved


def test_same_seed_same_run_and_direct_control(tmp_path, config_path):
    overrides = ["stages.0.budget=512", "stages.1.budget=512", "tracking.wandb=off"]
    config = load_config(config_path, overrides)
    a, _ = train(config, tmp_path / "a", progress=False)
    b, _ = train(config, tmp_path / "b", progress=False)
    assert comparable(a) == comparable(b)
    direct = load_config(config_path, [*overrides, "curriculum.teacher=direct"])
    d, summary = train(direct, tmp_path / "d", progress=False)
    assert summary["stages"][0]["skipped"] and summary["stages"][0]["final_score"] is None
    levels = {r["metrics"]["curriculum/level"] for r in read_events(d, "metrics") if "curriculum/level" in r["metrics"]}
    assert levels == {1}  # the last stage's hardest level only


def test_existing_run_folder_is_refused(tmp_path, config_path):
    from upbringing.yamlfile import FileError

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "x").write_text("keep me")
    with pytest.raises(FileError, match="already exists"):
        train(load_config(config_path), tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "x").read_text() == "keep me"


LAUNCH = "import sys; from helpers.toy_envs import register_toy; register_toy(); from upbringing.curriculum.cli import main; sys.exit(main(sys.argv[1:]))"


def cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'tests'}{os.pathsep}{ROOT}", "WANDB_MODE": "offline"}
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCH, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw
    )


@pytest.mark.slow
def test_sigkilled_run_resumes_to_the_same_final_metrics(tmp_path, config_path):
    full = cli("train", str(config_path), "--run-dir", str(tmp_path / "full"), "--quiet")
    out, err = full.communicate(timeout=300)
    assert full.returncode == 0, err

    killed = cli("train", str(config_path), "--run-dir", str(tmp_path / "killed"), "--quiet")
    checkpoints = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 120
    while not (checkpoints / "chunk-000004").exists():  # mid-way through the first stage
        assert killed.poll() is None, "run finished before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "killed" / "summary.json").exists()

    resumed = cli("resume", str(tmp_path / "killed"), "--quiet")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "Developmental summary" in out
    full_summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert json.loads((tmp_path / "killed" / "summary.json").read_text()) == full_summary
    assert comparable(tmp_path / "killed") == comparable(tmp_path / "full")


def test_resume_refuses_non_run_folders_and_finished_runs(tmp_path, config_path):
    from upbringing.yamlfile import FileError

    with pytest.raises(FileError, match="not a run folder"):
        resume(tmp_path)
    run_dir, _ = train(
        load_config(config_path, ["stages.0.budget=128", "stages.1.budget=128", "tracking.wandb=off"]),
        tmp_path / "r",
        progress=False,
    )
    with pytest.raises(FileError, match="already finished"):
        resume(run_dir)


# ------------------------------------------------------------------------------ checkpoints that verify themselves
SMALL = ["stages.0.budget=512", "stages.1.budget=512", "tracking.wandb=off"]
KILLED_AFTER = 6  # chunks: the run dies just after its checkpoint chunk-000006, in the second (feedback) stage


class _Killed(Exception):
    """Stands in for SIGKILL: the run stops with no chance to clean up."""


@pytest.fixture(scope="module")
def killed_and_full(tmp_path_factory):
    """An uninterrupted run, and the same run killed after checkpoint ``KILLED_AFTER`` (kept as a template)."""
    from upbringing.curriculum.runner import Run

    root = tmp_path_factory.mktemp("damage")
    (root / "toy.yaml").write_text(CONFIG)
    config = load_config(root / "toy.yaml", SMALL)
    full, summary = train(config, root / "full", progress=False)
    original = Run.save_checkpoint

    def save_then_die(self):
        path = original(self)
        if self.state.chunk == KILLED_AFTER:
            self.tracker._events.close()
            raise _Killed
        return path

    Run.save_checkpoint = save_then_die
    try:
        with pytest.raises(_Killed):
            train(config, root / "killed", progress=False)
    finally:
        Run.save_checkpoint = original
    assert not (root / "killed" / "summary.json").exists()
    return root / "killed", full, summary


def _damage(checkpoint: Path, how: str) -> str:
    """Damage one checkpoint folder the way a full disk, a kill during a copy or a stray edit does; return the
    reason resume must give."""
    policy = checkpoint / "agent" / "policy.safetensors"
    if how == "truncated":
        data = policy.read_bytes()
        policy.write_bytes(data[: len(data) // 2])
        return f"agent/policy.safetensors is {len(data) // 2:,} bytes, {len(data):,} were written"
    if how == "corrupted":
        optimizer = checkpoint / "agent" / "optimizer.safetensors"
        data = bytearray(optimizer.read_bytes())
        data[len(data) // 2] ^= 0xFF
        optimizer.write_bytes(bytes(data))
        return "agent/optimizer.safetensors has changed since it was written (SHA-256 differs)"
    if how == "deleted":
        (checkpoint / "feedback" / "fives" / "feedback_state.json").unlink()
        return "feedback/fives/feedback_state.json is missing"
    if how == "no manifest":
        (checkpoint / "manifest.json").unlink()
        return "manifest.json is missing"
    if how == "empty engine":
        (checkpoint / "engine.json").write_text("")
        return "engine.json is 0 bytes"
    raise ValueError(how)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["truncated", "corrupted", "deleted", "no manifest", "empty engine"])
def test_resume_skips_a_damaged_checkpoint_and_ends_as_the_uninterrupted_run(tmp_path, killed_and_full, how):
    import shutil

    template, full, full_summary = killed_and_full
    run_dir = tmp_path / "killed"
    shutil.copytree(template, run_dir)
    newest = run_dir / "checkpoints" / f"chunk-{KILLED_AFTER:06d}"
    reason = _damage(newest, how)
    if how == "truncated":  # and the run started on another numpy: a warning, not an error
        versions = json.loads((run_dir / "versions.json").read_text())
        now, versions["packages"]["numpy"] = versions["packages"]["numpy"], "0.0.1"
        (run_dir / "versions.json").write_text(json.dumps(versions))
    said: list[str] = []
    summary = resume(run_dir, progress=False, say=said.append)
    if how == "truncated":
        assert said.pop(0) == f"warning: numpy {now} now, 0.0.1 when the run started"
    assert said[0].startswith(f"warning: skipping damaged checkpoint chunk-{KILLED_AFTER:06d}: {reason}"), said
    assert said[1:] == [f"resuming from chunk-{KILLED_AFTER - 1:06d}"]
    assert summary == full_summary
    assert json.loads((run_dir / "summary.json").read_text()) == full_summary
    assert comparable(run_dir) == comparable(full)


@pytest.mark.slow
def test_checkpoints_record_size_and_sha256_of_every_file(killed_and_full):
    import hashlib

    template, _, _ = killed_and_full
    checkpoint = template / "checkpoints" / f"chunk-{KILLED_AFTER:06d}"
    manifest = json.loads((checkpoint / "manifest.json").read_text())
    written = {p.relative_to(checkpoint).as_posix() for p in checkpoint.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == written - {"manifest.json"}
    for name, record in manifest["files"].items():
        data = (checkpoint / name).read_bytes()
        assert record == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@pytest.mark.slow
def test_no_intact_checkpoint_is_one_clear_error(tmp_path, killed_and_full, capsys):
    import shutil

    from upbringing.curriculum.cli import main

    template, _, _ = killed_and_full
    run_dir = tmp_path / "killed"
    shutil.copytree(template, run_dir)
    for checkpoint in (run_dir / "checkpoints").glob("chunk-*"):
        _damage(checkpoint, "truncated")
    assert main(["resume", str(run_dir), "--quiet"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(f"error: {run_dir}: no intact checkpoint to resume from (chunk-{KILLED_AFTER:06d}: ")
    assert "start the run again with `upbringing train`" in err[-1] and "Traceback" not in "\n".join(err)
    assert not (run_dir / "summary.json").exists()


@pytest.mark.slow
def test_resume_warns_of_each_package_whose_version_differs(tmp_path, killed_and_full):
    import shutil

    from upbringing.curriculum.tracking import installed_versions, version_changes

    template, _, _ = killed_and_full
    recorded = json.loads((template / "versions.json").read_text())
    assert recorded == installed_versions()
    for name in ("torch", "numpy", "gymnasium", "pydantic"):
        assert name in recorded["packages"]
    assert version_changes(template) == []
    run_dir = tmp_path / "killed"
    shutil.copytree(template, run_dir)
    recorded["packages"]["numpy"] = "0.0.1"
    recorded["packages"]["long-gone"] = "1.0"
    recorded["python"] = "3.0.0"
    (run_dir / "versions.json").write_text(json.dumps(recorded))
    now = installed_versions()
    assert version_changes(run_dir) == [
        f"python {now['python']} now, 3.0.0 when the run started",
        "long-gone not installed now, 1.0 when the run started",
        f"numpy {now['packages']['numpy']} now, 0.0.1 when the run started",
    ]
