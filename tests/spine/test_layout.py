"""The output layout names every file a run writes, and a run writes where the layout says."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from corpusforge import layout as names
from corpusforge.layout import OutputLayout, is_temporary, staged_stage
from tests.conftest import small_recipe


@pytest.fixture(scope="module")
def built(tmp_path_factory, shared_data) -> Path:
    """A small Gutenberg run through the command line: dedup, kept documents, audit and one quarantined record."""
    root = tmp_path_factory.mktemp("layout")
    book = shared_data / "prose" / "gutenberg" / "pg1513.txt"
    paras = [" ".join(p.split()) for p in book.read_text(encoding="utf-8").split("\n\n") if len(p) > 400][:20]
    extra = root / "extra.jsonl"
    extra.write_text("\n".join([*(json.dumps({"text": p}) for p in paras), '{"text": "broken'])
                     + "\n", encoding="utf-8")
    recipe = small_recipe(
        [{"name": "gutenberg", "path": str(book), "text_unit": "paragraph"}, {"name": "extra", "path": str(extra)}],
        steps=[{"type": "normalize"}, {"type": "quality_thresholds"}, {"type": "exact_dedup"},
               {"type": "minhash_dedup"}],
        output={"documents": "jsonl", "audit": True}, executor={"task_bytes": 100_000})
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "corpusforge.cli", "run", str(path), "-o", str(root / "out"),
                           "--workers", "1", "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return root / "out"


def _expected(out: Path) -> tuple[set[Path], list[Path]]:
    """What the layout says this run wrote: exact files, and folders whose contents their step owns."""
    lay = OutputLayout(out)
    stats = json.loads(lay.stats.read_text())
    index = json.loads(lay.index.read_text())
    stages = {s["name"]: s for s in stats["stages"]}
    splits = list(index["splits"])
    files = {lay.marker, lay.lock, lay.plan, lay.index, lay.stats, lay.recipe, lay.version, lay.manifest,
             lay.card, lay.report, lay.tokenizer(index["tokenizer"]["path"]), lay.tokenizer_config,
             lay.special_tokens_map}
    folders = []
    segment = 0
    while staged_stage(segment) in stages:
        files |= {lay.staged(segment, t) for t in range(stages[staged_stage(segment)]["tasks"])}
        segment += 1
    for name, stage in stages.items():
        files |= {lay.record(name, t) for t in range(stage["tasks"])}
        if stage["kind"] == "decide":
            step, k = name.rsplit("_", 1)
            folders.append(lay.step_dir(step, int(k)))
    shard_tasks = stages["shards"]["tasks"]
    for split in splits:
        files |= {lay.task_lineage(split, t) for t in range(shard_tasks)}
    for entry in index["shards"]:
        split, n = entry["split"], int(Path(entry["path"]).name.split(".")[0].split("_")[1])
        shard = lay.shard(split, n, ".safetensors")
        assert lay.rel(shard) == entry["path"] == lay.shard_name(split, n, ".safetensors")
        files |= {shard, lay.lineage_table(split, entry["path"])}
    for t in range(shard_tasks):
        files.add(lay.documents_part(t, 0, "jsonl"))
    task_parts = {p for split in splits for t in range(shard_tasks) for k in range(len(index["shards"]))
                  for p in [lay.task_shard_part(split, t, k, ".safetensors")] if p.exists()}
    assert len(task_parts) == len(index["shards"])  # one task part per final shard (no shuffle)
    files |= task_parts
    files |= {lay.quarantine_file("curate", t) for t in range(stages["curate"]["tasks"])
              if lay.quarantine_file("curate", t).exists()}
    files |= {lay.audit_file(s, t) for s in stages for t in range(stages[s]["tasks"]) if lay.audit_file(s, t).exists()}
    return files, folders


def test_every_file_of_a_run_is_named_by_the_layout(built):
    files, folders = _expected(built)
    unknown = sorted(str(p.relative_to(built)) for p in built.rglob("*")
                     if p.is_file() and p not in files and not any(p.is_relative_to(f) for f in folders)
                     and not is_temporary(p.name))
    assert unknown == []


def test_the_layout_paths_of_the_recipe_exist_where_the_run_writes_them(built):
    lay = OutputLayout(built)
    files, folders = _expected(built)
    assert sorted(str(p) for p in files if not p.is_file()) == []
    assert all(f.is_dir() for f in folders) and len(folders) == 2  # exact_dedup_0, minhash_dedup_1
    assert lay.quarantine_file("curate", 1).is_file()  # the broken record, in the second task (the JSONL source)
    assert lay.audit_file("curate", 0).is_file()  # quality_thresholds' drops
    assert json.loads(lay.marker.read_text())  # the marker says whose output this is
    stats = json.loads(lay.stats.read_text())
    assert stats["quarantine"] and sum(stats["quarantine"].values()) == 1


def test_top_level_entries_of_a_run_are_known_output_entries(built):
    index = json.loads(OutputLayout(built).index.read_text())
    top = {p.name for p in built.iterdir()}
    assert top - set(index["splits"]) <= names.OUTPUT_ENTRIES
    assert {names.WORK, names.STATE, names.INDEX, names.STATS, names.LINEAGE, names.DOCUMENTS, names.AUDIT,
            names.QUARANTINE} <= top


def test_a_step_folder_finds_the_staged_documents_it_signed(tmp_path):
    lay = OutputLayout(tmp_path / "out")
    step = lay.step_dir("minhash_dedup", 1)
    assert OutputLayout.of_step(step) == lay
    assert lay.staged_of_step(step, 3) == tmp_path / "out" / "_work" / "curate_1" / "task_000003.parquet"
    assert lay.staged_of_step(lay.step_dir("exact_dedup", 0), 0) == lay.staged(0, 0) == \
        tmp_path / "out" / "_work" / "curate" / "task_000000.parquet"


def test_relative_names_are_the_paths_under_the_root(tmp_path):
    lay = OutputLayout(tmp_path)
    assert lay.rel(lay.marker) == names.MARKER and lay.rel(lay.lock) == names.LOCK
    assert lay.rel(lay.erase_journal) == names.ERASE_JOURNAL and lay.rel(lay.erasures) == names.ERASURES
    assert lay.rel(lay.embeddings_index) == names.EMBEDDINGS_INDEX
    assert lay.rel(lay.documents_lineage_part(3)) == "lineage/documents/part_000003.parquet"
    assert lay.rel(lay.documents_part(3, 1, "jsonl.gz")) == "documents/part_000003_0001.jsonl.gz"
    assert lay.rel(lay.task_shard_part("val", 2, 1, ".bin")) == "_work/shards/val/t000002_0001.bin"
    assert names.temporary(lay.stats, "abcd1234").name == ".stats.json.tmp-abcd1234"
    assert is_temporary(names.temporary(lay.stats).name) and not is_temporary(lay.stats.name)
    assert names.is_journal_temporary(names.journal_temporary(lay.index, "t0").name)
    with pytest.raises(ValueError, match="unknown tracker store"):
        lay.tracker("neptune")


def test_members_for_writers_mirrors_and_remote_keys_agree_with_the_output_paths(tmp_path):
    lay = OutputLayout(tmp_path)
    prefix = lay.task_shard_prefix("train", 4)
    assert OutputLayout.prefix_part(prefix, 2, ".bin") == lay.task_shard_part("train", 4, 2, ".bin") == \
        tmp_path / "_work" / "shards" / "train" / "t000004_0002.bin"
    assert lay.rel(OutputLayout.prefix_part(lay.shuffled_prefix("val"), 0, ".npy")) == "_work/shuffled/val/s000000_0000.npy"
    assert lay.shuffle_unpacked("val") == OutputLayout.unpacked_beside(lay.shuffled_prefix("val")) == \
        tmp_path / "_work" / "shuffled" / "val" / ".unpacked"
    assert names.record_name("shards", 7) == lay.rel(lay.record("shards", 7)) == "_state/shards/000007.json"
    assert lay.rel(lay.media_embeddings_part("image", 3, ".parquet")) == "embeddings/image/part_000003.parquet"
    assert lay.rel(lay.upload_ledger) == names.UPLOAD_LEDGER and lay.rel(lay.loader_cache) == "_loader_cache"
    assert lay.rel(lay.group_split("title", "ab12")) == "_work/splits/title_ab12.json"
    assert lay.rel(lay.source_work("web")) == "_work/sources/web" and lay.rel(lay.judge_cache) == "_work/llm_judge"


def test_documented_layout_example_runs_and_prints_what_it_says(capsys):
    doc = (Path(__file__).resolve().parents[2] / "docs" / "layout.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    exec(compile(code, "docs/layout.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    said = [line.split("# ", 1)[1] for line in code.splitlines() if "# " in line]
    assert printed[0] == said[0] and printed[1] == said[1] and printed[2] == said[2] and printed[4] == said[3]
    assert printed[3] == "/tmp/cf-layout-demo/train/shard_00000.safetensors"
