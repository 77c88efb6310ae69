"""Issue 23, text side: templates write what a person would, empty or mostly quarantined runs fail
loudly, and ids from ``id_field`` that collide are reported (and can be made unique)."""

from __future__ import annotations

import decimal
import json
import sqlite3

from corpusforge.observe.stats import TaskContext
from corpusforge.sources.readers import render_value, text_of
from corpusforge.sources.sql import SqlSource
from tests.ingest.helpers import read_all


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# -- 1. templates render values as text, and their fields are not metadata too ---------------------

def test_template_renders_null_as_empty_lists_joined_dicts_as_json_and_bools_lower_case():
    fields = {"t": "Title 7", "body": None, "tags": ["x", ["y", "z"], None], "d": {"a": 1, "é": "ü"}, "ok": True}
    text, why = text_of(fields, "text", "{t}\n\n{body}|{tags}|{d}|{ok}")
    assert (text, why) == ('Title 7\n\n|x, y, z|{"a":1,"é":"ü"}|true', "")


def test_template_format_specs_apply_to_numbers_also_when_they_arrive_as_text():
    assert text_of({"s": 0.5, "c": "2.25", "n": "7"}, "text", "{s:.2f} {c:.1f} {n:03d}") == ("0.50 2.2 007", "")


def test_template_with_a_numeric_spec_on_a_word_is_quarantined_with_the_reason():
    assert text_of({"s": "abc"}, "text", "{s:.2f}") == (
        None, "text_template cannot be filled ('abc' is not a number for format '.2f')")


def test_decimals_and_dates_render_as_written():
    import datetime

    assert [render_value(v) for v in (decimal.Decimal("7.50"), 3, 2.5, datetime.date(2024, 1, 2), b"\x00")] == [
        "7.50", "3", "2.5", "2024-01-02", ""]


def test_jsonl_template_fields_leave_metadata_and_the_others_stay(tmp_path):
    _jsonl(tmp_path / "a.jsonl", [{"id": 1, "title": "Hi", "body": None, "tags": ["a", "b"], "lang": "en"}])
    docs, quarantined = read_all(tmp_path, tmp_path, text_template="{title}\n\n{body}\n{tags}", id_field="id")
    assert quarantined == []
    assert [(d.id, d.text, d.metadata) for d in docs] == [("1", "Hi\n\n\na, b", {"lang": "en", "source_name": "t"})]


def test_jsonl_record_without_a_template_field_is_quarantined_as_missing(tmp_path):
    _jsonl(tmp_path / "a.jsonl", [{"title": "Hi"}])
    docs, quarantined = read_all(tmp_path, tmp_path, text_template="{title} {body}")
    assert docs == []
    assert [q["reason"] for q in quarantined] == ["text_template field 'body' is missing"]


def test_null_and_missing_text_field_give_the_same_quarantine_reason(tmp_path):
    _jsonl(tmp_path / "a.jsonl", [{"text": None}, {"other": "x"}])
    docs, quarantined = read_all(tmp_path, tmp_path)
    assert docs == []
    assert [q["reason"] for q in quarantined] == ["field 'text' is missing or not a string"] * 2


def test_csv_template_fields_leave_metadata(tmp_path):
    (tmp_path / "a.csv").write_text("title,score,author\nHello,0.5,Ann\n", encoding="utf-8")
    docs, _ = read_all(tmp_path, tmp_path, text_template="{title} ({score:.2f})")
    assert [(d.text, d.metadata) for d in docs] == [("Hello (0.50)", {"author": "Ann", "source_name": "t"})]


def test_sql_null_column_renders_empty_and_template_columns_leave_metadata(tmp_path):
    db = tmp_path / "x.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table posts (id integer, title text, body text, price text, n integer)")
        conn.execute("insert into posts values (7, 'Title 7', NULL, '7.5', 3)")
    src = SqlSource(name="db", url=f"sqlite:///{db}", query="select * from posts", text_template="{title}\n\n{body}",
                    id_field="id")
    ctx = TaskContext("curate", 0, tmp_path)
    docs = [d for t in src.plan(1 << 20) for d in src.read(t, ctx)]
    assert [(d.id, d.text, d.metadata) for d in docs] == [
        ("7", "Title 7\n\n", {"id": 7, "price": "7.5", "n": 3, "source_name": "db"})]


def test_sql_integral_numeric_in_metadata_is_an_int_not_a_float():
    from corpusforge.sources.sql import _plain

    assert (_plain(decimal.Decimal("7")), _plain(decimal.Decimal("7.25"))) == (7, 7.25)


# -- 2. a run that reads nothing, or mostly quarantines, fails loudly -----------------------------

