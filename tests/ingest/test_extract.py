"""Extraction through the files source: content type by bytes, every format to text or a reason."""

from __future__ import annotations

import shutil

from corpusforge.extract.detect import sniff
from corpusforge.extract.markup import markdown_to_text, rst_to_text
from tests.ingest.helpers import read_all, word_f1

PAGE = "05844573ca7e1fba714d715bb11ca08c26e25328999c74a1cb3bc8a0e4399f0f"


def test_html_page_yields_main_text_close_to_gold_with_title(data, tmp_path):
    docs, quarantined = read_all(data / "html" / "scrapinghub" / f"{PAGE}.html", tmp_path)
    assert quarantined == []
    [doc] = docs
    gold = (data / "html" / "scrapinghub" / f"{PAGE}.gold.txt").read_text()
    assert word_f1(doc.text, gold) > 0.95
    assert doc.metadata["format"] == "html"
    assert doc.metadata["title"]
    assert doc.metadata["encoding"] == "utf-8"


def test_html_without_declared_charset_is_decoded_by_detection(tmp_path):
    body = "<p>" + "Le café de la gare était fermé ce matin, à cause de la grève générale. " * 8 + "</p>"
    page = f"<html lang='fr'><head><title>Grève</title></head><body><article>{body}</article></body></html>"
    (tmp_path / "page.html").write_bytes(page.encode("cp1252"))
    [doc], _ = read_all(tmp_path / "page.html", tmp_path)
    assert "café de la gare était fermé" in doc.text
    assert doc.metadata["language"] == "fr"


def test_html_declaring_a_wrong_charset_is_still_decoded(tmp_path):
    body = "<p>" + "Ästhetik und Übermut: Größe zählt für die Bürger in München. " * 8 + "</p>"
    page = f"<html><head><meta charset='utf-8'><title>t</title></head><body><article>{body}</article></body></html>"
    (tmp_path / "page.htm").write_bytes(page.encode("latin-1"))
    [doc], _ = read_all(tmp_path / "page.htm", tmp_path)
    assert "Größe zählt für die Bürger in München" in doc.text


def test_pdf_text_layer_and_page_count(data, tmp_path):
    [doc], _ = read_all(data / "docs" / "pypdf" / "crazyones.pdf", tmp_path)
    expected = (data / "docs" / "pypdf" / "crazyones.pdf.expected.txt").read_text()
    assert doc.text.split() == expected.split()
    assert doc.metadata["page_count"] == 1


def test_encrypted_pdf_without_password_is_quarantined_with_that_reason(data, tmp_path):
    docs, quarantined = read_all(data / "docs" / "pypdf" / "r6-user-password.pdf", tmp_path)
    assert docs == []
    assert quarantined[0]["reason"] == "encrypted PDF (no password configured)"


def test_encrypted_pdf_opens_with_password_from_an_environment_variable(data, tmp_path, monkeypatch):
    monkeypatch.setenv("PDF_PW", "asdfzxcv")
    [doc], _ = read_all(data / "docs" / "pypdf" / "r6-user-password.pdf", tmp_path, pdf_password_env="PDF_PW")
    assert doc.text.split() == ["pdf", "encryption", "test", "password:", "asdfzxcv"]
    assert doc.metadata["encrypted"] is True


def test_encrypted_pdf_with_wrong_password_is_quarantined(data, tmp_path):
    _, quarantined = read_all(data / "docs" / "pypdf" / "r6-user-password.pdf", tmp_path, pdf_password="nope")
    assert quarantined[0]["reason"] == "encrypted PDF (wrong password)"


def test_image_only_pdf_is_quarantined_as_no_text_layer(data, tmp_path):
    _, quarantined = read_all(data / "docs" / "markitdown" / "MEDRPT-2024-PAT-3847_medical_report_scan.pdf", tmp_path)
    assert quarantined[0]["reason"].startswith("no text layer")


