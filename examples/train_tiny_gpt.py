"""Train a tiny GPT on corpusforge shards through the loader, checkpoint mid-epoch, resume.

    python examples/train_tiny_gpt.py [CORPUS] [--steps 300] [--checkpoint-at 150] [--out DIR]

CORPUS (default: the shared tinyshakespeare text) becomes shards with ``document_ids`` and
``position_ids``; the model keeps attention inside each document with them. Phase one trains
with 2 DataLoader workers up to ``--checkpoint-at`` and saves model, optimizer and loader state;
phase two starts from nothing but that checkpoint, with 1 worker, and trains to ``--steps``. The
loader state is two integers, so phase two sees exactly the batches an uninterrupted run would.
CPU only; a few minutes on two cores.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from corpusforge import run
from corpusforge.loader import ShardDataset

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "prose" / "tinyshakespeare.txt"


class Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    def __init__(self, vocab: int, length: int, dim: int = 128, layers: int = 2, heads: int = 4):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, dim), nn.Embedding(length, dim)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.ln, self.head = nn.LayerNorm(dim), nn.Linear(dim, vocab, bias=False)

    def forward(self, ids: torch.Tensor, position_ids: torch.Tensor, document_ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool, device=ids.device).tril()
        # Attend only to earlier tokens of the same document (padding, id -1, forms one block).
        same_doc = document_ids[:, :, None] == document_ids[:, None, :]
        mask = (causal & same_doc)[:, None]
        x = self.tok(ids.long()) + self.pos(position_ids.long())
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.ln(x))


def loss_of(model: TinyGPT, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = model(batch["input_ids"], batch["position_ids"], batch["document_ids"])
    # labels are unshifted (-100 on padding and special tokens): predict token i+1 from 0..i.
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), batch["labels"][:, 1:].flatten().long(), ignore_index=-100)


def train(shards: Path, vocab: int, length: int, start: int, stop: int, ckpt: Path, workers: int) -> list[float]:
    torch.manual_seed(0)
    model = TinyGPT(vocab, length)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    loader = ShardDataset(shards, batch_size=16, seed=0).loader(num_workers=workers)
    if start:
        state = torch.load(ckpt)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        loader.load_state_dict(state["loader"])
        print(f"resumed at step {start}: epoch {state['loader']['epoch']}, sample {state['loader']['position']}")
    losses, step = [], start
    while step < stop:
        for batch in loader:
            loss = loss_of(model, batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            losses.append(loss.item())
            if step % 25 == 0:
                print(f"step {step:4d}  loss {sum(losses[-25:]) / len(losses[-25:]):.3f}")
            if step == stop:
                break
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "loader": loader.state_dict()}, ckpt)
    return losses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT_CORPUS))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--checkpoint-at", type=int, default=150)
    ap.add_argument("--out", default=None, help="output folder for shards and checkpoint (default: a temp dir)")
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="tiny-gpt-"))
    length = 64
    stats = run({"sources": [{"path": args.corpus, "text_unit": "paragraph"}], "steps": [],
                 "tokenizer": {"vocab_size": 1000},
                 "sharding": {"sequence_length": length, "splits": {"train": 1.0}, "max_shard_bytes": 200_000,
                              "position_ids": True, "document_ids": True}},
                output=str(out / "shards"))  # fmt: skip
    vocab = stats["stages"][1]["result"]["vocab_size"]
    samples = stats["shards"]["samples"]
    print(f"{stats['tokens']} tokens in {samples} samples of {length}; an epoch is {samples // 16} steps")
    ckpt = out / "checkpoint.pt"
    first = train(out / "shards", vocab, length, 0, args.checkpoint_at, ckpt, workers=2)
    second = train(out / "shards", vocab, length, args.checkpoint_at, args.steps, ckpt, workers=1)
    losses = first + second
    print(f"loss: first 25 steps {sum(losses[:25]) / 25:.3f} -> last 25 steps {sum(losses[-25:]) / 25:.3f} "
          f"(uniform guess: {math.log(vocab):.3f})")


if __name__ == "__main__":
    main()
