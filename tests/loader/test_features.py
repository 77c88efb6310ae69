"""len, indexing, epochs of any length, infinite streams, checksums and the loud small-split error."""

import itertools
import json
import shutil

import numpy as np
import pytest

from corpusforge.loader import ShardDataset, ShardIterator, validate_epoch


def ids(batches):
    return np.concatenate([b["sample_id"] for b in batches])


def test_len_is_the_batch_count_of_each_rank(shards):
    for drop_last, world in ((True, 1), (False, 1), (True, 2), (False, 3)):
        ds = ShardIterator(shards, batch_size=7, world_size=world, rank=world - 1, drop_last=drop_last)
        assert len(ds) == len(list(ds))
    samples = ShardDataset(shards, batch_size=7, world_size=2, rank=1, drop_last=False, yield_samples=True)
    assert len(samples) == len(list(samples)) == 83 * 7 + 4  # 1170 = 83 steps of 14 + a tail of 8, cut 4/4
    with pytest.raises(TypeError, match="max_tokens"):
        len(ShardIterator(shards, max_tokens=100))
    with pytest.raises(TypeError, match="infinite"):
        len(ShardDataset(shards, infinite=True, yield_samples=True))


def test_getitem_is_the_sample_of_the_split_in_shard_order(shards):
    ds = ShardIterator(shards, batch_size=1170, shuffle=False, drop_last=False)
    rows = next(iter(ds))["input_ids"]
    for i in (0, 1, 500, 1169, -1):
        np.testing.assert_array_equal(ds[i]["input_ids"], rows[i])
    assert ShardDataset(shards)[3]["labels"].shape == (32,)
    with pytest.raises(IndexError, match="sample 1170 is outside the 1170 samples"):
        ds[1170]


def test_samples_per_epoch_cuts_the_stream_of_passes_into_epochs_of_that_length(shards):
    ds = ShardIterator(shards, batch_size=10, seed=3, samples_per_epoch=500, return_sample_ids=True)
    epochs = [ids(list(ds)) for _ in range(3)]
    assert [len(e) for e in epochs] == [500, 500, 500] and len(ds) == 50
    stream = np.concatenate(epochs)
    assert sorted(stream[:1170]) == list(range(1170))  # the first pass is a permutation of the split
    one_pass = ids(ShardIterator(shards, batch_size=10, seed=3, return_sample_ids=True, drop_last=False))
    np.testing.assert_array_equal(stream[:1170], one_pass)
    resumed = ShardIterator(shards, batch_size=10, seed=3, samples_per_epoch=500, return_sample_ids=True)
    resumed.load_state_dict({**ds.state_dict(), "epoch": 1, "position": 230})
    np.testing.assert_array_equal(ids(list(resumed)), epochs[1][230:])


def test_infinite_mode_runs_epoch_after_epoch_and_resumes_inside_the_stream(shards):
    ds = ShardIterator(shards, batch_size=8, seed=1, infinite=True, return_sample_ids=True)
    it = iter(ds)
    head = list(itertools.islice(it, 300))  # 146 batches per epoch: into the third epoch
    assert (ds.epoch, ds.position) == (2, 8 * 8)
    finite = ShardIterator(shards, batch_size=8, seed=1, return_sample_ids=True)
    np.testing.assert_array_equal(ids(head), np.concatenate([ids(list(finite)) for _ in range(3)])[: 300 * 8])
    again = ShardIterator(shards, batch_size=8, seed=1, infinite=True, return_sample_ids=True)
    again.load_state_dict(ds.state_dict())
    np.testing.assert_array_equal(ids(itertools.islice(iter(again), 5)), ids(itertools.islice(it, 5)))


def test_infinite_mode_through_dataloader_workers_keeps_the_order(shards):
    single = ShardIterator(shards, batch_size=8, seed=1, infinite=True, return_sample_ids=True)
    want = ids(itertools.islice(iter(single), 160))
    loader = ShardDataset(shards, batch_size=8, seed=1, infinite=True, return_sample_ids=True).loader(num_workers=2)
    got = np.concatenate([b["sample_id"].numpy() for b in itertools.islice(iter(loader), 160)])
    np.testing.assert_array_equal(got, want)


def test_verify_checksums_refuses_a_changed_shard(shards, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(shards, out)
    index = json.loads((out / "shard_index.json").read_text())
    victim = next(s for s in index["shards"] if s["split"] == "train")["path"]
    data = bytearray((out / victim).read_bytes())
    data[-1] ^= 1  # the last token of the last tensor: the file still parses
    (out / victim).write_bytes(bytes(data))
    assert len(list(ShardIterator(out, batch_size=10, drop_last=False))) == 117  # not checked by default
    with pytest.raises(ValueError, match=rf"{victim} does not match its sha256 in the index"):
        list(ShardIterator(out, batch_size=10, verify_checksums=True))


def test_a_split_smaller_than_a_global_batch_is_an_error_not_zero_batches(shards):
    with pytest.raises(ValueError, match=r"split 'val' has 127 samples per epoch, fewer than one global batch of "
                                         r"200 \(batch_size 100 x world_size 2\)"):
        ShardIterator(shards, split="val", batch_size=100, world_size=2)
    assert len(list(ShardIterator(shards, split="val", batch_size=100, world_size=2, drop_last=False))) == 1


def test_validate_epoch_with_no_workers_reads_the_epoch(shards):
    report = validate_epoch(ShardIterator(shards, batch_size=5, drop_last=False), num_workers=0)
    assert report["ok"] and report["read"] == 1170 and report["tokens_match"]


def test_a_consumer_count_runs_on_into_the_next_epochs_in_infinite_mode(shards):
    ds = ShardIterator(shards, batch_size=8, seed=1, infinite=True)
    state = ds.state_dict(batches=146 * 2 + 5)  # 146 batches an epoch
    assert (state["epoch"], state["position"]) == (2, 40)
    assert ShardIterator(shards, batch_size=8, seed=1).state_dict(batches=500)["epoch"] == 1


@pytest.mark.parametrize("drop_last", [True, False])
def test_a_consumer_count_gives_the_position_the_iterator_itself_reaches(shards, drop_last):
    for batches in (0, 1, 100, 146, 147, 400):
        ds = ShardIterator(shards, batch_size=4, world_size=2, rank=1, drop_last=drop_last, infinite=True)
        it = iter(ds)
        for _ in range(batches):
            next(it)
        counted = ShardIterator(shards, batch_size=4, world_size=2, rank=1, drop_last=drop_last, infinite=True)
        assert counted.state_dict(batches=batches) == ds.state_dict(), batches
