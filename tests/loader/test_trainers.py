"""Equal work per rank under real DDP, and exact resume through the loaders trainers build."""

import datetime
import itertools
import json

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader

from corpusforge.loader import ShardDataset, ShardIterator, validate_epoch


def take(it, n):
    return list(itertools.islice(it, n))


def same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(np.asarray(x[k]), np.asarray(y[k]))


def _ddp_epoch(rank, world_size, shards, init_file, out_dir, pad_last):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=60))
    try:
        ds = ShardDataset(shards, batch_size=4, seed=3, drop_last=False, pad_last=pad_last, return_sample_ids=True)
        ids, sizes = [], []
        for batch in ds.loader(num_workers=2):
            total = torch.tensor([len(batch["sample_id"])])
            dist.all_reduce(total)  # one collective per batch: an extra batch on one rank would fail here
            ids += batch["sample_id"].tolist()
            sizes.append(len(batch["sample_id"]))
        dist.barrier()
        (out_dir / f"rank{rank}.json").write_text(json.dumps({"ids": ids, "sizes": sizes, "len": len(ds)}))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("pad_last", [False, True])
def test_two_process_gloo_ddp_without_drop_last_finishes_an_epoch_with_equal_batch_counts(shards, tmp_path,
                                                                                           pad_last):
    mp.spawn(_ddp_epoch, args=(2, str(shards), str(tmp_path / "init"), tmp_path, pad_last), nprocs=2, join=True)
    got = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    # 1170 samples, global batch 8: 146 full steps and a tail of 2, one sample per rank (or padded to 4 each)
    assert [len(g["sizes"]) for g in got] == [147, 147] == [g["len"] for g in got]
    assert [g["sizes"][-1] for g in got] == ([4, 4] if pad_last else [1, 1])
    assert sorted(set(got[0]["ids"]) | set(got[1]["ids"])) == list(range(1170))


def test_a_tail_smaller_than_the_rank_count_pads_with_the_first_samples(shards):
    per_rank = [list(ShardIterator(shards, split="val", batch_size=40, world_size=3, rank=r, drop_last=False,
                                   return_sample_ids=True, seed=1)) for r in range(3)]
    assert [len(b) for b in per_rank] == [2, 2, 2]  # 127 = 120 + 7: tail of 7 cut 3/2/2
    assert [len(b[-1]["sample_id"]) for b in per_rank] == [3, 2, 2]
    report = validate_epoch(ShardIterator(shards, split="val", batch_size=63, world_size=2, drop_last=False))
    assert (report["ok"], report["padded"], report["batches_per_rank"]) == (True, 1, [2, 2])  # 126 + 1: rank 1 pads


def test_padded_last_step_is_accounted_by_validate_epoch(shards):
    report = validate_epoch(ShardIterator(shards, batch_size=4, world_size=2, drop_last=False, pad_last=True),
                            num_workers=2)
    assert (report["ok"], report["padded"], report["read"]) == (True, 6, 1176)
    assert report["tokens_match"] is True and report["batches_per_rank"] == [147, 147]


@pytest.mark.parametrize("offset", [1, 37, 145])
def test_stock_dataloader_with_two_workers_resumes_at_an_offset_exactly(shards, offset):
    def loader(ds):
        return DataLoader(ds, batch_size=None, num_workers=2)

    full = list(loader(ShardDataset(shards, batch_size=8, seed=4)))
    ds = ShardDataset(shards, batch_size=8, seed=4)
    head = []
    for step, batch in enumerate(loader(ds)):
        head.append(batch)
        if step + 1 == offset:
            state = ds.state_dict(batches=step + 1)  # the consumer's count: workers read ahead of it
            break
    resumed = ShardDataset(shards, batch_size=8, seed=4)
    resumed.load_state_dict(json.loads(json.dumps(state)))
    same_batches(head + list(loader(resumed)), full)


def test_stock_dataloader_state_without_a_count_is_an_error_not_epoch_zero(shards):
    ds = ShardDataset(shards, batch_size=8, seed=4)
    take(iter(DataLoader(ds, batch_size=None, num_workers=2)), 3)
    with pytest.raises(RuntimeError, match=r"pass the batches taken since the epoch began"):
        ds.state_dict()
    assert ds.state_dict(batches=3)["position"] == 24


def test_hf_trainer_resumed_from_a_checkpoint_sees_the_uninterrupted_batches(shards, tmp_path):
    from transformers import Trainer, TrainingArguments

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.seen = []

        def forward(self, input_ids, **kw):
            self.seen.append(input_ids.clone())
            return {"loss": ((self.w - input_ids.float().mean() / 1000) ** 2).sum()}

    def train(resume=None):
        model = Recorder()
        args = TrainingArguments(output_dir=str(tmp_path / "run"), max_steps=6, per_device_train_batch_size=8,
                                 save_strategy="steps", save_steps=3, report_to="none", use_cpu=True,
                                 dataloader_num_workers=2, logging_strategy="no", disable_tqdm=True, seed=0)
        ds = ShardDataset(shards, batch_size=8, seed=4, yield_samples=True)
        Trainer(model=model, args=args, train_dataset=ds).train(resume_from_checkpoint=resume)
        return model.seen

    whole = train()
    resumed = train(str(tmp_path / "run" / "checkpoint-3"))
    assert len(whole) == 6 and len(resumed) == 3
    for a, b in zip(resumed, whole[3:], strict=True):
        assert torch.equal(a, b)
    expect = [b["input_ids"] for b in take(iter(ShardIterator(shards, batch_size=8, seed=4)), 6)]
    for a, b in zip(whole, expect, strict=True):
        np.testing.assert_array_equal(a.numpy(), b)


def test_accelerate_skip_first_batches_resumes_exactly(shards):
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)

    def prepared():
        return accelerator.prepare(DataLoader(ShardDataset(shards, batch_size=8, seed=2), batch_size=None,
                                              num_workers=2))

    full = take(iter(prepared()), 20)
    resumed = take(iter(accelerator.skip_first_batches(prepared(), 12)), 8)
    same_batches(resumed, full[12:])


def test_lightning_checkpoint_restores_the_loader_mid_epoch(shards, tmp_path):
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.seen = []

        def training_step(self, batch, batch_idx):
            self.seen.append(batch["input_ids"].clone())
            return ((self.w - batch["input_ids"].float().mean() / 1000) ** 2).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self):
            return ShardDataset(shards, batch_size=8, seed=4).loader(num_workers=2)

    def fit(ckpt=None):
        module = Module()
        trainer = pl.Trainer(max_steps=6, accelerator="cpu", logger=False, enable_progress_bar=False,
                             enable_model_summary=False, default_root_dir=str(tmp_path),
                             callbacks=[ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), every_n_train_steps=3,
                                                        save_top_k=-1, filename="{step}")])
        trainer.fit(module, ckpt_path=ckpt)
        return module.seen

    whole = fit()
    resumed = fit(str(tmp_path / "ckpt" / "step=3.ckpt"))
    assert len(whole) == 6 and len(resumed) == 3
    for a, b in zip(resumed, whole[3:], strict=True):
        assert torch.equal(a, b)
