"""Text features: a language model embeds step texts and the reward model learns from them."""

from __future__ import annotations

import numpy as np
import pytest
from upbringing.feedback.config import RewardModelConfig
from upbringing.feedback.data import Segment
from upbringing.feedback.features import StepFeaturizer
from upbringing.feedback.raters import RaterConfig, SimulatedRater
from upbringing.feedback.reward_model import RewardEnsemble, pairwise_accuracy
from upbringing.feedback.text import LMEmbedder

pytestmark = pytest.mark.slow  # loading a language model takes several seconds


@pytest.fixture(scope="module")
def embedder() -> LMEmbedder:
    from upbringing.agents.lm.tiny import build_tiny

    return LMEmbedder.from_path(build_tiny())


def test_embeddings_are_deterministic_and_batch_independent(embedder):
    texts = ["You share the bread.", "You keep the bread.", ""]
    a = embedder(texts)
    assert a.shape == (3, embedder.dim) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_allclose(embedder(texts[:1])[0], a[0], rtol=1e-4, atol=1e-5)
    assert not np.allclose(a[0], a[1])


def test_reward_model_learns_a_preference_stated_only_in_text(embedder):
    # The numbers are identical; only the text says whether the agent shared or kept the bread.
    words = ["You share the bread with the hungry child.", "You keep all the bread for yourself."]
    rng = np.random.default_rng(0)

    def segment() -> Segment:
        kind = int(rng.integers(2))
        return Segment(obs=[[0.0]], actions=[0], rewards=[float(kind == 0)], texts=[words[kind]])

    featurizer = StepFeaturizer(obs_dim=1, embed=embedder, embed_dim=embedder.dim)
    rater = SimulatedRater(RaterConfig(), seed=0)
    pairs = [(segment(), segment()) for _ in range(80)]
    pairs = [(a, b) for a, b in pairs if a.texts != b.texts]
    labels = np.array([rater.compare(a, b) for a, b in pairs], dtype=np.float32)
    xa, ma = featurizer.batch([a for a, _ in pairs], 1)
    xb, mb = featurizer.batch([b for _, b in pairs], 1)
    model = RewardEnsemble(featurizer.dim, RewardModelConfig(ensemble_size=2, epochs=5, min_steps=50), seed=0)
    model.fit(xa, ma, xb, mb, labels)
    assert pairwise_accuracy(model.predict_proba(xa, ma, xb, mb).mean(0), labels) == 1.0
