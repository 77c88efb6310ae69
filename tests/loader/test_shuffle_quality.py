"""The cross-shard shuffle against a true global permutation, on an output of several books."""

import pytest

from corpusforge import run
from corpusforge.loader import ShardIterator
from corpusforge.loader.quality import shuffle_quality, stream_quality

from .conftest import DATA


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    out = tmp_path_factory.mktemp("books") / "out"
    run({"sources": [{"path": str(DATA / "prose" / "gutenberg" / name), "text_unit": "paragraph"}
                     for name in ("pg26184.txt", "pg84.txt", "pg1513.txt")],
         "steps": [], "tokenizer": {"vocab_size": 400},
         "sharding": {"sequence_length": 64, "splits": {"train": 1.0}, "max_shard_bytes": 40_000}},
        output=str(out), workers=1)
    return out


def test_reading_in_order_gives_the_extremes_of_both_measures():
    import numpy as np

    sources = np.repeat(np.arange(4), 100)
    assert stream_quality(np.arange(400), sources, 10) == {"single_source_batches": 1.0,
                                                           "neighbour_distance": 0.0025}


def test_default_shuffle_mixes_sources_like_a_global_permutation(books):
    q = shuffle_quality(ShardIterator(books, batch_size=16, seed=1))
    assert q["sources"] == 3
    ours, ideal = q["loader"], q["global_permutation"]
    assert ours["single_source_batches"] <= ideal["single_source_batches"] + 0.02
    assert ours["neighbour_distance"] == pytest.approx(ideal["neighbour_distance"], rel=0.05)


def test_a_block_smaller_than_the_split_still_mixes_shards(books):
    ds = ShardIterator(books, batch_size=16, seed=1, shuffle_block_size=512)
    assert ds.num_samples > 4 * 512
    q = shuffle_quality(ds)
    assert q["loader"]["single_source_batches"] < 0.2
    assert q["loader"]["neighbour_distance"] > 0.25


def test_the_within_shard_shuffle_leaves_most_batches_in_one_source(books):
    local = shuffle_quality(ShardIterator(books, batch_size=16, seed=1, shuffle_algo="shard_block"))["loader"]
    in_order = shuffle_quality(ShardIterator(books, batch_size=16, shuffle=False))["loader"]
    assert local["single_source_batches"] > 0.8 and in_order["single_source_batches"] > 0.9
    assert local["neighbour_distance"] < 0.02


@pytest.mark.parametrize("world_size,workers", [(2, 2), (3, 1)])
def test_cross_shard_shuffle_resumes_exactly_across_rank_and_worker_counts(books, world_size, workers):
    from corpusforge.loader import validate_epoch

    ds = ShardIterator(books, batch_size=6, seed=2, shuffle_block_size=300, world_size=world_size, rank=0)
    assert validate_epoch(ds, epoch=3, num_workers=workers)["ok"]
