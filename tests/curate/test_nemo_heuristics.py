"""The NeMo Curator heuristic catalogue: exact scores and decisions on small documents."""

import json
import re
from pathlib import Path

import pytest
import yaml

from corpusforge.curate.textstats import repeated_ngram_run_chars, stats
from corpusforge.document import Document
from corpusforge.registry import STEPS

from .conftest import DATA

DOC = Path(__file__).resolve().parents[2] / "docs" / "curate.md"

PROSE = (
    "The house stood at the end of the lane, with a garden that ran down to the river. "
    "The family had lived there for three generations and knew every tree by name."
)


def annotate(name: str, text: str, **kwargs) -> tuple[str | None, object]:
    step = STEPS.get(name)(mode="annotate", **kwargs)
    d = Document(text, id="t", source="test")
    step.keep(d)
    return d.metadata[name]["reason"], d.metadata[name]["score"]


@pytest.mark.parametrize(
    ("name", "kwargs", "text", "reason", "score"),
    [
        ("word_count", {}, PROSE, "word_count", 32),
        ("word_count", {"min_words": 32}, PROSE, None, 32),
        ("mean_word_length", {}, "a bb ccc dddd", "mean_word_length", 2.5),
        ("mean_word_length", {}, "the cat sat down", None, 3.25),
        ("mean_word_length", {}, "   ", "empty", None),
        ("long_word", {"max_word_length": 5}, "short words and a loooong one", "max_word_length", 7),
        ("symbols_to_words", {}, "hello # world ... and …", "symbol_to_word", 0.5),
        ("symbols_to_words", {}, "#tag is fine, ## is 0.5 hash runs per character", None, 0.0),
        ("numbers", {}, "call 555 1234 now", "numbers_ratio", 7 / 17),
        ("numbers", {}, "", "numbers_ratio", 1.0),
        ("urls", {}, "see https://example.com/a?b=1 here", "urls_ratio", 25 / 34),
        ("urls", {}, PROSE, None, 0.0),
        ("pornographic_urls", {}, "go to http://pornhub.example/x now", "pornographic_url", 1),
        ("pornographic_urls", {}, "porn is a word, http://example.com is a url", None, 0),
        ("bullets", {}, "• one\n  • two\n\n◦ three", "bullet_ratio", 1.0),
        ("bullets", {}, "- one\n- two", None, 0.0),  # a dash is not a NeMo Curator bullet
        ("white_space", {}, "a b c d", "white_space", 3 / 7),
        ("parentheses", {}, "f(x) = [y]", "parentheses_ratio", 0.4),
        ("punctuation", {}, "no end\nno end either\nbut this one does.", None, 2 / 3),
        ("punctuation", {}, "no end\nnone here\nnor here\nnothing\nat all\nreally not\nnope", "punctuation", 1.0),
        ("ellipsis", {}, "Wait...\nRead more\nFine.", "ellipsis", 2 / 3),
        ("common_english_words", {}, "THE CAT AND THE DOG", "common_english_words", 0),
        ("common_english_words", {}, "the cat and the dog", None, 3),
        ("words_without_alphabets", {}, "1999 2000 2001 then", "words_without_alphabets", 0.25),
        ("words_without_alphabets", {}, "naïve café 中文 ⅷ 42", None, 0.8),
        ("non_alpha_numeric", {}, "a-b-c-d", "alpha_numeric", 3 / 7),
        ("non_alpha_numeric", {}, "Hello, world!\nFine.", None, 1 / 19),  # only the space
        ("boilerplate_string", {}, "Our privacy policy.\n\nText.", "boilerplate_string_ratio", 0.5),
        ("boilerplate_string", {}, "Real text.\n\nMore.\n\nAnd Lorem ipsum here.", "boilerplate_string_ratio", 1.0),
        ("substring", {"substring": "Abstract", "position": "prefix"}, "Abstract: we study", None, 1),
        ("substring", {"substring": "Abstract", "position": "suffix"}, "Abstract: we study", "substring_missing", 0),
        ("repeated_lines", {}, "a\nb\na\na", "repeated_lines", 0.5),
        ("repeated_paragraphs", {}, "p\n\nq\n\nr", None, 1.0),
        ("repeated_lines_by_char", {}, "long line here\nlong line here\nx", "repeated_lines_char", 15 / 29),
        ("repeated_paragraphs_by_char", {}, "\n\n", "empty", None),
        ("repeating_top_ngrams", {}, "to be or not to be", "repeating_top_ngrams", 10 / 18),
        ("repeating_top_ngrams", {}, "one", "repeating_top_ngrams", 1.0),
        ("repeating_top_ngrams", {"n": 3, "max_repeating_ngram_ratio": 0.5}, "a b c x a b c y", "repeating_top_ngrams", 10 / 15),
        ("repeating_duplicate_ngrams", {}, "a b a b a b", "repeating_duplicate_ngrams", 7 / 11),
        ("repeating_duplicate_ngrams", {}, "the quick brown fox jumps", None, 0.0),
    ],
)
def test_filter_scores_and_decides(name, kwargs, text, reason, score):
    got_reason, got_score = annotate(name, text, **kwargs)
    assert got_reason == reason
    if score is None or isinstance(score, int):
        assert got_score == score
    else:
        assert got_score == pytest.approx(score, abs=1e-6)


PYTHON = '''"""Module docstring."""
# a comment


def f(x):
    """Say hi."""
    return x + 1  # trailing
'''


