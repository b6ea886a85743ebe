"""What `upbringing check` and `train` say before training an LM agent: prompt budgets, models, devices."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from upbringing.curriculum.checks import load_config
from upbringing.curriculum.cli import main
from upbringing.curriculum.preflight import config_warnings, prompt_budget_warnings
from upbringing.yamlfile import FileError

QUICKSTART = Path(__file__).resolve().parents[2] / "configs" / "quickstart.yaml"


@pytest.mark.slow  # samples episodes of every stage twice: about 10 s
def test_stages_whose_prompts_exceed_the_budget_are_named_once_each():
    config = load_config(QUICKSTART, ["agent.max_prompt_tokens=60"])
    lines = prompt_budget_warnings(config)
    assert lines and all("agent.max_prompt_tokens is 60" in line for line in lines)
    assert len({line.split(":")[0] for line in lines}) == len(lines)  # one line per stage
    assert any("(stories)" in line for line in lines)
    assert prompt_budget_warnings(load_config(QUICKSTART)) == []  # the default budget fits the shipped envs


def test_check_warns_but_passes_and_bad_models_fail_in_one_line(tmp_path, capsys):
    slow = tmp_path / "bf16.yaml"
    slow.write_text(f"extends: {QUICKSTART}\nagent: {{kind: lm, model: tiny, dtype: bfloat16, device: cpu}}\n")
    assert "agent.dtype: bfloat16 on a CPU" in config_warnings(load_config(slow), prompts=False)[0]
    assert main(["check", str(slow)]) == 0
    assert "warning: agent.dtype" in capsys.readouterr().err
    typo = tmp_path / "typo.yaml"
    typo.write_text(f"extends: {QUICKSTART}\nagent:\n  kind: lm\n  model: ./models/smollm2-135m-instruc\n")
    with pytest.raises(FileError) as err:
        load_config(typo)
    assert [str(p) for p in err.value.problems] == [
        f"{typo}:4: agent.model: ./models/smollm2-135m-instruc: no such model folder (and not a pulled model: see "
        "`upbringing models list`)"
    ]
    assert main(["check", str(typo)]) == 1
    if torch.version.cuda is None:
        cuda = tmp_path / "cuda.yaml"
        cuda.write_text(f"extends: {QUICKSTART}\nagent: {{kind: lm, model: tiny, device: cuda}}\n")
        assert main(["check", str(cuda)]) == 1
        err_text = capsys.readouterr().err.strip().splitlines()
        assert len(err_text) == 2 and "agent.device: cuda, but this torch build" in err_text[-1]