def test_docx_pptx_xlsx_match_their_expected_text(data, tmp_path):
    for name in ("raw_text.docx", "paragraphs_and_tables.docx", "raw_text.pptx", "raw_text.xlsx"):
        [doc], _ = read_all(data / "docs" / "textract" / name, tmp_path)
        expected = (data / "docs" / "textract" / f"{name}.expected.txt").read_text()
        assert word_f1(doc.text, expected) >= 0.95, name


def test_docx_keeps_table_cells_in_reading_order(data, tmp_path):
    [doc], _ = read_all(data / "docs" / "textract" / "paragraphs_and_tables.docx", tmp_path)
    text = doc.text
    assert text.index("before the table") < text.index("Row 1, Column 1") < text.index("INNER TABLE")
    assert text.index("INNER TABLE") < text.index("after the table")


def test_pptx_records_slide_count(data, tmp_path):
    [doc], _ = read_all(data / "docs" / "markitdown" / "test.pptx", tmp_path)
    assert doc.metadata["slide_count"] == 6


def test_legacy_office_files_are_quarantined_with_a_clear_reason(data, tmp_path):
    for name in ("raw_text.doc", "raw_text.xls"):
        shutil.copy(data / "docs" / "textract" / name, tmp_path / name)
    docs, quarantined = read_all(tmp_path, tmp_path, include=["*.doc", "*.xls"])
    assert docs == []
    reasons = sorted(q["reason"].split(":")[0] for q in quarantined)
    assert reasons == ["legacy Office format (DOC)", "legacy Office format (XLS)"]


def test_media_is_recognised_by_magic_bytes_even_under_a_text_name(data, tmp_path):
    shutil.copy(data / "media" / "images" / "chelsea.jpg", tmp_path / "notes.txt")
    docs, quarantined = read_all(tmp_path / "notes.txt", tmp_path)
    assert docs == []
    assert quarantined[0]["reason"].startswith("media file: enable the multimodal stage")
    assert "image/jpeg" in quarantined[0]["reason"]


def test_media_passes_on_as_a_media_document_when_asked(data, tmp_path):
    [doc], _ = read_all(data / "media" / "audio" / "jfk.flac", tmp_path, media="pass")
    assert doc.text == ""
    assert doc.media == [{"uri": str(data / "media" / "audio" / "jfk.flac"), "kind": "audio",
                          "mime": "audio/flac", "bytes": 1152693, "hash": "9fcad749f728c578410f4756522ddc53"}]
    assert doc.metadata["media"] == doc.media


def test_sniffing_tells_video_containers_and_webm_apart(data):
    assert sniff((data / "media" / "video" / "realshort.mp4").read_bytes()[:64], "x.bin").family == "video"
    assert sniff((data / "media" / "video" / "test.webm").read_bytes()[:64], "x.bin").family == "video"
    assert sniff(b"%PDF-1.7\n", "report.txt").family == "pdf"


def test_markdown_becomes_plain_text_with_headings_kept():
    md = "# Title\n\nSome **bold** and [a link](http://x.org).\n\n## Part 2\n\n```python\nx = 1\n```\n- item `code`\n"
    assert markdown_to_text(md) == "Title\n\nSome bold and a link.\n\nPart 2\n\nx = 1\n- item code"


def test_restructuredtext_becomes_plain_text_with_headings_kept():
    rst = "Title\n=====\n\nSee :func:`run` and ``code`` and `docs <http://x.org>`_.\n\n.. note::\n\n   Careful.\n"
    assert rst_to_text(rst) == "Title\n\nSee run and code and docs.\n\n   Careful."


def test_xml_yields_its_text_content(tmp_path):
    (tmp_path / "feed.xml").write_text("<?xml version='1.0'?><rss><item><title>Hello</title><d>World <b>x</b></d></item></rss>")
    [doc], _ = read_all(tmp_path / "feed.xml", tmp_path)
    assert doc.text == "Hello\nWorld\nx"