def _recipe(path, tmp_path, **source):
    import yaml

    recipe = {"sources": [{"name": "s", "path": str(path), **source}], "steps": [],
              "tokenizer": {"vocab_size": 300}, "sharding": {"sequence_length": 32}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return tmp_path / "recipe.yaml"


def _cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "corpusforge.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def _rows(n, field="text"):
    return [{field: f"document number {i} has a few words in it"} for i in range(n)]


def test_run_with_every_record_quarantined_exits_1_naming_the_reason_and_keeps_stats(tmp_path):
    _jsonl(tmp_path / "in.jsonl", _rows(4, "body"))
    out = tmp_path / "out"
    done = _cli("run", _recipe(tmp_path / "in.jsonl", tmp_path), "-o", out, "-q")
    assert done.returncode == 1
    assert (f"no documents: 4 records quarantined (field 'text' is missing or not a string: 4); "
            f"see {out}/quarantine/") in " ".join(done.stdout.split() + done.stderr.split())
    assert json.loads((out / "stats.json").read_text())["documents"] == {"read": 0, "quarantined": 4, "kept": 0}
    assert not (out / "shard_index.json").exists()


def test_rerun_after_fixing_the_text_field_succeeds(tmp_path):
    _jsonl(tmp_path / "in.jsonl", _rows(4, "body"))
    out = tmp_path / "out"
    assert _cli("run", _recipe(tmp_path / "in.jsonl", tmp_path), "-o", out, "-q").returncode == 1
    done = _cli("run", _recipe(tmp_path / "in.jsonl", tmp_path, text_field="body"), "-o", out, "-q")
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "stats.json").read_text())["documents"] == {"read": 4, "quarantined": 0, "kept": 4}
    assert _cli("validate", out).returncode == 0


def test_python_run_over_the_quarantine_fraction_raises_with_counts(tmp_path):
    import pytest

    from corpusforge import run
    from corpusforge.errors import CorpusforgeError

    _jsonl(tmp_path / "in.jsonl", _rows(1) + _rows(19, "body"))
    with pytest.raises(CorpusforgeError) as err:
        run(str(_recipe(tmp_path / "in.jsonl", tmp_path)), output=str(tmp_path / "out"), workers=1)
    assert str(err.value) == (
        "too many records quarantined: 19 of 20 (95%, max_quarantine_fraction is 0.9; field 'text' is missing or "
        f"not a string: 19); see {tmp_path / 'out'}/quarantine/")


def test_raising_max_quarantine_fraction_lets_the_same_input_through(tmp_path):
    import yaml

    from corpusforge import run

    _jsonl(tmp_path / "in.jsonl", _rows(1) + _rows(19, "body"))
    recipe = yaml.safe_load(_recipe(tmp_path / "in.jsonl", tmp_path).read_text())
    stats = run({**recipe, "max_quarantine_fraction": 0.96}, output=str(tmp_path / "out"), workers=1)
    assert stats["documents"] == {"read": 1, "quarantined": 19, "kept": 1}


def test_run_whose_steps_drop_everything_warns_but_succeeds_and_validate_reports_it(tmp_path):
    _jsonl(tmp_path / "in.jsonl", _rows(3))
    recipe = _recipe(tmp_path / "in.jsonl", tmp_path)
    import yaml

    data = yaml.safe_load(recipe.read_text())
    data["steps"] = [{"type": "quality_thresholds", "min_words": 1000}]
    recipe.write_text(yaml.safe_dump(data), encoding="utf-8")
    out = tmp_path / "out"
    done = _cli("run", recipe, "-o", out, "-q")
    assert done.returncode == 0, done.stderr
    assert "warning: the steps dropped all 3 documents read (0 kept, 0 shards)" in done.stderr
    checked = _cli("validate", out)
    assert checked.returncode == 1
    assert "the output holds no samples (0 shards)" in checked.stdout + checked.stderr


# -- 3. ids from id_field that collide are reported; id_prefix makes them unique ------------------

def _two_sources(tmp_path, **options):
    import yaml

    for name, ids in (("a", [1, 2]), ("b", [2, 3])):
        _jsonl(tmp_path / f"{name}.jsonl", [{"id": i, "text": f"source {name} document {i} says something"} for i in ids])
    recipe = {"sources": [{"name": n, "path": str(tmp_path / f"{n}.jsonl"), "id_field": "id", **options} for n in "ab"],
              "steps": [], "tokenizer": {"vocab_size": 300}, "sharding": {"sequence_length": 32, "splits": {"train": 1.0}}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return tmp_path / "recipe.yaml"


def _trace(out, doc_id):
    return [json.loads(line) for line in _cli("trace", out, "--doc-id", doc_id, "--json").stdout.splitlines()]


def test_ids_shared_by_two_sources_are_counted_and_warned_about(tmp_path):
    out = tmp_path / "out"
    done = _cli("run", _two_sources(tmp_path), "-o", out, "-q")
    assert done.returncode == 0, done.stderr
    assert "warning: 1 documents reuse an id another document has (1 ids, e.g. '2' in a, b)" in done.stderr
    assert json.loads((out / "stats.json").read_text())["ids"] == {"duplicated": 1}
    assert len(_trace(out, "2")) == 2


def test_id_prefix_makes_ids_unique_and_trace_finds_one_row(tmp_path):
    out = tmp_path / "out"
    done = _cli("run", _two_sources(tmp_path, id_prefix="{source}/"), "-o", out, "-q")
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr
    assert json.loads((out / "stats.json").read_text())["ids"] == {"duplicated": 0}
    rows = _trace(out, "b/2")
    assert [(r["doc_id"], r["source_name"]) for r in rows] == [("b/2", "b")]


def test_id_prefix_naming_another_field_is_refused():
    import pytest

    from corpusforge.sources.files import FilesSource

    with pytest.raises(ValueError, match="the only field it may name is"):
        FilesSource(name="s", path="x", id_prefix="{path}/")
