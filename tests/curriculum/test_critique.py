"""The critique-and-revision phase: it moves an LM agent's action distribution toward compliant actions, records
what it did, is the same on every rerun, and a resumed run neither reruns nor loses it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from upbringing import envs
from upbringing.agents.lm.agent import LMAgent
from upbringing.agents.lm.config import LMConfig
from upbringing.constitutions import Context, load_constitution
from upbringing.curriculum.checkpoints import CHECKPOINTS
from upbringing.curriculum.checks import load_config
from upbringing.curriculum.config import CritiqueConfig
from upbringing.curriculum.critique import PHASE_DIR, Critic, preview, run_phase
from upbringing.curriculum.launch import resume, train
from upbringing.curriculum.runner import SUMMARY_FILE
from upbringing.curriculum.tracking import read_events
from upbringing.envs.moral.generator import TRAIN_FAMILIES

ENV = "moral/Stories-v0"
CONSTITUTION = load_constitution("default")
CONTEXT = Context.for_env(ENV, stage="stories")
LM = LMConfig(model="tiny", list_options=False, n_steps=16, n_epochs=2, minibatch_size=32, lr_lm=1e-3)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Stage:
    name = "stories"
    env = ENV


def dilemmas(n: int = 48) -> list:
    """Fresh training-family dilemma scenes (the step where a choice can break a principle), as envs at that step."""
    out = []
    for seed in range(10_000, 10_000 + n):
        env = envs.make(ENV, level=0, families=list(TRAIN_FAMILIES))
        env.reset(seed=seed)
        env.step(0)  # every intro choice leads to the dilemma
        out.append(env)
    return out


def violating_mass(agent: LMAgent, scenes: list) -> float:
    """The policy's mean probability of actions some hard or soft principle would criticise, over ``scenes``."""
    critic = Critic(CONSTITUTION, CONTEXT)
    infos = [s.unwrapped._info({}) for s in scenes]
    probs = agent.action_probabilities(np.zeros((len(scenes), 1)), infos)
    mass = []
    for env, info, p in zip(scenes, infos, probs):
        bad = [
            k
            for k, ok in enumerate(info["action_mask"])
            if ok and critic.violations(preview(env, k), info["text"], info["action_texts"][k])
        ]
        mass.append(float(p[bad].sum()))
    return float(np.mean(mass))


def play_phase(config, agent, seed, run_dir):
    """The phase on the stories stage's level 0 with 4 envs, under the default constitution."""
    return run_phase(
        config,
        agent,
        Stage,
        {"level": 0},
        CONSTITUTION,
        CONTEXT,
        n_envs=4,
        run_seed=seed,
        stage_index=0,
        run_dir=run_dir,
    )


def phase(tmp_path, seed: int = 0, **overrides):
    agent = LMAgent(LM, seed=seed)
    config = CritiqueConfig(steps=160, epochs=4, lr=1e-3, minibatch_size=16, **overrides)
    return agent, play_phase(config, agent, seed, tmp_path)


def test_the_phase_moves_the_policy_toward_compliant_actions(tmp_path):
    scenes = dilemmas()
    untrained = LMAgent(LM, seed=0)
    before = violating_mass(untrained, scenes)
    agent, result = phase(tmp_path)
    after = violating_mass(agent, scenes)
    m = result.metrics
    assert result.steps == 160 and m["critique/proposals"] == 160
    assert m["critique/revisions"] > 0 and m["critique/pairs"] == m["critique/revisions"]
    assert m["critique/revision_violates_share"] < 0.2
    assert m["critique/fit/target_prob_after"] > m["critique/fit/target_prob_before"]
    # on unseen training-family dilemmas the probability of criticised actions falls (0.42 -> 0.22 when written)
    assert before > 0.2 and after < 0.7 * before, (before, after)
    rows = [json.loads(line) for line in (tmp_path / PHASE_DIR / "stories.jsonl").read_text().splitlines()]
    assert len(rows) == 160
    revised = [r for r in rows if r["critiques"]]
    assert revised and all(r["revision"] != r["proposal"] and not r["revision_violates"] for r in revised)
    assert all("breaks the principle" in c for r in revised for c in r["critiques"])
    assert (tmp_path / PHASE_DIR / "stories" / "after" / "weights.safetensors").exists()


def test_the_phase_is_the_same_on_every_rerun(tmp_path):
    a, ra = phase(tmp_path / "a", seed=3)
    b, rb = phase(tmp_path / "b", seed=3)
    assert ra.rows == rb.rows and ra.metrics == rb.metrics
    for (name, x), (_, y) in zip(a.policy.trainable_state().items(), b.policy.trainable_state().items()):
        assert torch.equal(x, y), name


