"""The pretrained-model benchmark's options: the LoRA part's settings, their checks, the config they make, and its
summary over seeds (no model is loaded here)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _benchmarks_importable(monkeypatch):
    # benchmarks/ runs as `python -m benchmarks` from the root; it is no subpackage of upbringing
    monkeypatch.syspath_prepend(str(ROOT))


def _settings(argv):
    import argparse

    from benchmarks.pretrained import lora_settings, parser

    p: argparse.ArgumentParser = parser()
    return lora_settings(p, p.parse_args(argv))


def test_lora_options_reach_the_settings_and_the_agent_config():
    from benchmarks.pretrained import _quickstart

    settings, seeds = _settings(
        [
            "--lora-stage",
            "reciprocity",
            "--lora-prompt",
            "listed",
            "--lora-minutes",
            "3",
            "--lora-max-updates",
            "2",
            "--lora-seeds",
            "4,5",
            "--lora-steps",
            "4",
            "--lora-lr",
            "5e-4",
            "--lora-epochs",
            "3",
            "--lora-minibatch",
            "8",
        ]
    )
    assert seeds == [4, 5]
    assert (settings.stage, settings.prompt, settings.minutes, settings.max_updates) == ("reciprocity", "listed", 3, 2)
    # the overrides are real config keys: the quickstart config takes them and carries every value
    agent = _quickstart("tiny", **settings.agent()).agent
    assert agent.lora.enabled and agent.list_options and agent.prompt_format == "auto"
    assert (agent.n_steps, agent.lr_lm, agent.n_epochs, agent.minibatch_size) == (4, 5e-4, 3, 8)


def test_lora_defaults_are_the_quickstart_prompt_on_stories_over_three_seeds():
    from benchmarks.pretrained import _quickstart

    settings, seeds = _settings([])
    assert seeds == [0, 1, 2] and settings.stage == "stories" and settings.max_updates is None
    agent = _quickstart("tiny", **settings.agent()).agent
    assert not agent.list_options and agent.prompt_format == "plain" and agent.lora.enabled


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lora-seeds", "0,x"], "--lora-seeds: expected comma-separated integers, got '0,x'"),
        (["--lora-minutes", "0"], "--lora-minutes: expected a positive number, got 0.0"),
        (["--lora-steps", "0"], "--lora-steps: expected a positive integer, got 0"),
        (["--lora-max-updates", "-1"], "--lora-max-updates: expected a positive integer, got -1"),
        (["--lora-stage", "support"], "--lora-stage: invalid choice: 'support'"),
        (["--parts", "lora,gpu"], "--parts: unknown part(s) gpu; expected some of rss,mfu,zeroshot,lora"),
    ],
)
def test_bad_options_are_one_error_line(argv, message, capsys):
    from benchmarks.pretrained import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_summary_pairs_seeds_and_gives_intervals():
    from benchmarks.pretrained import LoraSettings, summarize_lora

    def seed(before, after):
        return {
            "before": {"success": 1.0, "compliance": before, "return": 0.0},
            "after": {"success": 1.0, "compliance": after, "return": 0.0},
        }

    out = summarize_lora([seed(0.5, 0.7), seed(0.4, 0.7), seed(0.6, 0.7)], LoraSettings(), 10)
    assert out["compliance"]["before"]["mean"] == pytest.approx(0.5)
    after = out["compliance"]["after"]
    assert after["n"] == 3 and [after[k] for k in ("mean", "low", "high")] == pytest.approx([0.7] * 3)
    gain = out["compliance"]["gain"]
    assert gain["mean"] == pytest.approx(0.2) and gain["low"] < 0.2 < gain["high"]
    assert out["settings"]["lr"] == LoraSettings().lr and out["episodes"] == 10
