"""Retention (CLEAR replay + behavioural cloning) on a two-stage toy where forgetting is the default."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers.toy_envs import SIGNALS_ID, signals_spec
from upbringing.agents.lm.config import LMConfig
from upbringing.agents.lm.policy import CausalLMPolicy
from upbringing.agents.lm.ppo import PPOTrainer
from upbringing.agents.replay import CloningSettings, ReplayBuffer, ReplaySample
from upbringing.curriculum.checkpoints import CHECKPOINTS
from upbringing.curriculum.checks import load_config
from upbringing.curriculum.launch import resume, train
from upbringing.curriculum.runner import RETENTION_FILE, SUMMARY_FILE
from upbringing.envs.registry import registered
from upbringing.yamlfile import FileError

CONFIG = f"""\
name: signals
seed: 1
agent: {{kind: lm, model: tiny, list_options: false, n_steps: 4, n_epochs: 4, minibatch_size: 32, lr_lm: 0.001}}
curriculum: {{chunk_steps: 128, n_envs: 8, review_fraction: 0.0}}
tracking: {{wandb: off, keep_checkpoints: 100}}
stages:
  - name: red
    env: {SIGNALS_ID}
    levels: [{{colour: red}}]
    promotion: {{threshold: 0.95, window: 20, min_episodes: 20}}
    budget: 1024
  - name: blue                # never promoted: trains on blue for its whole budget
    env: {SIGNALS_ID}
    levels: [{{colour: blue}}]
    promotion: {{threshold: 1.0, window: 1000, min_episodes: 1000}}
    budget: 512
"""


@pytest.fixture(autouse=True, scope="module")
def _signals_env():
    with registered(signals_spec()):
        yield


def run(tmp_path, method: str) -> tuple[list[list[float | None]], dict]:
    path = tmp_path / "signals.yaml"
    path.write_text(CONFIG)
    config = load_config(path, [f"curriculum.retention.method={method}"])
    run_dir, summary = train(config, tmp_path / method, progress=False)
    return json.loads((run_dir / RETENTION_FILE).read_text())["matrix"], summary


@pytest.mark.slow
def test_clear_keeps_a_stage_that_training_on_the_next_one_erases(tmp_path):
    forgot, summary = run(tmp_path, "none")
    assert summary["stages"][0]["mastered"]
    mastery = forgot[0][0]
    assert mastery >= 0.95
    assert forgot[-1][0] <= 0.5  # without retention, blue's training turned red's answer around

    kept, summary = run(tmp_path, "clear")
    assert kept[0][0] == mastery  # the same run up to the first promotion
    assert kept[-1][0] >= 0.9 * mastery
    assert summary["stages"][1]["final_score"] >= 0.9  # and blue was learned all the same

    # Exact resume with a stored replay buffer: continue from a checkpoint taken during blue's training.
    copy = tmp_path / "resumed"
    shutil.copytree(tmp_path / "clear", copy)
    (copy / SUMMARY_FILE).unlink()
    checkpoint = copy / CHECKPOINTS / "chunk-000002"
    assert (checkpoint / "replay.json").exists()
    (copy / CHECKPOINTS / "latest.json").write_text(json.dumps({"checkpoint": checkpoint.name}))
    for later in sorted((copy / CHECKPOINTS).glob("chunk-*"))[3:]:
        shutil.rmtree(later)
    assert resume(copy, progress=False) == summary
    assert json.loads((copy / RETENTION_FILE).read_text())["matrix"] == kept


def test_clear_needs_a_language_model_agent(tmp_path):
    path = tmp_path / "c.yaml"
    lm = CONFIG.splitlines()[2]
    path.write_text(CONFIG.replace(lm, "agent: {kind: sb3_ppo, n_steps: 16, batch_size: 32}"))
    load_config(path)  # the default, method none, suits any agent
    with pytest.raises(FileError, match=r"retention\.method clear needs agent\.kind lm"):
        load_config(path, ["curriculum.retention.method=clear"])


def test_cloning_handles_stages_with_different_numbers_of_actions():
    config = LMConfig(list_options=False)
    trainer = PPOTrainer(CausalLMPolicy(config, seed=0), config)
    buffer = ReplayBuffer(capacity=4)
    buffer.store("two", [ReplaySample("Now: a\nYou choose:", ("x", "y"), (True, True), (0.9, 0.1), 0.5)])
    buffer.store(
        "three", [ReplaySample("Now: b\nYou choose:", ("x", "y", "z"), (True, False, True), (0.2, 0.0, 0.8), 1.0)]
    )
    samples = buffer.sample(8, np.random.default_rng(0))
    assert {len(s.actions) for s in samples} == {2, 3}
    metrics = trainer._clone(samples, CloningSettings())
    assert metrics["bc_loss"] > 0 and metrics["value_clone_loss"] > 0
    grads = [p.grad for p in trainer.params if p.grad is not None]
    assert grads and all(bool(g.isfinite().all()) for g in grads)
