"""WARC/ARC archives: response records to page text, damaged archives read as far as they go."""

from __future__ import annotations

import re

from tests.ingest.helpers import read_all


def test_warc_response_records_become_documents_with_url_and_status(data, tmp_path):
    docs, quarantined = read_all(data / "warc" / "dolma" / "sample-0000.warc.gz", tmp_path)
    assert len(docs) == 24 and quarantined == []
    first = docs[0]
    assert first.metadata["url"] == "https://www.semanticscholar.org/research/research-team"
    assert first.metadata["http_status"] == 200
    assert first.metadata["format"] == "warc"
    assert first.offset == 865  # byte offset of the record in the compressed archive


def test_arc_and_uncompressed_warc_are_read_alike(data, tmp_path):
    [arc], _ = read_all(data / "warc" / "warcio" / "example.arc.gz", tmp_path)
    [warc], _ = read_all(data / "warc" / "warcio" / "example.warc", tmp_path)
    assert arc.metadata["url"] == warc.metadata["url"] == "http://example.com/"
    assert arc.text == warc.text
    assert "This domain is established to be used for illustrative examples" in arc.text
    assert "warc_record_id" in warc.metadata and "warc_record_id" not in arc.metadata


def test_an_arc_archive_reads_to_the_same_documents_every_time(data, tmp_path):
    # warcio invents a random WARC-Record-ID for each converted ARC record: none may reach the output.
    first, _ = read_all(data / "warc" / "warcio" / "example.arc.gz", tmp_path / "a")
    again, _ = read_all(data / "warc" / "warcio" / "example.arc.gz", tmp_path / "b")
    assert [(d.id, d.text, d.metadata) for d in first] == [(d.id, d.text, d.metadata) for d in again]


def test_charset_comes_from_the_http_header(data, tmp_path):
    docs, _ = read_all(data / "warc" / "commoncrawl" / "CC-MAIN-2020-34-sample.warc.gz", tmp_path)
    page = next(d for d in docs if d.metadata["url"] == "http://01spb.ru/company/")
    assert page.metadata["encoding"] == "cp1251"
    assert re.search("[а-яА-Я]{4}", page.text)


def test_a_record_cut_short_is_quarantined_as_truncated(data, tmp_path):
    docs, quarantined = read_all(data / "warc" / "edge" / "clipped-truncated.warc.gz", tmp_path)
    assert docs == []
    [q] = quarantined
    assert q["reason"].startswith("truncated WARC record (13068 bytes missing; http://www.houstonpress.com/")


def test_a_damaged_archive_is_read_up_to_the_damage(data, tmp_path):
    docs, quarantined = read_all(data / "warc" / "edge" / "warcio-example-trunc.warc", tmp_path)
    assert [d.metadata["url"] for d in docs] == ["http://example.com/"]
    assert quarantined == []
