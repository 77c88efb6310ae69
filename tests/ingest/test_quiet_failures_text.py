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
