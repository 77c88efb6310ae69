import re
from pathlib import Path

import pytest
import yaml

from corpusforge import run
from tests.conftest import SHARED_DATA

from .llm_server import ChatServer

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"


def documented_recipe(step_type: str, option: str | None = None) -> dict:
    """The docs' full recipe (one with sources) that uses ``step_type`` (with ``option``), its path made absolute."""
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)]
    recipe = next(b for b in blocks if isinstance(b, dict) and "sources" in b
                  and any(s["type"] == step_type and (option is None or option in s) for s in b["steps"]))
    assert recipe["sources"][0]["path"] == "../shared/data/html/scrapinghub"  # relative to the checkout
    recipe["sources"][0]["path"] = str(SHARED_DATA / "html" / "scrapinghub")
    return recipe


def test_documented_judge_recipe_runs_and_a_rerun_is_free(tmp_path):
    pytest.importorskip("httpx")
    recipe = documented_recipe("llm_judge")
    with ChatServer() as srv:
        recipe["steps"][0]["base_url"] = srv.base_url
        stats = run(recipe, output=str(tmp_path / "out"), workers=1, progress=False)
        judged = stats["stages"][0]["steps"][1]
        assert judged["name"] == "llm_judge" and judged["counts"]["requests"] == len(srv.log) > 10
        recipe["steps"][0]["min_score"] = 4  # a new threshold: the curate stage reruns, from the cache
        again = run(recipe, output=str(tmp_path / "out"), workers=1, progress=False)
    assert again["stages"][0]["steps"][1]["counts"]["requests"] == 0
    assert again["stages"][0]["steps"][1]["drops"] == {"below_min_score": judged["docs_in"]}  # the server says 3


def test_documented_augmentation_recipe_runs(tmp_path):
    stats = run(documented_recipe("paragraph_extraction"), output=str(tmp_path / "out"), workers=1, progress=False)
    read, extract, noise, edit = stats["stages"][0]["steps"]
    assert extract["docs_out"] > read["docs_out"] and noise["docs_out"] > extract["docs_out"]
    assert edit["drops"]["replaced_by_augmentation"] == edit["counts"]["augmented"]
    assert stats["documents"]["kept"] == edit["docs_out"]


@pytest.fixture(scope="module")
def en3(tmp_path_factory) -> Path:
    """The n-gram model the docs' training snippet writes, exactly as documented (~7 CPU-s)."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    snippet = next(b for b in blocks if "train_arpa(" in b)
    path = tmp_path_factory.mktemp("lm") / "en3.arpa"
    exec(snippet.replace("../shared/data", str(SHARED_DATA)).replace('"en3.arpa"', repr(str(path))), {})
    return path


def ngram_recipe(en3: Path, source: Path | None = None) -> dict:
    """The docs' n-gram perplexity recipe with its model at ``en3`` (and its source at ``source``)."""
    recipe = documented_recipe("perplexity", "ngram_backend")
    step = next(s for s in recipe["steps"] if s["type"] == "perplexity")
    assert step["model_path"] == "en3.arpa"
    step["model_path"] = str(en3)
    if source is not None:
        recipe["sources"] = [{"path": str(source)}]
    return recipe


def kept_files(recipe: dict, out: Path) -> set[str]:
    """Names of the source files whose document the run kept (one document per file)."""
    from corpusforge.observe.lineage import read_lineage

    run(recipe, output=str(out), workers=1, progress=False)
    return {Path(u).name for u in read_lineage(out, columns=["source_uri"])["source_uri"].to_pylist()}


def test_documented_ngram_recipe_keeps_exactly_the_english_pages_of_its_source(en3, tmp_path):
    kept = kept_files(ngram_recipe(en3), tmp_path / "out")
    pages = sorted(p.name for p in (SHARED_DATA / "html" / "scrapinghub").glob("*.gold.txt"))
    foreign = {p for p in pages if p[:6] in {"0ec95c", "11ea38", "20b2b6", "214864", "23aaec"}}  # ko, pt, it, id, pt
    assert len(foreign) == 5 and kept == set(pages) - foreign


