import gzip
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from corpusforge.document import Document
from corpusforge.models.arpa import ArpaModel, KenLMModel, load_ngram, train_arpa
from corpusforge.models.perplexity import Perplexity
from tests.conftest import SHARED_DATA

ARPA = """\\data\\
ngram 1=5
ngram 2=3

\\1-grams:
-1.0\t<s>\t-0.5
-0.5\ta\t-0.3
-0.7\tb
-0.6\t</s>
-2.0\t<unk>

\\2-grams:
-0.2\t<s> a
-0.1\ta b
-0.4\tb </s>

\\end\\
"""
WIKI = SHARED_DATA / "wikitext-2"


@pytest.fixture
def arpa(tmp_path):
    path = tmp_path / "tiny.arpa"
    path.write_text(ARPA, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def wiki_arpa(tmp_path_factory):
    """A 3-gram Kneser-Ney model of 1500 lines of WikiText-2 test.txt, and 60 valid.txt paragraphs."""
    train = [ln for ln in (WIKI / "test.txt").read_text(encoding="utf-8").splitlines() if ln.strip()][:1500]
    path = train_arpa(train, tmp_path_factory.mktemp("lm") / "wiki3.arpa", order=3)
    paras = [p for p in (WIKI / "valid.txt").read_text(encoding="utf-8").split("\n \n") if len(p.split()) > 20]
    return path, paras[:60]


def backend_model(path, backend):
    if backend == "kenlm":
        pytest.importorskip("kenlm")
    return load_ngram(path, backend)


@pytest.mark.parametrize("backend", ["python", "kenlm"])
def test_seen_bigrams_and_back_off_are_scored_as_katz(arpa, backend):
    lm = backend_model(arpa, backend)
    assert lm.order == 2
    # a b: p(a|<s>) p(b|a) p(</s>|b)
    assert lm.perplexities(["a b"])[0] == pytest.approx(10 ** ((0.2 + 0.1 + 0.4) / 3), rel=1e-6)
    # b|<s>: bo(<s>) + p(b); a|b: bo(b)=0 + p(a); </s>|a: bo(a) + p(</s>); zebra is <unk>
    assert lm.perplexities(["b a"])[0] == pytest.approx(10 ** ((1.2 + 0.5 + 0.9) / 3), rel=1e-6)
    assert lm.perplexities(["zebra"])[0] == pytest.approx(10 ** ((2.5 + 0.6) / 2), rel=1e-6)


def test_document_perplexity_is_per_line_as_ccnet(arpa):
    lm = ArpaModel(arpa)
    assert lm.sentence_log10(["a", "b"]) == pytest.approx(-0.7)
    assert lm.perplexity("a b\n\nb a") == pytest.approx(10 ** ((0.7 + 2.6) / 6))
    assert lm.perplexities(["   \n", "a b", ""]) == [float("inf"), pytest.approx(10 ** (0.7 / 3)), float("inf")]


def test_perplexity_step_takes_an_arpa_path(arpa):
    good, odd = Document("a b", id="g", source="t"), Document("b a", id="o", source="t")
    step = Perplexity(model_path=str(arpa), max_perplexity=2.0, ngram_backend="python")
    assert step.keep(good) is None
    assert step.keep(odd) == "high_perplexity"
    assert good.metadata["perplexity"] == pytest.approx(10 ** (0.7 / 3), abs=1e-4)


def test_space_separated_and_gzipped_arpa_read_the_same(arpa, tmp_path):
    spaced = tmp_path / "spaced.arpa"
    spaced.write_text(ARPA.replace("\t", "   ").replace("\n", " \r\n"), encoding="utf-8")
    packed = tmp_path / "tiny.arpa.gz"
    packed.write_bytes(gzip.compress(ARPA.encode()))
    texts = ["a b", "b a\na a b", "zebra b"]
    want = ArpaModel(arpa).perplexities(texts)
    assert ArpaModel(spaced).perplexities(texts) == pytest.approx(want, rel=1e-9)
    assert Perplexity(model_path=str(packed), ngram_backend="python").scores(
        [Document(t, id=t, source="m") for t in texts]) == pytest.approx(want, rel=1e-9)


def test_malformed_arpa_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.arpa"
    bad.write_text("\\data\\\nngram 1=1\n\n\\1-grams:\nminus-one a\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.arpa:5: not a number"):
        ArpaModel(bad)
    bad.write_text("\\data\\\nngram 1=1\n\n\\1-grams:\n-1\ta\n\n\\2-grams:\n-1\ta\n-1\ta b\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.arpa:8: expected log10 prob, 2 words"):
        ArpaModel(bad)
    bad.write_text("\\data\\\nngram 1=1\n\n\\1-grams:\n-1\ta\n\n\\2-grams:\n-1\ta zebra\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.arpa:8: word 'zebra' is not among the 1-grams"):
        ArpaModel(bad)
    with pytest.raises(ValueError, match="cannot read ARPA model"):
        ArpaModel(tmp_path / "missing.arpa")
    with pytest.raises(ValueError, match="ngram_backend must be one of auto, kenlm, python"):
        Perplexity(model_path=str(bad), ngram_backend="srilm")


def test_trained_model_is_normalised_and_kenlm_reads_it(wiki_arpa):
    path, _ = wiki_arpa
    lm = ArpaModel(path)
    assert lm.order == 3 and len(lm) > 20_000
    predicted = [w for w in lm.words if w != "<s>"]
    for context in ([], ["the"], ["of", "the"], ["zebra", "crossing"]):
        assert np.sum(10.0 ** lm.conditional_log10(context, predicted)) == pytest.approx(1.0, abs=1e-4)


def test_kenlm_and_the_python_reader_give_the_same_document_perplexity(wiki_arpa):
    pytest.importorskip("kenlm")
    path, paras = wiki_arpa
    ours, theirs = ArpaModel(path).perplexities(paras), KenLMModel(path).perplexities(paras)
    assert ours == pytest.approx(theirs, rel=1e-4)  # KenLM keeps float32 probabilities
    assert 20 < min(ours) < max(ours) < 5000
    assert isinstance(load_ngram(path), KenLMModel)  # auto prefers the module


@pytest.fixture(scope="module")
def build_binary(tmp_path_factory) -> str:
    """KenLM's build_binary: $KENLM_BUILD_BINARY, on PATH, or compiled (~1 s) against the installed
    module's libkenlm.so from its sdist, fetched from the package index (docs/models.md)."""
    kenlm = pytest.importorskip("kenlm")
    tool = os.environ.get("KENLM_BUILD_BINARY") or shutil.which("build_binary")
    if tool:
        return tool
    version = importlib.metadata.version("kenlm")
    root = tmp_path_factory.mktemp("kenlm_src")
    src = root / f"kenlm-{version}"
    lib = Path(kenlm.__file__).parent
    steps = [
        [sys.executable, "-m", "pip", "download", f"kenlm=={version}", "--no-deps", "--no-binary", ":all:",
         "--no-build-isolation", "-q", "-d", str(root)],
        ["tar", "xzf", str(root / f"kenlm-{version}.tar.gz"), "-C", str(root)],
        ["g++", "-O2", "-DNDEBUG", "-DKENLM_MAX_ORDER=6", "-std=c++11", f"-I{src}", str(src / "lm" / "build_binary_main.cc"),
         "-o", str(root / "build_binary"), f"-L{lib}", "-lkenlm", f"-Wl,-rpath,{lib}", "-lpthread"],
    ]
    for cmd in steps:
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as e:
            pytest.skip(f"KenLM build_binary unavailable ({cmd[0]} failed: {e}); set KENLM_BUILD_BINARY")
    return str(root / "build_binary")


def test_binary_kenlm_model_scores_as_its_arpa(wiki_arpa, build_binary, tmp_path):
    path, paras = wiki_arpa
    binary = tmp_path / "wiki3.bin"
    subprocess.run([build_binary, str(path), str(binary)], check=True, capture_output=True)
    docs = [Document(p, id=str(i), source="wiki") for i, p in enumerate(paras)]
    step = Perplexity(model_path=str(binary), drop=False)
    assert step.scores(docs) == pytest.approx(ArpaModel(path).perplexities(paras), rel=1e-4)
    with pytest.raises(ValueError, match="binary KenLM model; ngram_backend python reads only ARPA"):
        load_ngram(binary, "python")


def test_binary_model_without_the_kenlm_module_is_a_clear_error(tmp_path, monkeypatch):
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"mmap lm http://kheafield.com/code format version 5\n\0\0\0")
    monkeypatch.setitem(sys.modules, "kenlm", None)  # import kenlm raises ImportError
    with pytest.raises(ImportError, match=r"binary KenLM model, which needs the kenlm module.*corpusforge\[kenlm\]"):
        Perplexity(model_path=str(binary)).setup(None)
    with pytest.raises(ImportError, match=r"pip install 'corpusforge\[kenlm\]'"):
        load_ngram(binary, "kenlm")


