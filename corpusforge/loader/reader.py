"""The loader's view of shard reading, which lives beside the writers in ``corpusforge.shards.reader``.

Kept so ``from corpusforge.loader.reader import open_shard`` goes on working; the loader imports
from ``shards``, never the reverse.
"""

from corpusforge.shards.reader import (
    COMPRESSIONS,
    MegatronIndex,
    open_shard,
    read_decompressed,
    read_megatron_index,
    read_megatron_rows,
    read_parquet,
    read_safetensors,
    read_stored,
    shard_kind,
)

__all__ = [
    "COMPRESSIONS", "MegatronIndex", "open_shard", "read_decompressed", "read_megatron_index", "read_megatron_rows",
    "read_parquet", "read_safetensors", "read_stored", "shard_kind",
]  # fmt: skip
