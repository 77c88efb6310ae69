"""report.html: a self-contained page whose SVG bars carry the numbers of stats.json."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import orjson
import pytest

from corpusforge.observe.html_report import cluster_size_groups
from tests.observe.conftest import PAIRS, TRIPLES

SVG = "{http://www.w3.org/2000/svg}"
XHTML = "{http://www.w3.org/1999/xhtml}"


def _page(out: Path) -> ET.Element:
    text = (out / "report.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>\n")
    return ET.fromstring(text.split("\n", 1)[1])  # well-formed XML, or this raises


def _bars(page: ET.Element, chart: str) -> dict[tuple[str, str], float]:
    svg = next(s for s in page.iter(f"{SVG}svg") if s.get("data-chart") == chart)
    return {(r.get("data-series"), r.get("data-label")): float(r.get("data-value"))
            for r in svg.iter(f"{SVG}rect") if r.get("class") == "bar"}


def _stats(out: Path) -> dict:
    return orjson.loads((out / "stats.json").read_bytes())


def test_report_fetches_nothing(card_output):
    page = _page(card_output)
    tags = {el.tag.split("}")[1] for el in page.iter()}
    assert not tags & {"script", "link", "img", "iframe", "object"}
    for el in page.iter():
        for attr in ("src", "href"):
            assert el.get(attr) is None, (el.tag, attr)


def test_length_histograms_hold_every_document_before_and_after_curation(card_output):
    bars = _bars(_page(card_output), "lengths")
    stats = _stats(card_output)
    assert sum(v for (s, _), v in bars.items() if s == "as read") == stats["documents"]["read"]
    assert sum(v for (s, _), v in bars.items() if s == "after curation") == stats["documents"]["kept"]
    assert ("as read", "1,000-1,777") in bars


def test_drop_reasons_languages_and_tokens_charts_match_stats(card_output):
    page, stats = _page(card_output), _stats(card_output)
    drops = _bars(page, "drops")
    quality = next(s for s in stats["stages"][0]["steps"] if s["name"] == "quality_thresholds")
    for reason, n in quality["drops"].items():
        assert drops[("drops", f"quality_thresholds: {reason}")] == n
    assert drops[("drops", "exact_dedup: exact_duplicate")] == TRIPLES * 2 + PAIRS
    langs = _bars(page, "languages")
    assert langs[("languages", "en")] == stats["languages"]["en"]
    tokens = _bars(page, "tokens_by_source")
    assert {label: v for (_, label), v in tokens.items()} == \
        {k: v["tokens"] for k, v in stats["tokens_by_source"].items()}
    funnel = _bars(page, "funnel")
    assert funnel[("funnel", "minhash_dedup")] == stats["documents"]["kept"]


def test_dedup_cluster_size_chart_counts_clusters_by_size(card_output):
    bars = _bars(_page(card_output), "clusters:exact_dedup_0")
    assert bars == {("clusters", "2"): PAIRS, ("clusters", "3"): TRIPLES}


def test_cluster_sizes_above_ten_are_grouped():
    assert cluster_size_groups({2: 7, 10: 1, 11: 2, 20: 1, 50: 3, 5000: 1}) == \
        [("2", 7), ("10", 1), ("11-20", 3), ("21-50", 3), ("≥1001", 1)]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(card_output, tmp_path):
    shot = tmp_path / "report.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2400",
                    (card_output / "report.html").as_uri()], check=True, capture_output=True, timeout=120)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a blank page of this size is 14 kB