def test_only_the_configured_tiers_critique(tmp_path):
    _, hard_only = phase(tmp_path, tiers=["hard"])
    hard = {p.id for p in CONSTITUTION.hard(CONTEXT)}
    judged = {v for r in hard_only.rows for j in r["judged"] for v in j["violations"]}
    assert judged and judged <= hard


CONFIG = """\
extends: {root}/configs/critique.yaml
agent: {{n_steps: 16, n_epochs: 1, minibatch_size: 32}}
curriculum: {{chunk_steps: 128, n_envs: 4}}
tracking: {{wandb: off, checkpoint_every: 1, keep_checkpoints: 10}}
stages:
  - name: stories
    env: moral/Stories-v0
    levels: [{{level: 0}}]
    promotion: {{metric: success, threshold: 1.0, window: 1000, min_episodes: 1000}}
    budget: 512
    eval_episodes: 4
    critique: {{steps: 128, epochs: 1, minibatch_size: 16}}
"""


@pytest.mark.slow
def test_a_run_with_the_phase_resumes_without_rerunning_it(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(root=root))
    config = load_config(path)
    run_dir, summary = train(config, tmp_path / "full", progress=False)
    assert summary["global_step"] == 512  # the phase's 128 steps came out of the stage's budget of 512
    events = read_events(run_dir)
    phases = [e for e in events if e["kind"] == "metrics" and "critique/proposals" in e["metrics"]]
    assert len(phases) == 1 and phases[0]["step"] == 128

    # interrupted after the first RL chunk: resume from that checkpoint
    cut = tmp_path / "cut"
    shutil.copytree(run_dir, cut)
    (cut / SUMMARY_FILE).unlink()
    for ckpt in sorted((cut / CHECKPOINTS).glob("chunk-*"))[1:]:
        shutil.rmtree(ckpt)
    first = sorted((cut / CHECKPOINTS).glob("chunk-*"))[0].name
    (cut / CHECKPOINTS / "latest.json").write_text(json.dumps({"checkpoint": first}))
    record = (cut / PHASE_DIR / "stories.jsonl").read_text()
    resumed = resume(cut, progress=False)
    assert resumed == json.loads((run_dir / SUMMARY_FILE).read_text())
    assert (cut / PHASE_DIR / "stories.jsonl").read_text() == record
    again = [e for e in read_events(cut) if e["kind"] == "metrics" and "critique/proposals" in e["metrics"]]
    assert len(again) == 1  # not rerun


@pytest.mark.slow
@pytest.mark.parametrize(
    "change",
    [
        {"steps": 40},
        {"keep_unrevised": True},
        {"epochs": 2},
        {"lr": 3e-3},
        {"minibatch_size": 4},  # 6 revisions: two minibatches instead of one
    ],
)
def test_every_critique_key_changes_the_phase(tmp_path, change):
    base = {"steps": 48, "rounds": 2, "epochs": 1, "lr": 1e-3, "minibatch_size": 16}

    def run(settings, where):
        agent = LMAgent(LM, seed=1)
        result = play_phase(CritiqueConfig(**settings), agent, 1, tmp_path / where)
        return result, agent.policy.trainable_state()

    ref, ref_weights = run(base, "base")
    out, weights = run({**base, **change}, "changed")
    same_weights = all(torch.equal(ref_weights[k], weights[k]) for k in ref_weights)
    assert out.rows != ref.rows or out.metrics != ref.metrics or not same_weights
    assert not same_weights or "steps" in change or "rounds" in change


def test_anchored_revisions_join_the_replay_buffer_that_ppo_clones(tmp_path):
    from upbringing.curriculum.retention import Retention, RetentionConfig

    agent = LMAgent(LM, seed=2)
    retention = Retention(RetentionConfig(method="clear"), agent, seed=2)
    config = CritiqueConfig(steps=64, epochs=1, minibatch_size=16, anchor=True)
    result = play_phase(config, agent, 2, tmp_path)
    stored = retention.buffer.stages["critique:stories"]
    assert len(stored) == result.metrics["critique/pairs"] == result.metrics["critique/anchored"] > 0
    revised = [r for r in result.rows if r["critiques"] and not r["revision_violates"]]
    assert [s.actions[s.probs.index(1.0)] for s in stored] == [r["revision"] for r in revised]
    assert all(sorted(s.probs)[-1] == 1.0 and sum(s.probs) == 1.0 for s in stored)


def test_anchor_needs_clear_retention(tmp_path):
    from pathlib import Path

    from upbringing.yamlfile import FileError

    root = Path(__file__).resolve().parents[2]
    with pytest.raises(FileError) as info:
        load_config(root / "configs" / "critique_anchor.yaml", ["curriculum.retention.method=none"])
    assert "critique.anchor keeps the revisions in the replay buffer" in str(info.value.problems[0])
