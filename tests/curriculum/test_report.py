"""The developmental report built from a real short run: HTML, PNG figures, W&B images."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from upbringing.curriculum.checks import load_config
from upbringing.curriculum.cli import main
from upbringing.curriculum.evaluation import evaluate_run_dir
from upbringing.curriculum.figures import FIGURES
from upbringing.curriculum.launch import train
from upbringing.curriculum.report import build_report
from upbringing.curriculum.tracking import wandb_files, wandb_history

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"
# The MoralChoice figure needs the moralchoice suite, which scores an LM agent's action distribution; this run's agent
# is the SB3 baseline, so the page says how to get it instead (the figure is tested in test_moralchoice_suite.py).
DRAWN = {stem: entry for stem, entry in FIGURES.items() if stem != "moralchoice"}

CONFIG = f"""\
extends: {ROOT / "configs" / "base.yaml"}
name: tiny-report
constitution: default
agent: {{n_steps: 64, batch_size: 64, n_epochs: 2}}
curriculum: {{chunk_steps: 256, n_envs: 4, review_fraction: 0.5}}
tracking: {{wandb: offline, sample_episodes: 0}}
stages:
  - name: reciprocity
    env: social/IteratedPDSolo-v0
    kwargs: {{opponents: [tit_for_tat]}}
    levels: [{{n_players: 2, horizon: 10}}]
    promotion: {{metric: return, threshold: 4.0, window: 6, min_episodes: 6}}
    budget: 512
    eval_episodes: 6
  - name: stories
    env: moral/Stories-v0
    levels: [{{level: 0}}, {{level: 1}}]
    promotion: {{threshold: 0.85, window: 6, min_episodes: 6}}
    budget: 768
    eval_episodes: 6
    feedback: {{mode: mix, budget: 30, segment_length: 4}}
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    path = root / "tiny.yaml"
    path.write_text(CONFIG)
    run_dir, _ = train(load_config(path), root / "run", progress=False)
    evaluate_run_dir(run_dir, ["heldout"], episodes=4, axelrod=False)
    return run_dir


@pytest.fixture(scope="module")
def page(run_dir):
    return build_report(run_dir)


@pytest.mark.slow
def test_report_has_every_figure_of_the_run(run_dir, page):
    assert page == run_dir / "report" / "index.html"
    text = page.read_text()
    for stem, (title, _) in DRAWN.items():
        png = page.parent / f"{stem}.png"
        assert png.read_bytes()[:8] == PNG and png.stat().st_size > 5_000, stem
        assert f"<img src='{stem}.png'" in text and title in text
    for stage in ("reciprocity", "stories"):
        assert f"<td>{stage}</td>" in text  # the summary table
    assert not (page.parent / "moralchoice.png").exists() and "--suite moralchoice --data CSV</code> first" in text
    assert "alignment stability" in text.lower() and "<td>do_no_harm</td>" in text
    assert "feedback (queries, reward-model accuracy)" in text and " of 30, " in text  # the stories stage's budget


@pytest.mark.slow
def test_figures_go_to_the_runs_wandb_run(run_dir, page):
    logged = {k for row in wandb_history(run_dir) for k in row}
    images = {k.removesuffix("/_type") for k in logged if k.startswith("report/") and k.endswith("/_type")}
    assert images == {f"report/{stem}" for stem in DRAWN}
    assert "eval/stories/score" in logged
    files = wandb_files(run_dir)
    assert len(files) == 2 and len({f.stem for f in files}) == 1  # the report resumed the training's W&B run


@pytest.mark.slow
def test_report_of_an_unfinished_run_says_what_is_missing(run_dir, tmp_path, capsys):
    partial = tmp_path / "partial"
    shutil.copytree(run_dir, partial, ignore=shutil.ignore_patterns("summary.json", "retention.json", "eval.json"))
    assert main(["report", str(partial), "--no-wandb"]) == 0
    assert capsys.readouterr().out.strip() == f"report: {partial / 'report' / 'index.html'}"
    text = (partial / "report" / "index.html").read_text()
    assert "has not finished" in text and "run <code>upbringing eval RUN_DIR</code> first" in text
    assert not (partial / "report" / "retention.png").exists()  # the copied report's stale figure is gone
    assert (partial / "report" / "learning_curves.png").exists()
    assert main(["report", str(tmp_path / "nowhere")]) == 1
    assert "run folder not found" in capsys.readouterr().err
