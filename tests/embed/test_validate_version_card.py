"""Embeddings inside ``validate``, ``diff``, ``version.json`` and the data card."""

from __future__ import annotations

import shutil

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from corpusforge.cli import main
from corpusforge.shards.validate import validate_output
from corpusforge.state import atomic_write_json, file_sha256, read_json

TRAIN = "embeddings/train_embeddings.safetensors"


@pytest.fixture
def copy(wikitext_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(wikitext_run, out)
    return out


def _rewrite(out, change, fix_checksum: bool = True) -> None:
    """Rewrite the train matrix with ``change(vectors)``; with ``fix_checksum`` the index gets its new sha256
    (so only the content checks can notice)."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    path = out / TRAIN
    with safe_open(str(path), "np") as f:
        meta, vecs = f.metadata(), f.get_tensor("embeddings")
    save_file({"embeddings": change(vecs.copy())}, str(path), metadata=meta)
    if fix_checksum:
        index = read_json(out / "embeddings" / "index.json")
        index["splits"]["train"]["parts"][0]["sha256"] = file_sha256(path)
        atomic_write_json(out / "embeddings" / "index.json", index)


def test_a_run_with_embeddings_validates(wikitext_run):
    faults, summary = validate_output(wikitext_run)
    assert faults == [] and summary["samples"] > 0


def test_a_vector_scaled_by_three_fails_validate_even_with_its_checksum_updated(copy):
    def scale(v):
        v[5] *= 3
        return v

    _rewrite(copy, scale)
    faults, _ = validate_output(copy)
    assert len(faults) == 1 and faults[0].startswith(f"{TRAIN}: row 5 has L2 norm 3.0000, but the vectors are normalized")


def test_a_changed_matrix_fails_on_its_checksum(copy):
    def scale(v):
        v[5] *= 3
        return v

    _rewrite(copy, scale, fix_checksum=False)
    faults, _ = validate_output(copy)
    assert f"{TRAIN}: sha256 differs from embeddings/index.json" in faults


def test_a_nan_fails_validate(copy):
    def nan(v):
        v[7, 3] = np.nan
        return v

    _rewrite(copy, nan)
    assert validate_output(copy)[0] == [f"{TRAIN}: row 7 holds NaN or infinity (1 rows)"]


def test_a_matrix_with_a_row_missing_or_another_width_fails_validate(copy):
    rows = read_json(copy / "embeddings" / "index.json")["splits"]["train"]["rows"]
    _rewrite(copy, lambda v: v[:-1])
    assert validate_output(copy)[0] == [f"{TRAIN}: shape ({rows - 1}, 32), table {rows} rows; the index says ({rows}, 32)"]
    _rewrite(copy, lambda v: np.ascontiguousarray(np.concatenate([v, v[:1]])[:, :16]))
    assert "the index says" in validate_output(copy)[0][0]


def test_a_deleted_embeddings_file_or_index_fails_validate(copy):
    (copy / "embeddings" / "val.parquet").unlink()
    assert validate_output(copy)[0] == ["embeddings/val.parquet: listed in embeddings/index.json but missing"]
    shutil.rmtree(copy / "embeddings")
    faults = validate_output(copy)[0]
    assert len(faults) == 1 and "embeddings/index.json: missing, but the recipe has an embeddings section" in faults[0]


def test_version_json_holds_the_embedding_files_the_model_hash_and_what_they_are(wikitext_run, tiny_qwen3):
    from corpusforge.models.fingerprint import model_sha256

    version = read_json(wikitext_run / "version.json")
    index = read_json(wikitext_run / "embeddings" / "index.json")
    for split in ("train", "val", "test"):
        assert version["files"][f"embeddings/{split}_embeddings.safetensors"] == index["splits"][split]["parts"][0]["sha256"]
        assert version["files"][f"embeddings/{split}.parquet"] == file_sha256(wikitext_run / "embeddings" / f"{split}.parquet")
    emb = version["embeddings"]
    assert (emb["pooling"], emb["dim"], emb["normalized"], emb["model"]) == ("last_token", 32, True, str(tiny_qwen3))
    assert emb["rows"] == {s: e["rows"] for s, e in index["splits"].items()}
    assert emb["model_sha256"] == model_sha256(tiny_qwen3) == version["models"]["embeddings.model"]["sha256"]


def test_reembedding_with_another_pooling_shows_in_diff(copy, wikitext_run):
    res = CliRunner().invoke(main, ["embed", str(copy), "--pooling", "mean", "-q"])
    assert res.exit_code == 0, res.output
    assert validate_output(copy)[0] == []
    res = CliRunner().invoke(main, ["diff", str(wikitext_run), str(copy), "--json"])
    assert res.exit_code == 1
    d = orjson.loads(res.output)
    assert d["embeddings"] == {"pooling": ["last_token", "mean"]} and not d["recipe_changed"]
    assert d["files"]["changed"] == [f"embeddings/{s}_embeddings.safetensors" for s in ("test", "train", "val")]
    text = CliRunner().invoke(main, ["diff", str(wikitext_run), str(copy)]).output
    assert "embeddings pooling: last_token -> mean" in text
    assert "`mean`, L2-normalised" in (copy / "README.md").read_text(encoding="utf-8")  # the card follows


def test_the_card_describes_the_embeddings(wikitext_run, tiny_qwen3):
    card = (wikitext_run / "README.md").read_text(encoding="utf-8")
    index = read_json(wikitext_run / "embeddings" / "index.json")
    section = card.split("## Embeddings", 1)[1].split("\n## ", 1)[0]
    total = sum(e["rows"] for e in index["splits"].values())
    assert f"| model | `{tiny_qwen3}` (content sha256 `{index['model_sha256'][:16]}…`) |" in section
    assert "| pooling | `last_token`, L2-normalised |" in section and "| dimensions | 32 |" in section
    assert f"({total:,} in all)" in section and f"train {index['splits']['train']['rows']:,}" in section
    assert f"{index['over_window']:,} texts were longer (cut to it)" in section


def test_version_json_holds_the_codebooks_media_vectors_and_the_encoder_hash(tmp_path):
    transformers = pytest.importorskip("transformers")
    from corpusforge import run
    from corpusforge.models.fingerprint import model_sha256
    from tests.conftest import SHARED_DATA

    vision = tmp_path / "clip"
    transformers.CLIPVisionModel(transformers.CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
        patch_size=16)).save_pretrained(vision)
    transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        vision)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("camera.png", "chelsea.png"):
        shutil.copy(SHARED_DATA / "media" / "images" / name, folder / name)
    out = tmp_path / "out"
    run({"preset": "multimodal", "sources": [{"path": str(folder)}], "tokenizer": {"vocab_size": 300},
         "media": {"codebook_size": 8, "image_size": 32, "encoders": {"image": str(vision)}},
         "sharding": {"sequence_length": 64, "splits": {"train": 1.0}}}, output=str(out), workers=1, progress=False)
    version = read_json(out / "version.json")
    codebooks = sorted(p.relative_to(out).as_posix() for p in (out / "codebooks").rglob("*") if p.is_file())
    vectors = sorted(p.relative_to(out).as_posix() for p in (out / "embeddings" / "image").iterdir())
    assert codebooks and len(vectors) == 2
    for rel in codebooks + vectors:
        assert version["files"][rel] == file_sha256(out / rel)
    assert version["models"] == {"media.encoders.image": {"model": str(vision), "sha256": model_sha256(vision)}}
