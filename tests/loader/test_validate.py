"""``corpusforge validate`` and ``inspect`` on every shard format and compression the writer makes."""

from __future__ import annotations

import re
import shutil
import struct

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from corpusforge import run
from corpusforge.cli import main as cli
from corpusforge.inspect import decoded_samples
from corpusforge.loader.reader import read_decompressed, read_stored, shard_kind
from corpusforge.shards.edit import shard_files
from corpusforge.shards.formats import compress, get_format
from corpusforge.shards.validate import validate_output
from tests.conftest import small_recipe

FORMATS = [("safetensors", "none"), ("safetensors", "zstd"), ("safetensors", "gzip"), ("safetensors", "lz4"),
           ("npy", "none"), ("npy", "zstd"), ("npy", "gzip"), ("npy", "lz4"), ("parquet", "none"),
           ("megatron", "none")]  # fmt: skip
ALL_TENSORS = [f for f in FORMATS if f[0] in ("safetensors", "parquet")]  # formats that store labels etc.
LENGTH = 64


@pytest.fixture(scope="module")
def source(tmp_path_factory, shared_data):
    """A JSONL of the ASCII paragraphs of one Gutenberg book, and those texts."""
    text = (shared_data / "prose" / "gutenberg" / "pg26184.txt").read_text(encoding="utf-8")
    docs = [p.strip() for p in text.split("\n\n") if p.strip() and p.strip().isascii()]
    path = tmp_path_factory.mktemp("src") / "docs.jsonl"
    path.write_bytes(b"".join(orjson.dumps({"text": d}) + b"\n" for d in docs))
    return path, docs


@pytest.fixture(scope="module")
def build(tmp_path_factory, source):
    """``build(fmt, compression)``: the output of one small run in that format (built once per module)."""
    made = {}

    def make(fmt, compression):
        if (fmt, compression) not in made:
            out = tmp_path_factory.mktemp(f"{fmt}-{compression}") / "out"
            recipe = small_recipe([{"path": str(source[0])}], steps=[], sharding={
                "sequence_length": LENGTH, "max_tokens_per_shard": 40 * LENGTH, "position_ids": True,
                "document_ids": True, "format": fmt, "compression": compression,
                "splits": {"train": 0.9, "val": 0.1}})  # fmt: skip
            run(recipe, output=str(out), workers=1, progress=False)
            made[fmt, compression] = out
        return made[fmt, compression]

    return make


@pytest.fixture
def copy_of(build, tmp_path):
    """A private copy of a built output, to corrupt."""
    return lambda fmt, compression: shutil.copytree(build(fmt, compression), tmp_path / "out")


def index_of(out):
    return orjson.loads((out / "shard_index.json").read_bytes())


def write_index(out, index):
    (out / "shard_index.json").write_bytes(orjson.dumps(index))


def replace_file(path, data):
    path.unlink()  # shards are hard links to the task parts: replace, do not modify in place
    path.write_bytes(data)


def rewrite(out, k, tensors):
    """Re-encode shard ``k`` from ``tensors`` in its own format and compression and update the index's
    checksums, so that only the content checks can find what changed."""
    import hashlib

    index = index_of(out)
    entry = index["shards"][k]
    compression = shard_kind(entry["path"])[1]
    targets = shard_files(index, entry["path"])
    total = 0
    for suffix, data in get_format(index["format"]).encode(tensors, {"format": "corpusforge"}).items():
        if compression != "none":
            data = compress(data, compression)
        replace_file(out / targets[suffix], data)
        total += len(data)
        digest = hashlib.sha256(data).hexdigest()
        for rec in [entry, *entry.get("sidecars", [])]:
            if rec["path"] == targets[suffix]:
                rec["sha256"] = digest
    for agg in (index["splits"][entry["split"]], index["totals"]):
        agg["bytes"] += total - entry["bytes"]
    entry["bytes"] = total
    write_index(out, index)
    return entry["path"]


def stored_copy(out, k):
    index = index_of(out)
    stored = read_stored(out / index["shards"][k]["path"], index["sequence_length"])
    return {name: np.array(arr) for name, arr in stored.items()}


@pytest.mark.parametrize("fmt,compression", FORMATS)
def test_a_fresh_output_of_every_format_validates(build, fmt, compression):
    out = build(fmt, compression)
    index = index_of(out)
    assert {shard_kind(s["path"]) for s in index["shards"]} == {(fmt, compression)}
    assert index["splits"]["train"]["shards"] > 1
    faults, summary = validate_output(out)
    assert faults == []
    assert summary == {"shards": index["totals"]["shards"], "samples": index["totals"]["samples"],
                       "tokens": index["totals"]["tokens"], "format": fmt}


