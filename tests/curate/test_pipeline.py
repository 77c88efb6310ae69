import json

from corpusforge import run

from .conftest import DATA


def test_curate_steps_run_from_a_recipe(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    gold = sorted((DATA / "html" / "scrapinghub").glob("*.gold.txt"))
    with open(src / "pages.jsonl", "w", encoding="utf-8") as f:
        for p in gold:
            f.write(json.dumps({"text": p.read_text(encoding="utf-8")}) + "\n")
        f.write(json.dumps({"text": "Click here to subscribe to our weekly newsletter. " * 30}) + "\n")
    recipe = {
        "sources": [{"path": str(src)}],
        "steps": [
            {"type": "normalize", "fix_mojibake": True},
            {"type": "language_id", "allowed_languages": ["en"]},
            {"type": "gopher_repetition"},
            {"type": "gopher_quality"},
            {"type": "c4_quality", "mode": "annotate"},
            {"type": "fineweb_quality", "mode": "annotate"},
            {"type": "toxicity", "threshold": 0.9},
        ],
        "tokenizer": {"vocab_size": 500},
        "sharding": {"sequence_length": 64},
    }
    stats = run(recipe, output=str(tmp_path / "out"), workers=1)
    steps = {s["name"]: s for stage in stats["stages"] for s in stage.get("steps", [])}
    # 20 gold pages (15 English; Italian, Indonesian, Korean and two Portuguese) + 1 spam page.
    assert steps["language_id"]["docs_in"] == 21
    assert steps["language_id"]["drops"] == {"language_not_allowed": 5}
    assert steps["gopher_repetition"]["drops"] == {"top_2_gram": 1}  # the spam page
    assert steps["c4_quality"]["drops"] == {}
    assert steps["toxicity"]["docs_out"] == steps["toxicity"]["docs_in"]