def test_code_is_verbatim_with_language_from_extension_or_shebang(tmp_path):
    (tmp_path / "a.rs").write_text("fn main() {\n    println!(\"hi\");\n}\n")
    (tmp_path / "tool").write_text("#!/usr/bin/env python3\nprint('hi')\n")
    docs, _ = read_all(tmp_path, tmp_path)
    by_name = {d.source.rsplit("/", 1)[-1]: d for d in docs}
    assert by_name["a.rs"].text == "fn main() {\n    println!(\"hi\");\n}\n"
    assert by_name["a.rs"].metadata["language"] == "rust"
    assert by_name["tool"].metadata["language"] == "python"


def test_code_records_its_path_and_the_nearest_license_file(tmp_path):
    (tmp_path / "repo" / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "repo" / "LICENSE.txt").write_text("MIT License\n")
    (tmp_path / "repo" / "src" / "pkg" / "m.py").write_text("x = 1\n")
    (tmp_path / "repo" / "src" / "pkg" / "COPYING").write_text("GPL\n")
    (tmp_path / "repo" / "src" / "a.c").write_text("int x;\n")
    docs, _ = read_all(tmp_path / "repo", tmp_path, include=["*.py", "*.c"])
    meta = {d.metadata["path"]: d.metadata.get("license_file") for d in docs}
    assert meta == {"src/a.c": "LICENSE.txt", "src/pkg/m.py": "src/pkg/COPYING"}


def test_text_template_builds_the_text_from_jsonl_fields(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"title": "T1", "body": "B1"}\n{"title": "T2"}\n')
    docs, quarantined = read_all(tmp_path / "a.jsonl", tmp_path, text_template="{title}\n\n{body}")
    assert [d.text for d in docs] == ["T1\n\nB1"]
    assert "title" not in docs[0].metadata  # already in the text (issue 23)
    assert quarantined[0]["reason"] == "text_template field 'body' is missing"


def test_text_template_over_csv_columns(tmp_path):
    (tmp_path / "a.csv").write_text("title,body\nHello,World\n")
    [doc], _ = read_all(tmp_path / "a.csv", tmp_path, text_template="{title}: {body}")
    assert doc.text == "Hello: World"


def test_a_name_promising_a_binary_format_over_text_bytes_is_quarantined(tmp_path):
    (tmp_path / "report.pdf").write_text("this is not a PDF at all\n")
    _, quarantined = read_all(tmp_path / "report.pdf", tmp_path)
    assert quarantined[0]["reason"] == "content does not match the file name (.pdf says pdf, the bytes are text)"


def test_documents_over_max_extract_bytes_are_quarantined_not_loaded(data, tmp_path):
    _, quarantined = read_all(data / "docs" / "pypdf" / "crazyones.pdf", tmp_path, max_extract_bytes=10_000)
    assert quarantined[0]["reason"] == "file too large to extract (over 10000 bytes)"


def test_a_zip_archive_has_its_members_read_as_files(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "bundle.zip", "w") as zf:
        zf.writestr("a.txt", "hello")
    docs, quarantined = read_all(tmp_path / "bundle.zip", tmp_path)
    assert [(d.source, d.text) for d in docs] == [(f"{tmp_path}/bundle.zip!a.txt", "hello")] and quarantined == []


def test_pdf_tables_keep_their_reading_order_in_auto_mode(data, tmp_path):
    import difflib
    import re

    ref = markdown_to_text((data / "docs" / "markitdown" / "movie-theater-booking-2024.expected.md").read_text())

    def similarity(mode: str) -> float:
        [doc], _ = read_all(data / "docs" / "markitdown" / "movie-theater-booking-2024.pdf", tmp_path, pdf_mode=mode)
        a, b = re.findall(r"\w+", doc.text.lower()), re.findall(r"\w+", ref.lower())
        return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()

    assert similarity("auto") > 0.99
    assert similarity("plain") < 0.9  # pypdf's plain mode reads this table's cells out of order
