"""Media references may point only inside the source's root (symlinks followed) or under what the
recipe allows (``media_roots``, ``allow_external_media``): a record, page or Markdown file cannot
pull a private file into the corpus or make the runner fetch a URL with its credentials."""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import threading
from collections.abc import Iterator

import orjson
import pytest

from corpusforge import run
from corpusforge.media.items import PLACEHOLDER
from corpusforge.recipe import load_recipe
from tests.conftest import SHARED_DATA
from tests.ingest.helpers import read_all
from tests.ingest.test_s3 import s3_endpoint  # noqa: F401  (the moto server fixture)

MEDIA = SHARED_DATA / "media" / "images"


@contextlib.contextmanager
def loopback_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 serving a real PNG at every path; yields its URL and the paths asked for."""
    hits: list[str] = []
    png = (MEDIA / "coffee.png").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        do_HEAD = do_GET  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def layout(tmp_path):
    """``src/`` (the source root, with ok.png and link.png -> ../private/secret.png), ``private/secret.png``
    and ``outside.png`` beside it: real images from the shared data."""
    src, private = tmp_path / "src", tmp_path / "private"
    src.mkdir()
    private.mkdir()
    shutil.copy(MEDIA / "camera.png", src / "ok.png")
    shutil.copy(MEDIA / "chelsea.png", private / "secret.png")
    shutil.copy(MEDIA / "astronaut.png", tmp_path / "outside.png")
    (src / "link.png").symlink_to(private / "secret.png")
    return src, private


def write_records(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def by_caption(docs):
    return {d.text.lstrip(PLACEHOLDER): d for d in docs}


def test_only_the_in_root_reference_is_loaded_and_each_escape_is_quarantined_with_its_reason(tmp_path):
    src, private = layout(tmp_path)
    with loopback_server() as (url, hits):
        write_records(src / "pairs.jsonl", [
            {"image": "ok.png", "caption": "valid"},
            {"image": "../outside.png", "caption": "dotdot"},
            {"image": str(private / "secret.png"), "caption": "absolute"},
            {"image": "link.png", "caption": "symlink"},
            {"image": "s3://other-bucket/x.png", "caption": "bucket"},
            {"image": f"{url}/x.png", "caption": "loopback"},
        ])
        docs, quarantined = read_all(src / "pairs.jsonl", tmp_path, media="pass", text_field="caption")
    assert hits == []
    docs = by_caption(docs)
    assert sorted(docs) == ["absolute", "bucket", "dotdot", "loopback", "symlink", "valid"]
    assert docs["valid"].text == PLACEHOLDER + "valid"
    assert [m["uri"] for m in docs["valid"].media] == [str(src / "ok.png")]
    assert all(docs[c].media is None and docs[c].text == c for c in docs if c != "valid")
    assert all(docs[c].metadata["media_refused"] == 1 for c in docs if c != "valid")
    reasons = {q["location"].rsplit(" at ", 1)[1]: q["reason"] for q in quarantined}
    assert len(quarantined) == 5 and all(q["document_kept"] for q in quarantined)
    assert all(r.startswith("media reference refused: field 'image': ") for r in reasons.values())
    offsets = {c: str(docs[c].offset) for c in docs}
    assert f"is outside the source root {src};" in reasons[offsets["dotdot"]]
    assert f"is outside the source root {src};" in reasons[offsets["absolute"]]
    assert f"is a symlink to {private / 'secret.png'}, outside the source root" in reasons[offsets["symlink"]]
    assert "'s3://other-bucket/x.png' is a remote reference (s3://)" in reasons[offsets["bucket"]]
    assert "is a remote reference (http://)" in reasons[offsets["loopback"]]


@pytest.mark.parametrize("ref", ["/etc/passwd", "file:///etc/passwd", "../../../../../../etc/passwd",
                                 "%2e%2e/%2e%2e/etc/passwd", "ok.png/../../private/secret.png"])
def test_paths_that_leave_the_root_are_refused_however_they_are_spelled(tmp_path, ref):
    src, _ = layout(tmp_path)
    write_records(src / "r.jsonl", [{"image": ref, "caption": "c"}])
    docs, quarantined = read_all(src / "r.jsonl", tmp_path, media="pass", text_field="caption")
    assert [(d.text, d.media) for d in docs] == [("c", None)]
    assert len(quarantined) == 1 and "outside the source root" in quarantined[0]["reason"]


def test_a_symlink_inside_the_root_to_a_file_inside_it_is_loaded(tmp_path):
    src, _ = layout(tmp_path)
    (src / "sub").mkdir()
    (src / "sub" / "again.png").symlink_to(src / "ok.png")
    write_records(src / "r.jsonl", [{"image": "sub/again.png", "caption": "c"}])
    docs, quarantined = read_all(src / "r.jsonl", tmp_path, media="pass", text_field="caption")
    assert quarantined == [] and [m["uri"] for m in docs[0].media] == [str(src / "sub" / "again.png")]


def test_a_records_own_media_list_is_checked_like_a_reference(tmp_path):
    src, private = layout(tmp_path)
    forged = {"uri": str(private / "secret.png"), "kind": "image", "mime": "image/png", "bytes": 1, "hash": "0"}
    write_records(src / "r.jsonl", [{"text": "forged", "media": [forged]},
                                    {"text": "own", "media": [{"uri": str(src / "ok.png"), "hash": "0"}]}])
    docs, quarantined = read_all(src / "r.jsonl", tmp_path, media="pass")
    docs = by_caption(docs)
    assert docs["forged"].media is None and "media" not in docs["forged"].metadata
    assert [m["uri"] for m in docs["own"].media] == [str(src / "ok.png")]
    assert docs["own"].media[0]["hash"] != "0"  # rebuilt from the file's bytes, not taken from the record
    assert len(quarantined) == 1 and "field 'media'" in quarantined[0]["reason"]


def test_media_roots_lets_a_named_folder_through_and_nothing_else(tmp_path):
    src, private = layout(tmp_path)
    write_records(src / "r.jsonl", [{"image": "link.png", "caption": "symlink"},
                                    {"image": str(private / "secret.png"), "caption": "absolute"},
                                    {"image": "../outside.png", "caption": "dotdot"}])
    docs, quarantined = read_all(src / "r.jsonl", tmp_path, media="pass", text_field="caption",
                                 media_roots=[str(private)])
    docs = by_caption(docs)
    assert [m["uri"] for m in docs["symlink"].media] == [str(src / "link.png")]
    assert [m["uri"] for m in docs["absolute"].media] == [str(private / "secret.png")]
    assert docs["dotdot"].media is None and len(quarantined) == 1


def test_allow_external_media_lets_local_files_through_but_not_urls(tmp_path):
    src, _ = layout(tmp_path)
    with loopback_server() as (url, hits):
        write_records(src / "r.jsonl", [{"image": "../outside.png", "caption": "dotdot"},
                                        {"image": f"{url}/x.png", "caption": "loopback"}])
        docs, quarantined = read_all(src / "r.jsonl", tmp_path, media="pass", text_field="caption",
                                     allow_external_media=True)
    docs = by_caption(docs)
    assert hits == [] and docs["dotdot"].media[0]["uri"] == str(tmp_path / "outside.png")
    assert docs["loopback"].media is None and "remote reference (http://)" in quarantined[0]["reason"]


def test_a_url_prefix_in_media_roots_is_fetched_and_others_on_the_same_host_are_not(tmp_path):
    src, _ = layout(tmp_path)
    with loopback_server() as (url, hits):
        write_records(src / "r.jsonl", [{"image": f"{url}/pics/x.png", "caption": "allowed"},
                                        {"image": f"{url}/pics/../private/y.png", "caption": "climbs"},
                                        {"image": f"{url}/picsevil/z.png", "caption": "lookalike"}])
        docs, quarantined = read_all(src / "r.jsonl", tmp_path, media="pass", text_field="caption",
                                     media_roots=[f"{url}/pics/"])
    docs = by_caption(docs)
    assert hits and all(h.startswith("/pics/x.png") for h in hits)
    assert docs["allowed"].media[0]["uri"] == f"{url}/pics/x.png"
    assert docs["climbs"].media is None and docs["lookalike"].media is None and len(quarantined) == 2


def test_html_images_outside_the_root_are_refused_and_the_page_keeps_its_text(tmp_path):
    src, private = layout(tmp_path)
    with loopback_server() as (url, hits):
        (src / "page.html").write_text(
            f"<html><body><p>Words of the page.</p><img src='ok.png'><img src='../outside.png'>"
            f"<img src='{private / 'secret.png'}'><img src='file://{private / 'secret.png'}'><img src='link.png'>"
            f"<img src='s3://other-bucket/x.png'><img src='{url}/x.png'><p>After.</p></body></html>")
        docs, quarantined = read_all(src, tmp_path, media="pass", include=["*.html"])
    assert hits == []
    (page,) = docs
    assert page.text == f"Words of the page.\n{PLACEHOLDER}\nAfter."
    assert [m["uri"] for m in page.media] == [str(src / "ok.png")]
    assert page.metadata["media_refused"] == 5 and page.metadata["media_skipped"] == 1  # the web URL
    assert len(quarantined) == 5 and {q["location"] for q in quarantined} == {str(src / "page.html")}
    assert all(q["reason"].startswith("media reference refused: <img> ") for q in quarantined)


def test_markdown_images_are_alt_text_and_never_read(tmp_path):
    src, private = layout(tmp_path)
    (src / "notes.md").write_text(f"# Notes\n\nA picture: ![the secret]({private / 'secret.png'}) and "
                                  "![passwords](/etc/passwd) in a sentence of a Markdown file.\n")
    docs, quarantined = read_all(src, tmp_path, media="pass", include=["*.md"])
    assert quarantined == [] and docs[0].media is None
    assert "the secret" in docs[0].text and "secret.png" not in docs[0].text and "root:" not in docs[0].text


def test_a_remote_source_loads_media_under_its_prefix_only(s3_endpoint, tmp_path):  # noqa: F811
    import s3fs

    fs = s3fs.S3FileSystem()
    for bucket in ("corpus", "other-bucket"):
        fs.mkdir(bucket)
    fs.put(str(MEDIA / "camera.png"), "corpus/in/ok.png")
    fs.put(str(MEDIA / "chelsea.png"), "corpus/private/secret.png")
    fs.put(str(MEDIA / "chelsea.png"), "other-bucket/x.png")
    fs.pipe("corpus/in/r.jsonl", b"".join(orjson.dumps(r) + b"\n" for r in [
        {"image": "ok.png", "caption": "valid"}, {"image": "../private/secret.png", "caption": "dotdot"},
        {"image": "s3://corpus/private/secret.png", "caption": "absolute"},
        {"image": "s3://other-bucket/x.png", "caption": "bucket"}]))
    docs, quarantined = read_all("s3://corpus/in", tmp_path, media="pass", text_field="caption")
    docs = by_caption(docs)
    assert [m["uri"] for m in docs["valid"].media] == ["s3://corpus/in/ok.png"]
    assert all(docs[c].media is None for c in ("dotdot", "absolute", "bucket")) and len(quarantined) == 3
    allowed, quarantined = read_all("s3://corpus/in", tmp_path, media="pass", text_field="caption",
                                    media_roots=["s3://other-bucket/"])
    assert [m["uri"] for m in by_caption(allowed)["bucket"].media] == ["s3://other-bucket/x.png"]
    assert len(quarantined) == 2


def test_a_multimodal_run_reports_refused_media_and_keeps_every_document(tmp_path):
    src, private = layout(tmp_path)
    write_records(src / "pairs.jsonl", [{"image": "ok.png", "caption": "a man with a camera on a lawn"},
                                        {"image": "link.png", "caption": "a cat through a symlink"},
                                        {"image": str(private / "secret.png"), "caption": "a cat by absolute path"}])
    recipe = {"preset": "multimodal", "sources": [{"path": str(src / "pairs.jsonl"), "text_field": "caption"}],
              "steps": [], "tokenizer": {"vocab_size": 300}, "media": {"codebook_size": 4, "image_size": 32},
              "sharding": {"sequence_length": 64}, "output": {"documents": "jsonl"}}
    stats = run(load_recipe(recipe), output=str(tmp_path / "out"), workers=1, progress=False)
    out = tmp_path / "out"
    kept = [orjson.loads(x) for f in (out / "documents").glob("*.jsonl") for x in f.read_bytes().splitlines()]
    assert sorted(len(d["metadata"].get("media", [])) for d in kept) == [0, 0, 1]
    assert stats["documents"]["read"] == 3 and stats["documents"]["kept"] == 3
    entries = [orjson.loads(x) for f in (out / "quarantine").rglob("*.jsonl") for x in f.read_bytes().splitlines()]
    assert len(entries) == 2 and all(e["reason"].startswith("media reference refused") for e in entries)
    assert stats["quarantine"] == {"media reference refused": 2} and stats["documents"]["quarantined"] == 0


def test_media_items_that_arrive_as_record_data_are_never_opened(tmp_path):
    """An API's records may carry a ``media`` list naming any file: the shard stage opens an item
    only if its bytes have the hash a files source recorded when it read them."""
    src, private = layout(tmp_path)
    secret = str(private / "secret.png")
    body = json.dumps({"items": [
        {"text": "no hash at all", "media": [{"uri": secret, "kind": "image", "mime": "image/png"}]},
        {"text": "a guessed hash", "media": [{"uri": secret, "kind": "image", "mime": "image/png", "hash": "0" * 32}]},
    ]}).encode()

    class Api(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        recipe = {"preset": "multimodal", "steps": [], "tokenizer": {"vocab_size": 300},
                  "sources": [{"type": "rest_api", "name": "api", "url": f"http://127.0.0.1:{server.server_address[1]}/",
                               "records_path": "items", "rate_limit": 50},
                              {"path": str(src / "ok.png")}],
                  "media": {"codebook_size": 4, "image_size": 32}, "sharding": {"sequence_length": 64}}
        stats = run(load_recipe(recipe), output=str(tmp_path / "out"), workers=1, progress=False)
    finally:
        server.shutdown()
        server.server_close()
    out = tmp_path / "out"
    entries = [orjson.loads(x) for f in (out / "quarantine").rglob("*.jsonl") for x in f.read_bytes().splitlines()]
    # Refused where codebooks are trained and again where documents are tokenized.
    assert sorted({(e["location"], e["reason"]) for e in entries}) == [
        (secret, "media bytes differ from those read at ingest (hash mismatch); not opened"),
        (secret, "media item has no recorded hash (it was not read by a files source); not opened"),
    ]
    assert stats["documents"]["read"] == 3