@pytest.mark.parametrize("fmt,compression", FORMATS)
def test_inspect_decodes_every_format_back_to_the_source_text(build, source, fmt, compression):
    out = build(fmt, compression)
    decoded = []
    for split, totals in index_of(out)["splits"].items():
        stream = "".join(text for _, _, text in decoded_samples(out, split, totals["samples"]))
        decoded += re.findall(r"<BOS>(.*?)<EOS>", stream, flags=re.S)
    assert sorted(decoded) == sorted(source[1])


@pytest.mark.parametrize("fmt,compression", FORMATS)
def test_a_flipped_byte_fails_naming_the_file(copy_of, fmt, compression):
    out = copy_of(fmt, compression)
    name = index_of(out)["shards"][1]["path"]
    data = bytearray((out / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    replace_file(out / name, bytes(data))
    assert validate_output(out)[0] == [f"{name}: sha256 differs from the index"]


@pytest.mark.parametrize("fmt,compression", FORMATS)
def test_a_token_outside_the_vocabulary_fails_even_with_matching_checksums(copy_of, fmt, compression):
    out = copy_of(fmt, compression)
    tensors = stored_copy(out, 0)
    vocab = index_of(out)["tokenizer"]["vocab_size"]
    tensors["input_ids"][2, 7] = vocab
    name = rewrite(out, 0, tensors)
    faults = validate_output(out)[0]
    assert f"{name}: input_ids outside [0, {vocab}) at 1 positions (first: row 2, position 7: {vocab})" in faults
    assert all(f.startswith(f"{name}: ") for f in faults), faults


@pytest.mark.parametrize("fmt,compression", ALL_TENSORS)
def test_a_label_that_is_not_ignored_on_a_special_token_fails(copy_of, fmt, compression):
    out = copy_of(fmt, compression)
    tensors = stored_copy(out, 0)
    row, col = map(int, np.argwhere(tensors["labels"] == -100)[0])
    tensors["labels"][row, col] = tensors["input_ids"][row, col]
    name = rewrite(out, 0, tensors)
    assert validate_output(out)[0] == [
        f"{name}: labels differ from input_ids with -100 on padding and the masked special tokens: wrong at 1 positions "
        f"(first: row {row}, position {col}: {tensors['input_ids'][row, col]}, expected -100)"]


@pytest.mark.parametrize("tensor,fault", [
    ("attention_mask", "attention_mask is not 1 exactly on non-pad tokens"),
    ("position_ids", "position_ids do not count from 0 at each row start and document start (0 on padding)"),
    ("document_ids", "document_ids do not number the row's documents from 0 (-1 on padding)"),
    ("modality_mask", "modality_mask is not 0 everywhere, but the index has no media layout"),
])  # fmt: skip
def test_a_derived_tensor_that_disagrees_with_input_ids_fails(copy_of, tensor, fault):
    out = copy_of("safetensors", "zstd")
    tensors = stored_copy(out, 3)
    tensors[tensor][1, 5] += 1
    name = rewrite(out, 3, tensors)
    faults = validate_output(out)[0]
    assert len(faults) == 1 and faults[0].startswith(f"{name}: {fault}")


@pytest.mark.parametrize("fmt,compression", [("safetensors", "none"), ("npy", "gzip"), ("parquet", "none")])
def test_a_wrong_dtype_fails(copy_of, fmt, compression):
    out = copy_of(fmt, compression)
    tensors = stored_copy(out, 0)
    tensors["input_ids"] = tensors["input_ids"].astype(np.int64)
    name = rewrite(out, 0, tensors)
    assert validate_output(out)[0] == [f"{name}: input_ids has dtype int64, expected int32"]


def test_a_missing_tensor_and_an_unlisted_one_fail(copy_of):
    out = copy_of("parquet", "none")
    tensors = stored_copy(out, 0)
    tensors["extra"] = tensors.pop("document_ids")
    name = rewrite(out, 0, tensors)
    assert validate_output(out)[0] == [f"{name}: missing tensors ['document_ids']",
                                       f"{name}: holds tensors ['extra'] that the index's dtypes do not list"]


def test_counts_that_differ_from_the_index_fail(copy_of):
    out = copy_of("npy", "zstd")
    index = index_of(out)
    entry = index["shards"][0]
    entry["tokens"] += 1
    write_index(out, index)
    faults = validate_output(out)[0]
    assert faults[0] == f"{entry['path']}: {entry['tokens'] - 1} non-pad tokens, index says {entry['tokens']}"
    assert faults[1].startswith(f"splits.{entry['split']}: index says") and faults[2].startswith("totals:")
    assert len(faults) == 3


def _idx_arrays(path):
    idx = path.read_bytes()
    _, _, n, docs = struct.unpack_from("<QBQQ", idx, 9)
    sizes = np.frombuffer(idx, np.int32, n, 34).copy()
    pointers = np.frombuffer(idx, np.int64, n, 34 + 4 * n).copy()
    doc_idx = np.frombuffer(idx, np.int64, docs, 34 + 12 * n).copy()
    return idx[:34], sizes, pointers, doc_idx


def _set_idx(out, data):
    """Write the first shard's .idx with the index's checksum and bytes updated to match."""
    import hashlib

    index = index_of(out)
    entry, side = index["shards"][0], index["shards"][0]["sidecars"][0]
    old = (out / side["path"]).stat().st_size
    replace_file(out / side["path"], data)
    side["sha256"] = hashlib.sha256(data).hexdigest()
    for agg in (entry, index["splits"][entry["split"]], index["totals"]):
        agg["bytes"] += len(data) - old
    write_index(out, index)
    return entry["path"], side["path"]


@pytest.mark.parametrize("damage,fault", [
    ("pointer", "{idx}: 1 pointers off (first: sequence 3 at byte {p}, expected {e}: sequences lie back to back)"),
    ("doc_idx", "{idx}: doc_idx is not 0..{n} (one document per sequence)"),
    ("size", "{bin}: {bytes} bytes, the .idx sizes need {need}"),
    ("count", "{idx}: {n} sequences, index says {samples} samples"),
    ("cut", "{idx}: {cut} bytes, but {n} sequences and {docs} document entries need {len}"),
])  # fmt: skip
def test_an_inconsistent_megatron_index_fails_naming_it(copy_of, damage, fault):
    out = copy_of("megatron", "none")
    entry = index_of(out)["shards"][0]
    idx_path = out / entry["sidecars"][0]["path"]
    head, sizes, pointers, doc_idx = _idx_arrays(idx_path)
    original = idx_path.read_bytes()
    n = len(sizes)
    values = {"idx": entry["sidecars"][0]["path"], "bin": entry["path"], "n": n, "samples": entry["samples"],
              "p": int(pointers[3]) + 4, "e": int(pointers[3]), "docs": len(doc_idx), "len": len(original),
              "cut": len(original) - 8, "bytes": (out / entry["path"]).stat().st_size,
              "need": 4 * (int(sizes.sum()) - 1)}  # fmt: skip
    if damage == "pointer":
        pointers[3] += 4
    elif damage == "doc_idx":
        doc_idx[2] = 1
    elif damage == "size":
        sizes[-1] -= 1  # the last sequence, so no pointer moves
    elif damage == "count":
        head = head[:18] + struct.pack("<QQ", n - 1, n)
        sizes, pointers, values["n"] = sizes[:-1], pointers[:-1], n - 1
        doc_idx = doc_idx[:-1]
    data = original[:-8] if damage == "cut" else head + sizes.tobytes() + pointers.tobytes() + doc_idx.tobytes()
    _set_idx(out, data)
    assert fault.format(**values) in validate_output(out)[0]


def test_a_missing_megatron_index_fails_naming_it(copy_of):
    out = copy_of("megatron", "none")
    side = index_of(out)["shards"][2]["sidecars"][0]["path"]
    (out / side).unlink()
    assert validate_output(out)[0] == [f"{side}: listed in the index but missing"]


def test_the_cli_validates_an_npy_output_and_exits_1_naming_a_corrupt_file(copy_of):
    out = copy_of("npy", "none")
    runner = CliRunner()
    ok = runner.invoke(cli, ["validate", str(out)])
    assert ok.exit_code == 0 and "valid: " in ok.output and " npy shards" in ok.output
    name = index_of(out)["shards"][0]["path"]
    replace_file(out / name, (out / name).read_bytes()[:-4])
    bad = runner.invoke(cli, ["validate", str(out)])
    assert bad.exit_code == 1 and f"FAULT {name}: " in bad.output
    shown = runner.invoke(cli, ["inspect", str(out), "-n", "1"])
    assert shown.exit_code == 2 and f"error: {name}: cannot read the shard" in shown.output


@pytest.mark.parametrize("fmt,compression,cut", [
    ("safetensors", "none", "the tensors end at byte"), ("safetensors", "zstd", "the tensors end at byte"),
    ("npy", "gzip", ""), ("parquet", "none", ""),
])  # fmt: skip
def test_a_shard_cut_short_fails_even_with_matching_checksums(copy_of, fmt, compression, cut):
    import hashlib

    out = copy_of(fmt, compression)
    index = index_of(out)
    entry = index["shards"][0]
    path = out / entry["path"]
    raw = read_decompressed(path) if compression != "none" else path.read_bytes()
    data = raw[:-16] if compression == "none" else compress(raw[:-16], compression)
    replace_file(path, data)
    for agg in (index["splits"][entry["split"]], index["totals"]):
        agg["bytes"] += len(data) - entry["bytes"]
    entry["bytes"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    write_index(out, index)
    faults = validate_output(out)[0]
    assert len(faults) == 1 and faults[0].startswith(f"{entry['path']}: not a readable {fmt} shard (")
    assert cut in faults[0] and str(out) not in faults[0], faults