@pytest.mark.parametrize(
    ("name", "kwargs", "text", "reason", "score"),
    [
        # 17 + 11 characters of comments, 17 + 7 of docstrings joined by one newline.
        ("comment_ratio", {}, PYTHON, None, (11 + 10 + 17 + 1 + 7) / len(PYTHON)),
        ("comment_ratio", {}, "def broken(:\n    pass\n", "comment_ratio", 0.0),
        ("comment_ratio", {"language": "c"}, 'int x = 1; // one\nchar *s = "// not"; /* two */\n', None, len(" one  two ") / 48),
        ("comment_ratio", {"language": "shell"}, "echo hi\n" * 30, "comment_ratio", 0.0),
        ("lines_of_code", {}, "x = 1\n" * 5, "num_lines", 6),
        ("xml_header", {}, '<?xml version="1.0"?>\n<root/>', "xml_header", 1),
        ("xml_header", {}, "int main() {}", None, 0),
        ("alpha", {}, "0.1, 0.2, 0.3, 0.4, 0.5", "alpha_filter", 0.0),
        ("alpha", {}, "def main(): pass", None, 11 / 16),
        ("html_boilerplate", {}, "<html><script>var a = 1;</script><p>" + "word " * 30 + "</p></html>", None, 150 / 197),
        ("html_boilerplate", {}, "<div><p>tiny</p></div>", "html_boilerplate", 0.0),
    ],
)
def test_code_filter_scores_and_decides(name, kwargs, text, reason, score):
    test_filter_scores_and_decides(name, kwargs, text, reason, score)


def test_tokenizer_fertility_with_a_trained_tokenizer(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    shakespeare = (DATA / "prose" / "tinyshakespeare.txt").read_text(encoding="utf-8")[:200_000]
    tok.train_from_iterator([shakespeare], trainers.BpeTrainer(vocab_size=2000, special_tokens=["[UNK]"]))
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    prose = shakespeare[200_000:202_000] or shakespeare[:2000]
    assert annotate("tokenizer_fertility", prose, tokenizer=str(path))[0] is None
    noise = "q7#Zx!v9 " * 50
    reason, score = annotate("tokenizer_fertility", noise, tokenizer=str(path))
    assert reason == "tokenizer_fertility" and score < 2.5
    with pytest.raises(ValueError, match="no such file"):
        STEPS.get("tokenizer_fertility")(tokenizer=str(tmp_path / "missing.json"))


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("word_count", {"min_words": 10, "max_words": 5}, "exceeds"),
        ("substring", {"substring": "x", "position": "middle"}, "position"),
        ("urls", {"url_regex": "("}, "url_regex"),
        ("comment_ratio", {"language": "cobol"}, "language"),
        ("repeating_top_ngrams", {"n": 0}, "n must be"),
    ],
)
def test_bad_options_are_rejected(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        STEPS.get(name)(**kwargs)


def _nemo_duplicate_chars(words: list[str], n: int) -> int:
    """The duplicate n-gram count written out over tuples, word by word, as the rule reads."""
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    seen: dict[tuple[str, ...], int] = {}
    total = overlap = 0
    for g in grams:
        seen[g] = seen.get(g, 0) + 1
        if seen[g] > 1:
            total += sum(len(w) for w in g[overlap:]) + min(n - overlap, n - 1)
            overlap = n
        overlap = max(overlap - 1, 0)
    return total


def test_vectorised_duplicate_ngrams_equal_the_word_by_word_rule_on_real_text():
    text = (DATA / "prose" / "tinyshakespeare.txt").read_text(encoding="utf-8")[:40_000]
    for t in (text, "a b a b a b a b c a b a b", "x y z " * 20 + "x"):
        d = Document(t, id="t", source="s")
        for n in (2, 3, 5, 8):
            assert repeated_ngram_run_chars(stats(d), n) == _nemo_duplicate_chars(d.words, n)


def test_catalogue_in_a_recipe_run(tmp_path):
    from corpusforge import run

    code = tmp_path / "code.jsonl"
    with open(DATA / "code" / "code.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    code.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in rows if r["language"] == "python"))
    doc = DOC.read_text(encoding="utf-8")
    section = doc[doc.index("## The NeMo Curator heuristic catalogue") :]
    recipe = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    recipe["sources"][0]["path"] = str(DATA / "html" / "scrapinghub")
    result = run(recipe, output=str(tmp_path / "prose"), workers=1)
    steps = {s["name"]: s for stage in result["stages"] for s in stage.get("steps", [])}
    assert steps["word_count"]["docs_in"] == 20
    assert {k: v["drops"] for k, v in steps.items() if v.get("drops")} == EXPECTED_PROSE_DROPS
    assert steps["non_alpha_numeric"]["docs_in"] == 15  # annotate: scored, none dropped

    recipe = {
        "sources": [{"path": str(code)}],
        "steps": [{"type": "comment_ratio"}, {"type": "lines_of_code"}, {"type": "alpha"}, {"type": "xml_header"}],
        "tokenizer": {"vocab_size": 300},
        "sharding": {"sequence_length": 32},
    }
    result = run(recipe, output=str(tmp_path / "code"), workers=1)
    steps = {s["name"]: s for stage in result["stages"] for s in stage.get("steps", [])}
    assert steps["comment_ratio"]["docs_in"] == 93
    assert {k: v["drops"] for k, v in steps.items() if v.get("drops")} == EXPECTED_CODE_DROPS


EXPECTED_PROSE_DROPS = {"punctuation": {"punctuation": 3}, "common_english_words": {"common_english_words": 2}}
# Four of the Python files are empty (package __init__.py files).
EXPECTED_CODE_DROPS = {"comment_ratio": {"comment_ratio": 14, "empty": 4}}
