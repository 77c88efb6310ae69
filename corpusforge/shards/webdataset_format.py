"""WebDataset shards: one POSIX tar per shard, one sample per packed row.

Members follow the WebDataset convention: a sample's files lie next to each other and share its
key, the name up to the first dot; the rest names the field. Sample ``k`` of a shard has key
``k`` written with 8 digits and one member per tensor, ``00000003.input_ids.npy``, holding that
row as a 1-D ``.npy`` of ``sequence_length`` values, tensors in name order. Headers are USTAR with
mtime, uid and gid 0, so equal rows give equal bytes. ``webdataset.WebDataset(url).decode()``
reads the samples; so do ``tarfile`` and ``numpy``.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from corpusforge.registry import SHARD_FORMATS
from corpusforge.shards.contract import (
    BLOCK_ROWS,
    OpenFile,
    RawWriter,
    Rows,
    ShardFormat,
    TensorsOf,
    read_decompressed,
    split_compression,
)

KEY_DIGITS = 8


def _member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    return info, io.BytesIO(data)


@SHARD_FORMATS.register("webdataset")
class WebDatasetFormat(ShardFormat):
    """A tar of ``<key>.<tensor>.npy`` members, one sample (packed row) per key, every tensor stored."""

    suffixes = (".tar",)

    def encode(self, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> dict[str, bytes]:
        buf = io.BytesIO()
        self._write_tar(buf.write, [self.stored(tensors)])
        return {".tar": buf.getvalue()}

    def write(self, open_file: OpenFile, rows: Rows, tensors_of: TensorsOf, metadata: dict[str, str]) -> None:
        """The tar streamed ``BLOCK_ROWS`` rows at a time, each member as ``np.save`` writes it."""
        blocks = (self.stored(tensors_of(rows[lo : lo + BLOCK_ROWS], None)) for lo in range(0, len(rows), BLOCK_ROWS))
        with open_file(".tar", None) as fh:
            self._write_tar(fh.write, blocks)

    @staticmethod
    def _write_tar(put: Callable[[bytes], Any], blocks: Iterable[dict[str, np.ndarray]]) -> None:
        """Samples of ``blocks`` (tensors of consecutive rows) as tar members, the tar's bytes to ``put``."""
        with tarfile.open(fileobj=RawWriter(put), mode="w|", format=tarfile.USTAR_FORMAT) as tar:  # type: ignore[arg-type]
            row = 0
            for tensors in blocks:
                names = sorted(tensors)
                heads = {}
                for name in names:
                    head = io.BytesIO()
                    arr = tensors[name]
                    np.lib.format.write_array_header_1_0(head, {"descr": arr.dtype.str, "fortran_order": False,
                                                                "shape": (arr.shape[1],)})
                    heads[name] = head.getvalue()
                for k in range(len(tensors[names[0]])):
                    key = f"{row:0{KEY_DIGITS}d}"
                    for name in names:
                        tar.addfile(*_member(f"{key}.{name}.npy", heads[name] + tensors[name][k].tobytes()))
                    row += 1

    @classmethod
    def read(cls, path: Path, sequence_length: int, pad: int) -> dict[str, np.ndarray]:
        """Every tensor as (samples, sequence_length), stacked from the members in tar order."""
        source = io.BytesIO(read_decompressed(path)) if split_compression(path)[1] != "none" else None
        try:
            tar = tarfile.open(path if source is None else None, mode="r:", fileobj=source)
        except tarfile.TarError as exc:
            raise ValueError(f"{path}: not a tar file ({exc})") from None
        try:
            with tar:
                columns, keys = cls._columns(path, tar)
        except (tarfile.TarError, EOFError) as exc:  # a tar cut short or damaged past its first header
            raise ValueError(f"{path}: not a readable tar ({exc})") from None
        if not keys:
            return {"input_ids": np.zeros((0, sequence_length), np.int32)}
        out = {}
        for name, column in columns.items():
            if len(column) != len(keys):
                raise ValueError(f"{path}: {len(keys) - len(column)} samples lack {name} (sample {keys[len(column)]})")
            shapes = {a.shape for a in column}
            if len(shapes) != 1 or len(next(iter(shapes))) != 1:
                raise ValueError(f"{path}: {name} rows are not 1-D of one length (shapes {sorted(shapes)[:3]})")
            out[name] = np.stack(column)
        return out

    @staticmethod
    def _columns(path: Path, tar: tarfile.TarFile) -> tuple[dict[str, list[np.ndarray]], list[str]]:
        """Each tensor's rows in sample order, and the sample keys; ``ValueError`` where the members
        break the layout (a member of no sample, samples interleaved, a tensor twice or missing)."""
        columns: dict[str, list[np.ndarray]] = {}
        keys: list[str] = []
        for member in tar:
            key, _, field = member.name.partition(".")
            if not member.isfile() or "/" in member.name or not field.endswith(".npy"):
                raise ValueError(f"{path}: member {member.name!r} is not a <key>.<tensor>.npy file")
            if not keys or key != keys[-1]:
                if keys and key < keys[-1]:  # keys rise, so a sample's members lie together
                    raise ValueError(f"{path}: member {member.name!r} is out of order (after sample {keys[-1]})")
                keys.append(key)
            name = field[: -len(".npy")]
            column = columns.setdefault(name, [])
            if len(column) != len(keys) - 1:
                raise ValueError(f"{path}: sample {key} holds {name} twice, or an earlier sample lacks it")
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            try:
                column.append(np.load(io.BytesIO(data), allow_pickle=False))
            except (ValueError, EOFError) as exc:
                raise ValueError(f"{path}: member {member.name!r} is not a .npy array ({exc})") from None
        return columns, keys
