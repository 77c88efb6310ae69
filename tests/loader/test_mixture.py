import json

import numpy as np
import pytest

from corpusforge import run
from corpusforge.errors import RecipeError
from corpusforge.loader import ShardIterator

from .conftest import DATA

BOOKS = DATA / "prose" / "gutenberg"


def run_mixture(out, mixture, max_records=None, workers=1, task_bytes=64_000_000):
    return run({
        "sources": [{"name": "small", "path": str(BOOKS / "pg26184.txt"), "text_unit": "paragraph"},
                    {"name": "big", "path": str(BOOKS / "pg1513.txt"), "text_unit": "paragraph"}],
        "steps": [],
        "tokenizer": {"vocab_size": 400},
        "sharding": {"sequence_length": 64, "splits": {"train": 1.0}, "mixture": mixture,
                     "max_records": max_records or {}},
        "executor": {"task_bytes": task_bytes},
    }, output=str(out), workers=workers)  # fmt: skip


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return run_mixture(tmp_path_factory.mktemp("plain") / "out", {})


def test_weights_upsample_and_downsample_sources(plain, tmp_path):
    stats = run_mixture(tmp_path / "out", {"small": 2.0, "big": 0.5})
    before, after = plain["tokens_by_source"], stats["tokens_by_source"]
    assert after["small"]["tokens"] == 2 * before["small"]["tokens"]
    assert 0.35 < after["big"]["tokens"] / before["big"]["tokens"] < 0.65
    index = json.loads((tmp_path / "out" / "shard_index.json").read_text())
    assert index["mixture"] == {"small": 2.0, "big": 0.5}
    assert index["tokens_by_source"] == after
    assert after["small"]["share"] + after["big"]["share"] == pytest.approx(1.0)


def test_mixture_writes_every_token_it_counts(tmp_path):
    stats = run_mixture(tmp_path / "out", {"small": 1.5})
    rows = np.concatenate([b["input_ids"] for b in ShardIterator(tmp_path / "out", batch_size=100, drop_last=False)])
    assert np.count_nonzero(rows) == stats["tokens"] == sum(s["tokens"] for s in stats["tokens_by_source"].values())


def test_mixture_naming_an_unknown_source_is_refused(tmp_path):
    with pytest.raises(RecipeError, match=r"sharding.mixture names unknown sources \['web'\]"):
        run_mixture(tmp_path / "out", {"web": 1.0})


def test_max_records_takes_exactly_that_many_documents_of_a_source(plain, tmp_path):
    stats = run_mixture(tmp_path / "out", {}, {"big": 100})
    assert stats["tokens_by_source"]["big"]["documents"] == 100
    assert stats["tokens_by_source"]["small"] == {**plain["tokens_by_source"]["small"],
                                                  "share": stats["tokens_by_source"]["small"]["share"]}
    index = json.loads((tmp_path / "out" / "shard_index.json").read_text())
    assert index["max_records"] == {"big": 100}
    assert index["tokens_by_source"]["big"]["documents"] == 100


def test_max_records_sample_is_the_same_for_any_task_split_and_worker_count(tmp_path):
    def sample(out, workers, task_bytes):
        stats = run({"sources": [{"name": "wiki", "path": str(DATA / "wikitext-2" / "valid.txt"), "text_unit": "line"}],
                     "steps": [], "tokenizer": {"vocab_size": 400},
                     "sharding": {"sequence_length": 64, "splits": {"train": 1.0}, "max_records": {"wiki": 300}},
                     "executor": {"task_bytes": task_bytes}}, output=str(out), workers=workers)
        return stats, json.loads((out / "_work" / "mixture.json").read_text())

    one, chosen_one = sample(tmp_path / "one", 1, 64_000_000)
    many, chosen_many = sample(tmp_path / "many", 2, 200_000)
    assert many["input"]["tasks"] > one["input"]["tasks"] == 1
    assert one["tokens_by_source"]["wiki"]["documents"] == many["tokens_by_source"]["wiki"]["documents"] == 300
    assert chosen_one == chosen_many
    assert chosen_one["available"] == {"wiki": 300}


def test_max_records_then_weight_writes_each_sampled_document_twice(tmp_path):
    capped = run_mixture(tmp_path / "capped", {}, {"big": 50})
    doubled = run_mixture(tmp_path / "doubled", {"big": 2.0}, {"big": 50})
    assert doubled["tokens_by_source"]["big"]["documents"] == 100
    assert doubled["tokens_by_source"]["big"]["tokens"] == 2 * capped["tokens_by_source"]["big"]["tokens"]


def test_max_records_above_the_source_size_keeps_everything(plain, tmp_path):
    stats = run_mixture(tmp_path / "out", {}, {"small": 10**9})
    assert stats["tokens_by_source"]["small"]["tokens"] == plain["tokens_by_source"]["small"]["tokens"]


def test_max_records_naming_an_unknown_source_is_refused(tmp_path):
    with pytest.raises(RecipeError, match=r"sharding.max_records names unknown sources \['web'\]"):
        run_mixture(tmp_path / "out", {}, {"web": 5})
