import gzip
import itertools
import json
import shutil

import numpy as np
import pytest
import torch
import zstandard
from safetensors.numpy import load_file as load_numpy
from safetensors.torch import load_file as load_torch

from corpusforge.loader import EpochOrder, ShardDataset, ShardIterator, validate_epoch
from corpusforge.loader.reader import read_safetensors


def take(it, n):
    return list(itertools.islice(it, n))


def same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(np.asarray(x[k]), np.asarray(y[k]))


def test_reader_matches_safetensors_numpy(shards):
    for f in sorted((shards / "train").glob("*.safetensors"))[:3]:
        mine, ref = read_safetensors(f), load_numpy(f)
        assert mine.keys() == ref.keys()
        for k in ref:
            assert mine[k].dtype == ref[k].dtype
            np.testing.assert_array_equal(mine[k], ref[k])


def test_unshuffled_torch_stream_equals_safetensors_torch_rows(shards):
    index = json.loads((shards / "shard_index.json").read_text())
    files = [shards / s["path"] for s in index["shards"] if s["split"] == "train"]
    expect = torch.cat([load_torch(f)["input_ids"] for f in files])
    ds = ShardDataset(shards, batch_size=10, shuffle=False, drop_last=False)
    got = torch.cat([b["input_ids"] for b in ds.loader()])
    assert got.dtype == torch.int32
    assert torch.equal(got, expect)