def _held_out_english() -> dict[str, str]:
    """Paragraphs no part of the example was trained or tuned on: WikiText-2 valid.txt (cleaned as the
    WikiText recipe does) and three Gutenberg books the model did not read."""
    from corpusforge.curate.wikitext import WikitextClean

    clean = WikitextClean().clean
    raw = (SHARED_DATA / "wikitext-2" / "valid.txt").read_text(encoding="utf-8").split("\n \n")
    out = {f"valid_{i}.txt": clean(p) for i, p in enumerate(raw) if len(p.split()) > 30 and not p.strip().startswith("=")}
    for book in ("pg84", "pg1513", "pg26184"):
        text = (SHARED_DATA / "prose" / "gutenberg" / f"{book}.txt").read_text(encoding="utf-8").replace("\r", "")
        out |= {f"{book}_{i}.txt": p for i, p in enumerate(text.split("\n\n")) if len(p.split()) >= 30}
    return out


def _junk(english: list[str]) -> dict[str, str]:
    """Random letters, held-out English with its characters shuffled, German/French/Chinese web pages, repeats."""
    import random

    from corpusforge.extract.html import html_to_text

    rng = random.Random(0)
    out = {f"random_{i}.txt": " ".join("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 9)))
                                       for _ in range(80)) for i in range(30)}
    for i, p in enumerate(english[:40]):
        chars = list(p)
        rng.shuffle(chars)
        out[f"shuffled_{i}.txt"] = "".join(chars)
    for page in ("bmjv.de.konsum", "heise.de.lithium", "hundeverein-kreisunna.de", "die-partei.net.luebeck",
                 "laviedesidees.fr.evaluation", "soundofscience.fr.1927", "chineselyrics4u.com.zhineng"):
        html = (SHARED_DATA / "html" / "trafilatura" / f"{page}.html").read_text(encoding="utf-8", errors="replace")
        out[f"lang_{page}.txt"] = html_to_text(html)[0]
    repeats = ["the " * 100, "click here " * 50, "buy now cheap viagra " * 30, "lorem ipsum dolor sit amet " * 20,
               "\n".join(["Home | About | Contact"] * 20), "and " * 40 + "the end", " ".join(english[0].split()[:5]) * 20]
    out |= {f"repeated_{i}.txt": t for i, t in enumerate(repeats)}
    return out


def _folder(path: Path, files: dict[str, str]) -> Path:
    path.mkdir()
    for name, text in files.items():
        (path / name).write_text(text, encoding="utf-8")
    return path


def test_documented_ngram_recipe_keeps_held_out_english_and_drops_junk(en3, tmp_path):
    english = _held_out_english()
    junk = _junk(list(english.values())[600:])
    kept = kept_files(ngram_recipe(en3, _folder(tmp_path / "en", english)), tmp_path / "out_en")
    lost = sorted(set(english) - kept)
    assert len(english) > 1500 and len(lost) <= len(english) // 100, lost  # 1 of 1,628 when measured
    assert not any(n.startswith("pg") for n in lost)  # every Gutenberg paragraph of the three books
    canary = {"english.txt": english["pg84_128.txt"]}  # one kept document, so the run has text to shard
    junk_kept = kept_files(ngram_recipe(en3, _folder(tmp_path / "junk", junk | canary)), tmp_path / "out_junk")
    assert junk_kept == {"english.txt"}


def test_documented_ngram_steps_score_junk_far_above_held_out_english(en3):
    from corpusforge.document import Document
    from corpusforge.recipe import load_recipe

    english = _held_out_english()
    junk = _junk(list(english.values())[600:])
    repetition, perplexity = load_recipe(ngram_recipe(en3)).build_steps()
    gutenberg = perplexity.scores([Document(t, n, n) for n, t in english.items() if n.startswith("pg")])
    scored = {n: s for n, s in zip(junk, perplexity.scores([Document(t, n, n) for n, t in junk.items()]), strict=True)}
    limit = perplexity.max_perplexity
    assert max(gutenberg) < limit / 1.5  # 2135 of 4000
    assert min(s for n, s in scored.items() if not n.startswith("repeated")) > 4 * limit  # >= 21,000
    assert all(repetition.keep(Document(t, n, n)) for n, t in junk.items() if n.startswith("repeated"))
