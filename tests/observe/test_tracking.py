"""Tracking: a run logs its recipe, counts and card to a real local MLflow store and an offline W&B run."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import orjson
import pytest

from corpusforge import run
from corpusforge.errors import CorpusforgeError
from corpusforge.observe.tracking import check_tracking, flatten_params, run_metrics
from corpusforge.recipe import load_recipe
from tests.conftest import small_recipe
from tests.observe.conftest import documented_section

mlflow = pytest.importorskip("mlflow")
wandb = pytest.importorskip("wandb")

def _wandb_records(path: Path) -> list:
    """Records of a ``.wandb`` file: a 7-byte header, then LevelDB-log chunks of protobuf records."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    out, pos, buf, block = [], 7, b"", 32768
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _, n, kind = struct.unpack("<IHB", data[pos:pos + 7])
        buf += data[pos + 7:pos + 7 + n]
        pos += 7 + n
        if kind in (1, 4):  # a full record, or the last chunk of one
            rec = pb.Record()
            rec.ParseFromString(buf)
            out.append(rec)
            buf = b""
    return out


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("tracking")
    mp = pytest.MonkeyPatch()
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        mp.setenv(var, str(root / var.lower()))
    recipe = small_recipe(
        [{"name": "gutenberg", "path": str(shared_data / "prose" / "gutenberg" / "pg1513.txt"),
          "text_unit": "paragraph"}],
        steps=[{"type": "normalize"}, {"type": "quality_thresholds"}],
        tracking=documented_section("tracking"))
    out = root / "out"
    try:
        stats = run(recipe, output=str(out), workers=1, progress=False)
    finally:
        mp.undo()
    return out, stats


def test_mlflow_run_holds_params_metrics_and_the_card(tracked):
    from mlflow.tracking import MlflowClient

    out, stats = tracked
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("corpusforge")
    (found,) = client.search_runs([exp.experiment_id])
    assert found.info.status == "FINISHED" and found.info.run_name == "test"
    params = found.data.params
    assert params["sharding.sequence_length"] == "128" and params["steps.1.type"] == "quality_thresholds"
    assert params["tokenizer.vocab_size"] == "600" and params["seed"] == "7"
    m = found.data.metrics
    assert m["documents.kept"] == stats["documents"]["kept"] and m["tokens"] == stats["tokens"]
    quality = next(s for s in stats["stages"][0]["steps"] if s["name"] == "quality_thresholds")
    assert m["step.02.quality_thresholds.docs_out"] == quality["docs_out"]
    assert m["step.02.quality_thresholds.dropped"] == sum(quality["drops"].values()) > 0
    assert "step.01.normalize.docs_per_s" in m and "stage.shards.seconds" in m
    names = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert names == {"README.md", "report.html", "stats.json", "shard_index.json"}
    local = Path(client.download_artifacts(found.info.run_id, "stats.json", str(out.parent / "dl")))
    assert orjson.loads(local.read_bytes()) == orjson.loads((out / "stats.json").read_bytes())
    assert (out / "mlartifacts").is_dir()  # beside the database, not in the working directory


def test_a_tracked_output_is_one_fresh_may_delete(tracked):
    from corpusforge.state import check_deletable

    out, _ = tracked
    assert {"mlflow.db", "mlartifacts", "wandb"} <= {p.name for p in out.iterdir()}
    check_deletable(out)  # the trackers' own stores are part of the output, not someone else's files


def test_wandb_offline_run_folder_holds_the_metrics_config_and_files(tracked):
    out, stats = tracked
    (run_dir,) = (out / "wandb").glob("offline-run-*")
    (store,) = run_dir.glob("run-*.wandb")
    records = _wandb_records(store)
    history = {}
    for r in records:
        if r.WhichOneof("record_type") == "history":
            history.update({"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in r.history.item})
    assert history["documents.kept"] == stats["documents"]["kept"] and history["tokens"] == stats["tokens"]
    (run_rec,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    config = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in run_rec.config.update}
    assert config["sharding"]["sequence_length"] == 128 and run_rec.project == "corpusforge"
    files = {p.name for p in (run_dir / "files").iterdir()}
    assert {"README.md", "report.html", "stats.json", "shard_index.json"} <= files


def test_params_are_the_recipe_flattened_to_dotted_keys():
    assert flatten_params({"a": {"b": 1, "c": [1, 2]}, "steps": [{"type": "x", "k": None}], "s": "t"}) == \
        {"a.b": "1", "a.c": "[1, 2]", "steps.0.type": "x", "steps.0.k": "null", "s": "t"}


def test_metrics_name_every_step_in_order(tracked):
    _, stats = tracked
    names = sorted({k.rsplit(".", 1)[0] for k in run_metrics(stats) if k.startswith("step.")})
    assert names == ["step.00.read", "step.01.normalize", "step.02.quality_thresholds"]


def test_a_missing_tracker_library_fails_before_any_work(monkeypatch, tmp_path):
    recipe = load_recipe({"sources": [{"path": str(tmp_path)}], "tracking": {"wandb": {"enabled": True}}})
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb now raises ImportError
    with pytest.raises(CorpusforgeError, match=r"tracking.wandb.enabled needs the wandb package: pip install"):
        check_tracking(recipe)


def test_tracking_and_card_sections_leave_the_fingerprint_alone(tmp_path):
    base = {"sources": [{"path": str(tmp_path)}]}
    plain = load_recipe(base).fingerprint()
    tracked = load_recipe({**base, "tracking": {"mlflow": {"enabled": True}}, "card": {"license": "mit"}})
    assert tracked.fingerprint() == plain
