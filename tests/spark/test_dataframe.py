"""``corpusforge.integrations.spark.apply_steps``: a recipe's per-document steps on a DataFrame keep and
change exactly what a corpusforge run of the same documents keeps and changes."""

from __future__ import annotations

import sys

import orjson
import pytest

from corpusforge import run
from corpusforge.errors import RecipeError
from tests.conftest import small_recipe

pytest.importorskip("pyspark")

STEPS = [{"type": "normalize"}, {"type": "gopher_quality", "min_words": 20}, {"type": "pii"}]


@pytest.fixture(scope="module")
def spark():
    import os

    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the workers' interpreter: this venv's
    session = (SparkSession.builder.master("local[2]").appName("corpusforge-tests")
               .config("spark.ui.enabled", "false").getOrCreate())
    yield session
    session.stop()


def _documents(shared_data) -> list[dict]:
    text = (shared_data / "wikitext-2" / "valid.txt").read_text(encoding="utf-8")
    paragraphs = [p.strip() for p in text.split("\n") if p.strip()][:600]
    paragraphs[5] += " Write to jane.doe@example.org or call +44 20 7946 0958."
    return [{"id": f"wiki-{i}", "text": p, "metadata": {"n": str(i)}} for i, p in enumerate(paragraphs)]


def test_the_kept_rows_and_their_text_equal_a_run_of_the_same_documents(spark, shared_data, tmp_path):
    from corpusforge.integrations.spark import apply_steps

    docs = _documents(shared_data)
    (tmp_path / "docs.jsonl").write_bytes(b"\n".join(orjson.dumps(d) for d in docs))
    recipe = small_recipe([{"name": "wiki", "path": str(tmp_path / "docs.jsonl"), "id_field": "id"}], steps=STEPS,
                          output={"documents": "jsonl"})
    run(recipe, output=str(tmp_path / "out"), workers=1)
    ran = {}
    for part in sorted((tmp_path / "out" / "documents").glob("*.jsonl")):
        for line in part.read_bytes().splitlines():
            d = orjson.loads(line)
            ran[d["id"]] = d["text"]

    df = spark.createDataFrame([(d["id"], d["text"], d["metadata"]) for d in docs], "id string, text string, "
                               "metadata map<string,string>").repartition(3)
    out = apply_steps(df, recipe)
    assert out.columns == ["id", "text", "metadata"]
    got = {r["id"]: (r["text"], r["metadata"]) for r in out.collect()}
    assert 100 < len(got) < len(docs)
    assert {k: v[0] for k, v in got.items()} == ran
    assert "jane.doe@example.org" not in got["wiki-5"][0] and got["wiki-5"][1]["n"] == "5"

    every = apply_steps(df, recipe, keep_dropped=True).collect()
    assert len(every) == len(docs)
    dropped = {r["id"]: r["dropped"] for r in every if r["dropped"]}
    assert set(dropped) == {d["id"] for d in docs} - set(ran)
    assert all(why.startswith("gopher_quality: ") for why in dropped.values())


def test_corpus_wide_steps_and_missing_columns_are_refused_with_what_to_do(spark):
    from corpusforge.integrations.spark import apply_steps

    df = spark.createDataFrame([("a", "some text")], "id string, text string")
    with pytest.raises(RecipeError, match="minhash_dedup compare documents across the corpus .* executor.kind: spark"):
        apply_steps(df, small_recipe([{"path": "."}], steps=[{"type": "minhash_dedup"}]))
    with pytest.raises(RecipeError, match="has no text column"):
        apply_steps(df.select("id"), small_recipe([{"path": "."}], steps=[]))
    assert apply_steps(df, small_recipe([{"path": "."}], steps=[{"type": "normalize"}])).collect()[0]["text"] == \
        "some text"
