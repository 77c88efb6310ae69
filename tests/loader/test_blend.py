"""Several outputs blended by weight at load time: shares, each source's own shuffle, exact resume."""

import itertools
import json

import numpy as np
import pytest

from corpusforge.loader import ShardDataset, ShardIterator, validate_epoch
from corpusforge.loader.blend import CHUNK, Blend

from .conftest import make_shards


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("other") / "out", packing="pad")


def ids(batches):
    return np.concatenate([b["sample_id"] for b in batches])


def test_blend_gives_each_source_its_share_to_within_a_sample_per_chunk():
    blend = Blend([3.0, 1.0, 0.5], seed=0)
    src, k = blend.assign(0, 10 * CHUNK)
    counts = np.bincount(src, minlength=3)
    np.testing.assert_allclose(counts, 10 * CHUNK * np.array([3, 1, 0.5]) / 4.5, atol=1)
    for s in range(3):  # each source's samples are taken in order: 0, 1, 2, ...
        np.testing.assert_array_equal(k[src == s], np.arange(counts[s]))
    src2, k2 = blend.assign(12345, 23456)  # any range is the same slice of the one stream
    np.testing.assert_array_equal(src2, blend.assign(0, 23456)[0][12345:])
    np.testing.assert_array_equal(k2, blend.assign(0, 23456)[1][12345:])


def test_blended_outputs_stream_by_weight_with_each_source_shuffled_on_its_own(shards, other):
    a = ShardIterator(shards).num_samples
    b = ShardIterator(other).num_samples
    ds = ShardIterator({shards: 0.25, other: 0.75}, batch_size=10, seed=2, samples_per_epoch=4 * b,
                       return_sample_ids=True)
    stream = ids(list(ds))
    from_b = stream[stream >= a] - a
    assert abs(len(from_b) - 0.75 * len(stream)) <= 2  # upsampled: about three passes over the second output
    assert sorted(from_b[:b]) == list(range(b))  # the first pass is a permutation of it
    assert not np.array_equal(from_b[:b], from_b[b : 2 * b])  # the next pass is shuffled anew
    rows = ShardIterator({shards: 0.25, other: 0.75}, batch_size=10, seed=2, samples_per_epoch=4 * b)
    first = next(iter(rows))
    expect = [ShardIterator(shards)[i] if i < a else ShardIterator(other)[i - a] for i in stream[:10]]
    np.testing.assert_array_equal(first["input_ids"], np.stack([e["input_ids"] for e in expect]))


@pytest.mark.parametrize("offset", [3, 77])
def test_blend_resumes_exactly_across_worker_counts(shards, other, offset):
    kw = {"batch_size": 8, "seed": 5, "return_sample_ids": True}
    full = ids(ShardDataset({shards: 1.0, other: 2.0}, **kw).loader())
    loader = ShardDataset({shards: 1.0, other: 2.0}, **kw).loader(num_workers=2)
    head = [b["sample_id"].numpy() for b in itertools.islice(iter(loader), offset)]
    state = json.loads(json.dumps(loader.state_dict()))
    resumed = ShardDataset({shards: 1.0, other: 2.0}, **kw)
    resumed.load_state_dict(state)
    np.testing.assert_array_equal(np.concatenate(head + [ids(resumed.loader(num_workers=1))]), full)
    with pytest.raises(ValueError, match="blend_weights"):
        ShardIterator({shards: 1.0, other: 3.0}, **kw).load_state_dict(state)


def test_validate_epoch_accounts_for_a_blend(shards, other):
    report = validate_epoch(ShardIterator({shards: 1.0, other: 1.0}, batch_size=6, world_size=2, rank=0,
                                          drop_last=False), num_workers=2)
    assert report["ok"] and report["duplicates"] == 0 and report["skipped"] == 0
