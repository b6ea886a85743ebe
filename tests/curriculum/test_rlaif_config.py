"""configs/rlaif.yaml reaches the engine: the stories stage's feedback loop is labelled by its constitution."""

from __future__ import annotations

from pathlib import Path

from upbringing.constitutions import ConstitutionLabeler
from upbringing.curriculum.config import read_config
from upbringing.curriculum.runner import Run

ROOT = Path(__file__).resolve().parents[2]


def test_the_constitution_labels_the_stories_stage_and_raters_spot_check(tmp_path):
    config, _ = read_config(ROOT / "configs" / "rlaif.yaml", ["tracking.wandb=off"])
    run = Run(config, tmp_path, progress=False)
    stories = [s.name for s in config.stages].index("stories")
    assert [i for i, st in enumerate(run.stages) if st.feedback is not None] == [stories]
    loop, sc = run.stages[stories].feedback, run.stages[stories].constitution
    assert loop is not None and sc is not None
    oversight = loop.oversight
    assert oversight is not None and oversight.spot_check == 0.2
    labeler = oversight.judge.__self__
    assert isinstance(labeler, ConstitutionLabeler)
    assert labeler.rater == "constitution:default"
    assert {p.id for p in labeler.principles} == {p.id for p in sc.constitution.active(sc.context)}
