"""The data card: Hugging Face front matter and sections that say what stats.json and the index say."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
import yaml
from click.testing import CliRunner

from corpusforge.cli import main as cli
from corpusforge.errors import CorpusforgeError
from corpusforge.observe.card import size_category, write_card
from corpusforge.observe.histogram import LENGTH_EDGES, LengthHistogram, bin_label
from corpusforge.recipe import load_recipe
from tests.observe.conftest import PAIRS, TRIPLES, documented_section


def _card(out: Path) -> tuple[dict, str]:
    text = (out / "README.md").read_text(encoding="utf-8")
    _, head, body = text.split("---\n", 2)
    return yaml.safe_load(head), body


def _section(body: str, title: str) -> str:
    return body.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _table(section: str) -> list[list[str]]:
    rows = [ln for ln in section.splitlines() if ln.startswith("|")][2:]
    return [[c.strip() for c in r.strip("|").split(" | ")] for r in rows]


def _stats(out: Path) -> dict:
    return orjson.loads((out / "stats.json").read_bytes())


@pytest.mark.parametrize(("n", "bucket"), [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (99_999, "10K<n<100K"),
                                           (10**9, "1B<n<10B"), (10**12, "n>1T")])
def test_size_category_uses_the_hub_buckets(n, bucket):
    assert size_category(n) == bucket


def test_length_histogram_bins_are_log_spaced_and_bounded():
    h = LengthHistogram()
    for n in (0, 1, 2, 5, 6, 100, 177, 178, 10**9):
        h.add(n)
    assert LENGTH_EDGES[:10] == (0, 1, 2, 3, 6, 10, 18, 32, 56, 100)
    assert len(h.counts) == len(LENGTH_EDGES) == 34
    nonzero = {bin_label(i): c for i, c in enumerate(h.counts) if c}
    assert nonzero == {"0": 1, "1": 1, "2": 1, "3-5": 1, "6-9": 1, "100-177": 2, "178-315": 1, "≥100,000,000": 1}


def test_front_matter_is_hub_metadata_of_this_output(card_output):
    meta, _ = _card(card_output)
    stats = _stats(card_output)
    index = orjson.loads((card_output / "shard_index.json").read_bytes())
    assert meta["pretty_name"] == "Card test corpus"
    assert meta["license"] == ["other", "cc-by-sa-3.0"] and meta["license_name"] == "Public-Domain"
    assert meta["language"][0] == "en" and set(meta["language"]) <= set(stats["languages"])
    assert meta["size_categories"] == [size_category(stats["documents"]["kept"])] == ["1K<n<10K"]
    assert meta["task_categories"] == ["text-generation"]
    # SafeTensors shards are no 🤗 Datasets builder: the default config is the documents, read as one split.
    assert meta["configs"][0] == {"config_name": "default",
                                  "data_files": [{"split": "train", "path": "documents/*.parquet"}]}
    assert meta["configs"][1] == {"config_name": "documents",
                                  "data_files": [{"split": "train", "path": "documents/*.parquet"}]}
    lineage = meta["configs"][2]
    assert lineage["config_name"] == "lineage"
    assert [f["split"] for f in lineage["data_files"]] == ["train", "val", "test"]
    for f in lineage["data_files"]:
        assert sorted(p.relative_to(card_output).as_posix() for p in card_output.glob(f["path"])) == \
            sorted("lineage/" + s["path"].rsplit(".", 1)[0] + ".parquet" for s in index["shards"]
                   if s["split"] == f["split"])
    assert "dataset_info" not in meta  # it would describe the shards, not the default config's rows

def test_every_step_is_listed_once_with_its_counts_and_reasons(card_output):
    _, body = _card(card_output)
    rows = {r[0].strip("`"): r for r in _table(_section(body, "Processing steps"))}
    assert list(rows) == ["read", "normalize", "language_id", "quality_thresholds", "exact_dedup", "minhash_dedup"]
    quality = next(s for s in _stats(card_output)["stages"][0]["steps"] if s["name"] == "quality_thresholds")
    q = rows["quality_thresholds"]
    assert (q[2], q[3]) == (f"{quality['docs_in']:,}", f"{quality['docs_out']:,}")
    assert q[6] == ", ".join(f"{k} {v:,}" for k, v in quality["drops"].items())
    removed = TRIPLES * 2 + PAIRS
    assert rows["exact_dedup"][4] == str(removed) and rows["exact_dedup"][6] == f"exact_duplicate {removed}"


def test_dedup_section_gives_removals_and_cluster_sizes(card_output):
    _, body = _card(card_output)
    rows = {r[0]: r for r in _table(_section(body, "Deduplication"))}
    exact = rows["exact_dedup_0"]
    assert (exact[2], exact[4], exact[5]) == (str(TRIPLES * 2 + PAIRS), str(TRIPLES + PAIRS), f"2: {PAIRS}, 3: {TRIPLES}")
    assert "minhash_dedup_1" in rows


def test_tokens_tokenizer_schema_and_sources_follow_the_index(card_output):
    _, body = _card(card_output)
    index = orjson.loads((card_output / "shard_index.json").read_bytes())
    stats = _stats(card_output)
    tokens = {r[0]: r for r in _table(_section(body, "Tokens"))}
    for split, t in index["splits"].items():
        assert tokens[split][2] == f"{t['tokens']:,}" and tokens[split][1] == f"{stats['splits'][split]['documents']:,}"
    sources = {r[0]: r for r in _table(_section(body, "Sources"))}
    assert set(sources) == {"gutenberg", "wikitext", "dups"}
    assert sources["dups"][5] == str(TRIPLES * 3 + PAIRS * 2)  # documents read
    assert sources["wikitext"][7] == f"{stats['tokens_by_source']['wikitext']['tokens']:,}"
    tok = _section(body, "Tokenizer")
    assert "| vocabulary size | 600 |" in tok and "`<PAD>`=0" in tok and "`<THINK>`=15" in tok
    schema = _table(_section(body, "Shard schema"))
    assert schema[0] == ["`input_ids`", "int32", "(samples, 128)"] and len(schema) == 4


def test_the_load_snippets_in_the_card_run(card_output, monkeypatch, capsys, tmp_path):
    _, body = _card(card_output)
    blocks = re.findall(r"```python\n(.*?)```", _section(body, "How to load"), re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(card_output)
    exec(blocks[0], {})
    assert "'input_ids': (8, 128)" in capsys.readouterr().out
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    scope: dict = {}
    exec(blocks[1], scope)
    assert len(scope["docs"]) == _stats(card_output)["documents"]["kept"]


def test_histograms_count_every_document_read_and_curated(card_output):
    stats = _stats(card_output)
    assert sum(stats["lengths"]["read"]) == stats["documents"]["read"]
    assert sum(stats["lengths"]["curated"]) == stats["documents"]["kept"]
    assert stats["sources"]["dups"] == {"tasks": 1, "bytes": (card_output.parent / "dups.jsonl").stat().st_size,
                                        "documents_read": TRIPLES * 3 + PAIRS * 2}


def test_write_card_rebuilds_from_the_files_after_an_output_changes(card_output, tmp_path):
    out = tmp_path / "copy"
    out.mkdir()
    for name in ("stats.json", "shard_index.json", "recipe.yaml"):
        (out / name).write_bytes((card_output / name).read_bytes())
    stats = _stats(out)
    stats["documents"]["kept"] = 999  # as a command that removed documents would leave it
    (out / "stats.json").write_bytes(orjson.dumps(stats))
    path = write_card(out)
    meta, body = _card(out)
    assert path == out / "README.md" and meta["size_categories"] == ["n<1K"] and "999 kept" in body
    assert (out / "report.html").is_file()


def test_an_output_whose_stats_predate_the_card_still_gets_one(card_output, tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    for name in ("shard_index.json", "recipe.yaml"):
        (out / name).write_bytes((card_output / name).read_bytes())
    stats = _stats(card_output)
    for key in ("sources", "lengths", "languages", "licenses"):
        del stats[key]
    for stage in stats["stages"]:
        stage.get("result", {}).pop("cluster_sizes", None)
    (out / "stats.json").write_bytes(orjson.dumps(stats))
    write_card(out)
    meta, body = _card(out)
    assert meta["license"] == ["other", "cc-by-sa-3.0"] and "language" not in meta
    exact = next(r for r in _table(_section(body, "Deduplication")) if r[0] == "exact_dedup_0")
    assert exact[2] == str(TRIPLES * 2 + PAIRS) and exact[4:] == ["", ""]  # clusters unknown, not 0
    assert "No length histogram in stats.json" in (out / "report.html").read_text()


def test_the_documented_card_section_sets_license_name_and_description(card_output, tmp_path):
    out = tmp_path / "copy"
    out.mkdir()
    for name in ("stats.json", "shard_index.json"):
        (out / name).write_bytes((card_output / name).read_bytes())
    recipe = yaml.safe_load((card_output / "recipe.yaml").read_text())
    recipe["card"] = documented_section("card")
    (out / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    load_recipe(recipe)  # the documented section is a valid recipe section
    write_card(out)
    meta, body = _card(out)
    assert meta["license"] == "cc-by-sa-3.0" and "license_name" not in meta
    assert meta["pretty_name"] == "WikiText sample" and "Paragraphs of WikiText-2, normalized" in body


def test_card_command_rewrites_the_card_and_names_a_bad_output(card_output, tmp_path):
    before = (card_output / "README.md").read_bytes()
    (card_output / "README.md").unlink()
    res = CliRunner().invoke(cli, ["card", str(card_output)])
    assert res.exit_code == 0, res.output
    assert (card_output / "README.md").read_bytes() == before
    res = CliRunner().invoke(cli, ["card", str(tmp_path)])
    assert res.exit_code == 2 and f"{tmp_path / 'stats.json'}: missing" in res.output
    with pytest.raises(CorpusforgeError, match="stats.json: missing"):
        write_card(tmp_path)
