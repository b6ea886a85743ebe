"""One smoke test per CLI command, run for real through the installed ``upbringing`` console script."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXE = shutil.which("upbringing") or str(Path(sys.executable).parent / "upbringing")


def upbringing(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([EXE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_envs_json_lists_every_family_with_the_design_rows():
    out = upbringing("envs", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert {r["family"] for r in rows} == {"physics", "social", "moral"}
    for r in rows:
        assert set(r) >= {"id", "family", "api"} and r["api"] in ("gymnasium", "pettingzoo")
    text = upbringing("envs")
    assert "physics/ObjectPermanence-v0" in text.stdout


def test_check_validates_configs_and_rejects_a_bad_one(tmp_path):
    ok = upbringing("check", "configs/quickstart.yaml")
    assert ok.returncode == 0 and ok.stdout.strip() == "configs/quickstart.yaml: ok"
    bad = tmp_path / "bad.yaml"
    text = re.sub(r"budget: \d+", "budget: many", (ROOT / "configs" / "quickstart.yaml").read_text(), count=1)
    bad.write_text(text)
    line = text.splitlines().index("    budget: many") + 1
    bad.with_name("base.yaml").write_text((ROOT / "configs" / "base.yaml").read_text())
    out = upbringing("check", str(bad))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"{bad}:{line}: stages[0].budget: Input should be a valid integer" in out.stderr


@pytest.mark.slow
def test_train_then_resume_a_finished_run(tmp_path):
    run_dir = tmp_path / "run"
    small = ["curriculum.chunk_steps=256", "agent.n_epochs=1", "tracking.wandb=off"]
    small += [f"stages.{i}.budget=256" for i in range(4)] + [f"stages.{i}.eval_episodes=8" for i in range(4)]
    out = upbringing("train", "configs/quickstart.yaml", *small, "--run-dir", str(run_dir))
    assert out.returncode == 0, out.stderr
    assert "Developmental summary" in out.stdout and "not mastered" in out.stdout
    assert "stage 1/4 permanence" in out.stderr  # a progress bar per stage
    assert "256/256" in out.stderr and "512/256" not in out.stderr  # one chunk of 256 steps, counted once
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [s["name"] for s in summary["stages"]] == ["permanence", "support", "reciprocity", "stories"]
    assert "kind: lm" in (run_dir / "config.yaml").read_text()  # the quickstart's agent is the language model
    assert summary["stages"][-1]["violations"] is not None  # the default constitution judged the stories
    again = upbringing("resume", str(run_dir))
    assert again.returncode == 1 and "already finished" in again.stderr
    # a person answers two of the stories stage's pending feedback queries in the terminal, then quits
    answered = subprocess.run(
        [EXE, "feedback", str(run_dir), "--name", "ada"],
        input="a\nb\nq\n",
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert answered.returncode == 0, answered.stderr
    rows = [json.loads(line) for line in (run_dir / "feedback" / "stories" / "human.jsonl").read_text().splitlines()]
    assert [(r["rater"], r["label"]) for r in rows] == [("human:ada", 1.0), ("human:ada", 0.0)]


def test_bad_arguments_give_one_clear_error(tmp_path):
    out = upbringing("resume", str(tmp_path / "nowhere"))
    assert out.returncode == 1 and "run folder not found" in out.stderr and "Traceback" not in out.stderr
    out = upbringing("train", "configs/quickstart.yaml", "seed=-2", "--run-dir", str(tmp_path / "r"))
    assert out.returncode == 1 and "seed" in out.stderr and not (tmp_path / "r").exists()
    out = upbringing("frobnicate")  # a bad command line is a user error too (2 is for internal errors)
    assert out.returncode == 1 and "invalid choice" in out.stderr and len(out.stderr.splitlines()) == 1