def test_arrow_blocks_and_the_line_reader_agree(wiki_arpa, tmp_path, monkeypatch):
    from corpusforge.models import arpa as arpa_module

    path, paras = wiki_arpa
    whole = ArpaModel(path).perplexities(paras)
    monkeypatch.setattr(arpa_module, "_BLOCK", 4096)  # many blocks per section, cut at line ends
    assert ArpaModel(path).perplexities(paras) == whole
    spaced = tmp_path / "spaced.arpa"
    spaced.write_text(path.read_text(encoding="utf-8").replace("\t", " "), encoding="utf-8")  # line reader
    assert ArpaModel(spaced).perplexities(paras) == pytest.approx(whole, rel=1e-12)


def test_a_bad_ngram_backend_in_a_recipe_names_the_field(arpa):
    from corpusforge.errors import RecipeError
    from corpusforge.recipe import Recipe

    with pytest.raises(RecipeError, match=r"steps\[0\]\.ngram_backend: value 'srilm' is invalid"):
        Recipe.model_validate({"sources": [{"path": "."}], "steps": [
            {"type": "perplexity", "model_path": str(arpa), "ngram_backend": "srilm"}]})


def test_unk_in_training_text_is_white_space_as_lmplz_skip_symbols_reads_it(tmp_path):
    with_unk = train_arpa(["the <unk> cat sat", "<s> the cat </s> ran <unk>"], tmp_path / "a.arpa", order=2)
    without = train_arpa(["the cat sat", "the cat ran"], tmp_path / "b.arpa", order=2)
    assert with_unk.read_bytes() == without.read_bytes()
    lm = ArpaModel(with_unk)
    unk, seen = lm.conditional_log10([], ["<unk>", "sat"])
    assert unk < seen  # an unknown word costs more than a word seen once (only the leftover mass)


def test_wikitext_unk_no_longer_makes_random_letters_likely(wiki_arpa):
    path, paras = wiki_arpa
    lm = ArpaModel(path)
    letters = " ".join(["xq", "zvbk", "wrtp", "ggh", "qqz", "pfft"] * 10)
    assert lm.perplexity(letters) > 10 * max(lm.perplexities(paras))  # was 6.8 with <unk> counted as a word