def test_compressed_shards_read_back_like_plain_ones(shards, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(shards, out)
    index = json.loads((out / "shard_index.json").read_text())
    for i, s in enumerate(index["shards"]):
        f = out / s["path"]
        if i % 2:
            f.with_name(f.name + ".zst").write_bytes(zstandard.ZstdCompressor().compress(f.read_bytes()))
            s["path"] += ".zst"
        else:
            f.with_name(f.name + ".gz").write_bytes(gzip.compress(f.read_bytes()))
            s["path"] += ".gz"
        f.unlink()
    (out / "shard_index.json").write_text(json.dumps(index))
    same_batches(list(ShardIterator(out, batch_size=7, seed=3)), list(ShardIterator(shards, batch_size=7, seed=3)))


def test_epoch_order_is_a_permutation_fixed_by_seed_and_epoch():
    sizes = [5, 300, 17, 1]
    def flat(o):
        return [(s, int(r)) for s, rows in o.segments(0, o.total) for r in rows]
    a = flat(EpochOrder(sizes, seed=1, epoch=0, block_size=8))
    assert sorted(a) == [(s, r) for s, n in enumerate(sizes) for r in range(n)]
    assert a == flat(EpochOrder(sizes, seed=1, epoch=0, block_size=8))
    assert a != flat(EpochOrder(sizes, seed=1, epoch=1, block_size=8))
    assert a != flat(EpochOrder(sizes, seed=2, epoch=0, block_size=8))


def test_shuffled_rows_stay_inside_their_block():
    o = EpochOrder([100], seed=0, epoch=0, block_size=10, algo="shard_block")
    rows = o.rows_of(0)
    assert [len(set(rows[i:i + 10] // 10)) for i in range(0, 100, 10)] == [1] * 10
    assert not np.array_equal(rows, np.arange(100))


@pytest.mark.parametrize("world_size,num_workers", [(1, 1), (2, 3), (3, 2)])
def test_epoch_reads_every_sample_exactly_once(shards, world_size, num_workers):
    ds = ShardIterator(shards, batch_size=5, world_size=world_size, rank=0, drop_last=False)
    report = validate_epoch(ds, epoch=1, num_workers=num_workers)
    assert report["ok"] and report["read"] == report["samples"] == 1170 and report["tokens_match"]


def test_drop_last_leaves_out_only_the_last_partial_global_step(shards):
    report = validate_epoch(ShardIterator(shards, batch_size=4, world_size=2, rank=0))
    assert (report["ok"], report["dropped_tail"], report["read"]) == (True, 1170 % 8, 1170 - 1170 % 8)


def test_validate_detects_a_repeated_batch(shards):
    class Repeating(ShardIterator):
        def steps(self, order, start):
            for end, span in super().steps(order, start):
                yield end, span
                yield end, span

    report = validate_epoch(Repeating(shards, batch_size=5, drop_last=False))
    assert not report["ok"] and report["duplicates"] == 1170


@pytest.mark.parametrize("offset", [0, 1, 13, 145])
def test_resume_at_offset_equals_uninterrupted_stream(shards, offset):
    full = list(ShardIterator(shards, batch_size=8, seed=5))
    ds = ShardIterator(shards, batch_size=8, seed=5)
    head = take(iter(ds), offset)
    resumed = ShardIterator(shards, batch_size=8, seed=5)
    resumed.load_state_dict(json.loads(json.dumps(ds.state_dict())))
    same_batches(head + list(resumed), full)


def test_resume_continues_into_the_next_epoch(shards):
    ds = ShardIterator(shards, batch_size=100, seed=2)
    epoch0 = list(ds)
    state = ds.state_dict()
    assert (state["epoch"], state["position"]) == (1, 0)
    epoch1 = list(ds)
    resumed = ShardIterator(shards, batch_size=100, seed=2)
    resumed.load_state_dict(state)
    same_batches(list(resumed), epoch1)
    assert not np.array_equal(epoch0[0]["input_ids"], epoch1[0]["input_ids"])


def rank_stream(shards, world_size, state=None, **kw):
    """Global steps as batches concatenated over ranks, each rank read by its own iterator."""
    its = []
    for r in range(world_size):
        ds = ShardIterator(shards, rank=r, world_size=world_size, **kw)
        if state:
            ds.load_state_dict(state)
        its.append(iter(ds))
    out = []
    for parts in zip(*its, strict=True):
        out.append({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    return out


def test_global_stream_is_the_same_for_any_rank_count(shards):
    one = rank_stream(shards, 1, batch_size=12, seed=9)
    same_batches(rank_stream(shards, 2, batch_size=6, seed=9), one)
    same_batches(rank_stream(shards, 4, batch_size=3, seed=9), one)


def test_resume_with_a_different_rank_count(shards):
    ds = ShardIterator(shards, rank=1, world_size=2, batch_size=6, seed=9)
    take(iter(ds), 20)
    full = rank_stream(shards, 1, batch_size=12, seed=9)
    same_batches(rank_stream(shards, 3, batch_size=4, seed=9, state=ds.state_dict()), full[20:])


@pytest.mark.parametrize("workers_before,workers_after", [(0, 2), (2, 3), (3, 1)])
def test_resume_with_a_different_worker_count(shards, workers_before, workers_after):
    full = [dict(b) for b in ShardDataset(shards, batch_size=8, seed=4).loader()]
    ds = ShardDataset(shards, batch_size=8, seed=4)
    loader = ds.loader(num_workers=workers_before)
    head = take(iter(loader), 37)
    state = loader.state_dict()
    assert state["position"] == 37 * 8
    ds2 = ShardDataset(shards, batch_size=8, seed=4)
    loader2 = ds2.loader(num_workers=workers_after)
    loader2.load_state_dict(state)
    same_batches(head + list(loader2), full)


def test_token_budget_batches_respect_the_budget(shards):
    batches = list(ShardIterator(shards, max_tokens=150, drop_last=False))
    sizes = [b["input_ids"].size for b in batches]
    assert max(sizes) <= 150 and sum(len(b["input_ids"]) for b in batches) == 1170


def test_token_budget_resume_across_workers_and_ranks(shards):
    # Greedy budget batches form one stream; ranks only group it, so 11 steps on 2 ranks are 22 batches.
    ds = ShardDataset(shards, max_tokens=100, seed=1, rank=0, world_size=2)
    loader = ds.loader(num_workers=2)
    take(iter(loader), 11)
    one_rank = rank_stream(shards, 1, max_tokens=100, seed=1)
    same_batches(rank_stream(shards, 1, max_tokens=100, seed=1, state=loader.state_dict()), one_rank[22:])


def test_resume_with_a_larger_global_batch_continues_with_the_next_unseen_sample(shards):
    ds = ShardIterator(shards, batch_size=8, seed=6, return_sample_ids=True)
    head = np.concatenate([b["sample_id"] for b in take(iter(ds), 5)])
    ramped = ShardIterator(shards, batch_size=12, seed=6, return_sample_ids=True)
    ramped.load_state_dict(ds.state_dict())
    rest = [b["sample_id"] for b in ramped]
    assert [len(r) for r in rest[:2]] == [12, 12] and len(rest) == (1170 - 40) // 12
    whole = np.concatenate([b["sample_id"] for b in ShardIterator(shards, batch_size=1170, seed=6,
                                                                   return_sample_ids=True)])
    np.testing.assert_array_equal(np.concatenate([head, *rest]), whole[: 40 + len(rest) * 12])


def test_state_from_another_shuffle_is_refused(shards):
    ds = ShardIterator(shards, batch_size=8)
    with pytest.raises(ValueError, match="shuffle_block_size is 65536 in the state but 100 here"):
        ShardIterator(shards, batch_size=8, shuffle_block_size=100).load_state_dict(ds.state_dict())


def test_unknown_split_names_the_splits_that_exist(shards):
    with pytest.raises(ValueError, match=r"split 'dev' has no shards; splits with shards: \['train', 'val'\]"):
        ShardIterator(shards, split="dev")


def test_val_split_is_selected(shards):
    report = validate_epoch(ShardIterator(shards, split="val", batch_size=4, drop_last=False))
    assert report["ok"] and report["samples"] == 127
