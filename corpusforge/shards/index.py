"""Give shard parts their final names and write ``shard_index.json``.

Shard tasks write parts named by task (``_work/shards/train/t000003_0000.safetensors``); here they
are numbered in task order (``train/shard_00000.safetensors``) by hard link (a copy where links are
impossible), so finished tasks never move and a resumed run can re-index at no cost.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from corpusforge.layout import INDEX as INDEX_NAME
from corpusforge.layout import OutputLayout
from corpusforge.state import atomic_path, atomic_write_json

__all__ = ["INDEX_NAME", "finalize_shards"]


def _place(src: Path, dst: Path) -> None:
    if dst.exists() and os.path.samefile(src, dst):
        return
    with atomic_path(dst) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def _suffix(part: str) -> str:
    """``.safetensors.zst`` of ``.../t000003_0000.safetensors.zst``: everything after the stem."""
    name = Path(part).name
    return name[name.index("."):]


def finalize_shards(
    output: Path,
    per_task: list[dict[str, list[dict[str, Any]]]],
    splits: list[str],
    header: dict[str, Any],
) -> dict[str, Any]:
    """Place every part under its final name (task order) and write the index; returns it."""
    layout = OutputLayout(output)
    shards: list[dict[str, Any]] = []
    totals_by_split: dict[str, dict[str, int]] = {}
    for split in splits:
        n = 0
        keep: set[str] = set()
        for task_shards in per_task:
            for part in task_shards.get(split, []):
                rel = layout.shard_name(split, n, _suffix(part["part"]))
                _place(Path(part["part"]), layout.shard(split, n, _suffix(part["part"])))
                keep.add(rel)
                entry = {"split": split, "path": rel, **{k: v for k, v in part.items() if k not in ("part", "sidecars")}}
                for side in part.get("sidecars", []):
                    side_rel = layout.shard_name(split, n, _suffix(side["part"]))
                    _place(Path(side["part"]), layout.shard(split, n, _suffix(side["part"])))
                    keep.add(side_rel)
                    entry.setdefault("sidecars", []).append({"path": side_rel, "sha256": side["sha256"]})
                shards.append(entry)
                n += 1
        split_dir = layout.split_dir(split)
        if split_dir.is_dir():
            for f in split_dir.glob("shard_*"):
                if f"{split}/{f.name}" not in keep:
                    f.unlink()
        these = [s for s in shards if s["split"] == split]
        totals_by_split[split] = {
            "shards": len(these),
            "samples": sum(s["samples"] for s in these),
            "tokens": sum(s["tokens"] for s in these),
            "bytes": sum(s["bytes"] for s in these),
        }
    index = {
        **header,
        "splits": totals_by_split,
        "totals": {k: sum(t[k] for t in totals_by_split.values()) for k in ("shards", "samples", "tokens", "bytes")},
        "shards": shards,
    }
    atomic_write_json(layout.index, index)
    return index
