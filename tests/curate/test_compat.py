"""compat: datatrove: the documented differences decide as documented, in both modes."""

import re
from pathlib import Path

import pytest
import yaml

from corpusforge.curate.c4 import C4Quality
from corpusforge.curate.compat import PUNCTUATION, TERMINAL_PUNCTUATION, count_sentences, word_spans
from corpusforge.curate.fineweb import FineWebQuality
from corpusforge.curate.gopher import GopherQuality, GopherRepetition
from corpusforge.curate.textstats import stats
from corpusforge.document import Document
from corpusforge.registry import STEPS

DOC = Path(__file__).resolve().parents[2] / "docs" / "curate.md"


def documented_examples() -> list[dict]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Paper, datatrove and corpusforge: where they differ") :]
    return yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))


EXAMPLES = documented_examples()


def decide(example: dict, compat: str | None) -> str:
    kwargs = {"compat": compat, **({"remove_lines": False} if example["filter"] == "c4_quality" else {})}
    step = STEPS.get(example["filter"])(**kwargs)
    return step.keep(Document(example["text"], id="x", source="docs")) or "keep"


def test_every_family_has_documented_differences():
    assert {e["filter"] for e in EXAMPLES} == {"gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality"}
    assert all(e["corpusforge"] != e["datatrove"] for e in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["point"][:40] for e in EXAMPLES])
def test_documented_example_decides_as_documented_in_each_mode(example):
    assert decide(example, None) == example["corpusforge"]
    assert decide(example, "datatrove") == example["datatrove"]


def test_datatrove_words_are_spacy_tokens_without_whitespace():
    text = "I can't go.\n\n  It's #1 — “really”…"
    first, last = word_spans(text)
    assert [text[a:b] for a, b in zip(first.tolist(), last.tolist(), strict=True)] == [
        "I", "ca", "n't", "go", ".", "It", "'s", "#", "1", "—", "“", "really", "”", "…",
    ]


def test_datatrove_stats_are_cached_beside_the_whitespace_ones():
    d = Document("Don't stop.", id="x", source="s")
    assert stats(d).words == ["Don't", "stop."]
    assert stats(d, "datatrove").words == ["Do", "n't", "stop", "."]
    assert stats(d, "datatrove") is stats(d, "datatrove")
    with pytest.raises(ValueError, match="words"):
        stats(d, "nltk")


@pytest.mark.parametrize(("line", "n"), [("Mr. Darcy came. He left!", 2), ("“Captain Ahab?—” said Starbuck.", 2), ("No end", 1)])
def test_sentencizer_counts(line, n):
    assert count_sentences(line) == n


def test_character_sets():
    assert {".", "!", "?", "。", "؟", "।", "៖"} <= TERMINAL_PUNCTUATION
    assert not {'"', "”", ",", ";"} & TERMINAL_PUNCTUATION
    assert {",", "“", "—", "…", "\x00", "\x85"} <= PUNCTUATION
    assert not {"\t", "\n", "a", "1"} & PUNCTUATION


@pytest.mark.parametrize("cls", [GopherQuality, GopherRepetition, C4Quality, FineWebQuality])
def test_unknown_compat_is_rejected(cls):
    with pytest.raises(ValueError, match="compat must be null or 'datatrove'"):
        cls(compat="nemo")


def test_c4_compat_keeps_an_explicit_bad_words_list(tmp_path):
    words = tmp_path / "w.txt"
    words.write_text("seine\n", encoding="utf-8")
    text = "\n".join(["The river Seine flows through the middle of the city."] * 5)
    assert C4Quality(compat="datatrove", bad_words=str(words)).keep(Document(text, id="x", source="s")) == "bad_words"


def test_compat_annotate_records_token_counts():
    d = Document("It isn't far, is it? " * 20, id="x", source="s")
    GopherQuality(compat="datatrove", mode="annotate").keep(d)
    sig = d.metadata["gopher_quality"]
    assert (sig["words"], sig["tokens"]) == (120, 160)  # It is n't far is it, plus "," and "?"


def test_compat_runs_in_a_recipe(tmp_path):
    from corpusforge import run

    from .conftest import DATA

    recipe = {
        "sources": [{"path": str(DATA / "html" / "scrapinghub"), "include": ["*.gold.txt"]}],
        "steps": [{"type": "fineweb_quality", "compat": "datatrove"}, {"type": "gopher_quality", "compat": "datatrove"}],
        "tokenizer": {"vocab_size": 300},
        "sharding": {"sequence_length": 32},
    }
    result = run(recipe, output=str(tmp_path / "out"), workers=1)
    steps = {s["name"]: s for stage in result["stages"] for s in stage.get("steps", [])}
    assert steps["fineweb_quality"]["drops"] == {"line_punct_ratio": 2}
    assert steps["gopher_quality"]["docs_in"] == 18
    assert steps["gopher_quality"]["drops"] == {"alpha_words_ratio": 2, "too_few_stop_words": 2}


def test_documented_python_example_runs():
    text = DOC.read_text(encoding="utf-8")
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        exec(compile(block, str(DOC), "exec"), {})
