from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from corpusforge.cli import main
from corpusforge.embeddings.dataset import EmbeddingDataset, interpolate
from corpusforge.errors import CorpusforgeError
from corpusforge.state import read_json

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def train(wikitext_run) -> EmbeddingDataset:
    return EmbeddingDataset(wikitext_run, "train")


def test_rows_carry_text_embedding_and_metadata(train, wikitext_run):
    assert len(train) == read_json(wikitext_run / "embeddings" / "index.json")["splits"]["train"]["rows"]
    row = train[0]
    assert set(row) == {"text", "embedding", "metadata"}
    assert row["embedding"].shape == (32,) and row["embedding"].dtype == np.float32
    meta = row["metadata"]
    assert meta["split"] == "train" and meta["char_count"] == len(row["text"]) and meta["title"]
    assert 100 <= meta["token_count"] <= 2000 and meta["source_name"] == "wikitext2"
    assert train[-1]["metadata"]["text_id"] == train[len(train) - 1]["metadata"]["text_id"]
    with pytest.raises(IndexError):
        train[len(train)]


def test_get_batch_stacks_rows_in_the_order_asked(train):
    batch = train.get_batch([2, 0, 1])
    assert batch["embeddings"].shape == (3, 32)
    assert batch["texts"] == [train[i]["text"] for i in (2, 0, 1)]
    assert np.array_equal(batch["embeddings"][1], train.embedding(0))


def test_slerp_moves_along_the_great_circle(train):
    a, b = train.embedding(0), train.embedding(1)
    omega = np.arccos(np.clip(a @ b, -1, 1))
    assert np.allclose(train.interpolate_embeddings(0, 1, 0.0), a, atol=1e-6)
    assert np.allclose(train.interpolate_embeddings(0, 1, 1.0), b, atol=1e-6)
    quarter = train.interpolate_embeddings(0, 1, 0.25)
    assert np.linalg.norm(quarter) == pytest.approx(1.0, abs=1e-6)
    assert np.arccos(np.clip(quarter @ a, -1, 1)) == pytest.approx(0.25 * omega, abs=1e-4)
    lerp = train.interpolate_embeddings(0, 1, 0.25, method="lerp")
    assert np.linalg.norm(lerp) == pytest.approx(1.0, abs=1e-6) and not np.allclose(lerp, quarter, atol=1e-4)
    with pytest.raises(ValueError, match="alpha"):
        train.interpolate_embeddings(0, 1, 1.5)


def test_slerp_of_unnormalised_vectors_interpolates_the_norm():
    v = interpolate(np.array([2.0, 0.0]), np.array([0.0, 4.0]), 0.5, normalized=False)
    assert np.linalg.norm(v) == pytest.approx(3.0) and v[0] == pytest.approx(v[1])


def test_dataloader_batches_every_row_once_in_a_seeded_order(train):
    ids = [train[i]["metadata"]["text_id"] for i in range(len(train))]
    batches = list(train.dataloader(batch_size=4))
    assert batches[0]["embeddings"].shape == (4, 32) and batches[0]["embeddings"].dtype == torch.float32
    assert batches[0]["token_count"].dtype == torch.int64
    assert [i for b in batches for i in b["text_ids"]] == ids
    one = [i for b in train.dataloader(batch_size=4, shuffle=True, seed=3) for i in b["text_ids"]]
    two = [i for b in train.dataloader(batch_size=4, shuffle=True, seed=3) for i in b["text_ids"]]
    assert one == two != ids and sorted(one) == sorted(ids)


def test_an_output_without_embeddings_or_split_is_a_clear_error(tmp_path, wikitext_run):
    with pytest.raises(CorpusforgeError, match="no embeddings/index.json"):
        EmbeddingDataset(tmp_path)
    with pytest.raises(CorpusforgeError, match="no split 'dev'"):
        EmbeddingDataset(wikitext_run, "dev")


def test_embed_command_regenerates_with_matryoshka_float16_from_the_staged_documents(wikitext_run, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(wikitext_run, out)
    before = EmbeddingDataset(out, "train")
    full = before.get_batch(range(len(before)))
    shards = (out / "shard_index.json").read_bytes()
    res = CliRunner().invoke(main, ["embed", str(out), "--dimensions", "16", "--dtype", "float16", "-q"])
    assert res.exit_code == 0, res.output
    index = read_json(out / "embeddings" / "index.json")
    assert index["dim"] == 16 and index["dtype"] == "float16" and index["dimensions"] == 16
    after = EmbeddingDataset(out, "train")
    got = after.get_batch(range(len(after)))
    assert got["texts"] == full["texts"]
    want = full["embeddings"][:, :16] / np.linalg.norm(full["embeddings"][:, :16], axis=1, keepdims=True)
    assert np.allclose(got["embeddings"], want, atol=2e-3)  # float16 storage
    assert (out / "shard_index.json").read_bytes() == shards  # nothing else was rerun


def test_embed_command_on_a_folder_that_is_no_run_fails_with_the_reason(tmp_path):
    res = CliRunner().invoke(main, ["embed", str(tmp_path)])
    assert res.exit_code == 2 and "not a corpusforge output" in res.output


def test_a_second_run_of_the_same_recipe_reuses_the_embeddings(wikitext_run, tmp_path):
    from corpusforge import run
    from corpusforge.recipe import load_recipe

    out = tmp_path / "again"
    shutil.copytree(wikitext_run, out)
    parts = sorted(p for p in (out / "embeddings").iterdir() if p.name != "index.json")  # the split files
    stamps = [p.stat().st_mtime_ns for p in parts]
    index = (out / "embeddings" / "index.json").read_bytes()
    run(load_recipe(out / "recipe.yaml"), output=str(out), workers=1)
    assert [p.stat().st_mtime_ns for p in parts] == stamps
    assert (out / "embeddings" / "index.json").read_bytes() == index
