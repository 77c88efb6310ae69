import math

import pytest

from corpusforge.document import Document
from corpusforge.recipe import Recipe
from tests.conftest import SHARED_DATA
from tests.models.tiny import word_tokenizer

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def wikitext_paragraphs(n: int) -> list[str]:
    """The first ``n`` long body paragraphs of the shared WikiText-2 validation split."""
    lines = (SHARED_DATA / "wikitext-2" / "valid.txt").read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if len(ln.split()) > 40 and not ln.strip().startswith("=")][:n]


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    """A 2-layer GPT-2 with random weights and a word vocabulary from WikiText-2."""
    from transformers import GPT2Config, GPT2LMHeadModel

    path = tmp_path_factory.mktemp("tiny_gpt2")
    tok = word_tokenizer(path, wikitext_paragraphs(50))
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=2, n_head=2,
                        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                        bos_token_id=tok.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(path)
    return path


def reference_perplexity(path, text: str, max_length: int) -> float:
    """exp(mean NLL) of ``text`` alone (no padding), computed with the model's own loss."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    enc = tok([text], truncation=True, max_length=max_length, return_tensors="pt")
    with torch.inference_mode():
        return math.exp(model(**enc, labels=enc["input_ids"]).loss.item())


def test_batched_perplexity_equals_the_unpadded_model_loss(tiny_gpt2):
    from corpusforge.models.perplexity import Perplexity

    texts = wikitext_paragraphs(6)
    texts[1] = " ".join(texts[1].split()[:12])  # a short one, so the batch pads
    docs = [Document(t, id=str(i), source="wikitext") for i, t in enumerate(texts)]
    step = Perplexity(model_path=str(tiny_gpt2), max_length=64, batch_size=4, drop=False)
    got = step.scores(docs)
    for text, ppl in zip(texts, got, strict=True):
        assert ppl == pytest.approx(reference_perplexity(tiny_gpt2, text, 64), rel=1e-4)


def test_thresholds_drop_with_named_reasons_and_record_the_score(tiny_gpt2):
    from corpusforge.models.perplexity import Perplexity

    text = wikitext_paragraphs(1)[0]
    ppl = reference_perplexity(tiny_gpt2, text, 64)
    d = Document(text, id="a", source="t")
    assert Perplexity(model_path=str(tiny_gpt2), max_length=64, max_perplexity=ppl * 0.9).keep(d) == "high_perplexity"
    assert d.metadata["perplexity"] == pytest.approx(ppl, rel=1e-4)
    assert Perplexity(model_path=str(tiny_gpt2), max_length=64, min_perplexity=ppl * 1.1).keep(d) == "low_perplexity"
    assert Perplexity(model_path=str(tiny_gpt2), max_length=64, max_perplexity=ppl * 1.1,
                      min_perplexity=ppl * 0.9).keep(d) is None


def test_perplexity_options_are_validated_and_a_bad_path_names_it(tmp_path):
    from corpusforge.models.perplexity import Perplexity

    with pytest.raises(ValueError, match="min_perplexity"):
        Perplexity(model_path="x", min_perplexity=10, max_perplexity=5)
    with pytest.raises(ValueError, match=str(tmp_path)):
        Perplexity(model_path=str(tmp_path)).keep(Document("some text here", id="a", source="t"))


@pytest.fixture(scope="module")
def tiny_classifiers(tmp_path_factory):
    """A 1-output (FineWeb-Edu style regression) and a 2-label BERT classifier, random weights."""
    from transformers import BertConfig, BertForSequenceClassification

    out = {}
    for name, n in (("edu", 1), ("quality", 2)):
        path = tmp_path_factory.mktemp(f"tiny_{name}")
        tok = word_tokenizer(path, wikitext_paragraphs(50))
        torch.manual_seed(1)
        kw = {"id2label": {0: "low", 1: "high"}, "label2id": {"low": 0, "high": 1}} if n == 2 else {}
        config = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=32, max_position_embeddings=128, num_labels=n,
                            pad_token_id=tok.pad_token_id, **kw)
        BertForSequenceClassification(config).save_pretrained(path)
        out[name] = path
    return out


def model_outputs(path, texts: list[str]):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    with torch.inference_mode():
        return [model(**tok([t], truncation=True, max_length=64, return_tensors="pt")).logits[0] for t in texts]


def test_regression_classifier_scores_raw_output_and_thresholds(tiny_classifiers):
    from corpusforge.models.classify import Classifier

    texts = wikitext_paragraphs(5)
    expected = [float(lg[0]) for lg in model_outputs(tiny_classifiers["edu"], texts)]
    cut = sorted(expected)[2]
    step = Classifier(model_path=str(tiny_classifiers["edu"]), threshold=cut, max_length=64, batch_size=2,
                      key="edu_score")
    docs = [Document(t, id=str(i), source="t") for i, t in enumerate(texts)]
    reasons = [step.keep(d) for d in docs]
    assert [d.metadata["edu_score"] for d in docs] == pytest.approx(expected, abs=1e-4)
    assert reasons == [None if e >= cut else "below_threshold" for e in expected]
    assert reasons.count(None) == 3


def test_multiclass_classifier_uses_the_named_label_probability(tiny_classifiers):
    from corpusforge.models.classify import Classifier

    text = wikitext_paragraphs(1)[0]
    expected = torch.softmax(model_outputs(tiny_classifiers["quality"], [text])[0], -1)[1].item()
    d = Document(text, id="a", source="t")
    assert Classifier(model_path=str(tiny_classifiers["quality"]), label="high", max_length=64).keep(d) is None
    assert d.metadata["classifier_score"] == pytest.approx(expected, abs=1e-4)
    with pytest.raises(ValueError, match="name one with label"):
        Classifier(model_path=str(tiny_classifiers["quality"])).keep(d)


def test_steps_build_from_a_recipe(tiny_gpt2, tiny_classifiers):
    ppl, clf = Recipe.model_validate({"sources": [{"path": "."}], "steps": [
        {"type": "perplexity", "model_path": str(tiny_gpt2), "max_perplexity": 1000.0},
        {"type": "classifier", "model_path": str(tiny_classifiers["edu"]), "threshold": 3.0},
    ]}).build_steps()
    assert (type(ppl).__name__, ppl.max_perplexity) == ("Perplexity", 1000.0)
    assert (type(clf).__name__, clf.threshold) == ("Classifier", 3.0)


def test_documented_recipe_runs(tmp_path, tiny_gpt2, tiny_classifiers):
    import re
    from pathlib import Path

    import yaml

    from corpusforge import run

    doc = Path(__file__).resolve().parents[2] / "docs" / "models.md"
    recipe = yaml.safe_load(re.search(r"```yaml\n(.*?)```", doc.read_text(encoding="utf-8"), re.S).group(1))
    recipe["sources"][0]["path"] = str(SHARED_DATA / "html" / "scrapinghub")
    recipe["steps"][0]["model_path"] = str(tiny_gpt2)
    recipe["steps"][1]["model_path"] = str(tiny_classifiers["edu"])
    recipe["steps"][1]["threshold"] = -1e9
    stats = run(recipe, output=str(tmp_path / "out"), workers=1)
    steps = {s["name"]: s for stage in stats["stages"] for s in stage.get("steps", [])}
    assert steps["perplexity"]["docs_in"] == 20
    assert steps["perplexity"]["drops"] == {}
    assert steps["classifier"]["docs_in"] == 20


def test_classifier_keep_top_fraction_keeps_the_highest_scores_of_all_tasks(tiny_classifiers, tmp_path):
    from corpusforge.models.classify import Classifier
    from tests.models.test_top_fraction import run_corpus_step

    texts = wikitext_paragraphs(5)
    expected = [float(lg[0]) for lg in model_outputs(tiny_classifiers["edu"], texts)]
    docs = [Document(t, id=str(i), source="t") for i, t in enumerate(texts)]
    step = Classifier(model_path=str(tiny_classifiers["edu"]), max_length=64, key="edu", keep_top_fraction=0.4)
    removed = run_corpus_step(step, [docs[:3], docs[3:]], tmp_path)
    kept = [d.id for t, part in enumerate([docs[:3], docs[3:]]) for r, d in enumerate(part) if r not in removed[t]]
    assert sorted(kept) == sorted(str(i) for i in sorted(range(5), key=lambda i: -expected[i])[:2])
    assert [d.metadata["edu"] for d in docs] == pytest.approx(expected, abs=1e-4)
