import json

import numpy as np
import torch.distributed as dist
import torch.multiprocessing as mp

from corpusforge.loader import ShardIterator


def _rank_main(rank, world_size, shards, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        ds = ShardIterator(shards, batch_size=4, seed=3, return_sample_ids=True)
        ids = [b["sample_id"].tolist() for b, _ in zip(ds, range(6), strict=False)]
        (out_dir / f"rank{rank}.json").write_text(json.dumps({"rank": ds.rank, "world": ds.world_size, "ids": ids}))
    finally:
        dist.destroy_process_group()


def test_rank_and_world_size_default_from_torch_distributed(shards, tmp_path):
    mp.spawn(_rank_main, args=(2, str(shards), str(tmp_path / "init"), tmp_path), nprocs=2, join=True)
    got = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [(g["rank"], g["world"]) for g in got] == [(0, 2), (1, 2)]
    single = ShardIterator(shards, batch_size=8, seed=3, return_sample_ids=True, rank=0, world_size=1)
    expect = [b["sample_id"].tolist() for b, _ in zip(single, range(6), strict=False)]
    assert [a + b for a, b in zip(got[0]["ids"], got[1]["ids"], strict=True)] == expect
    assert np.unique(np.concatenate(expect)).size == 48
