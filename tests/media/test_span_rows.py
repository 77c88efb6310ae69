"""Every packed row of a multimodal run holds something to train on, in every packing mode: a media
span that does not fit after a row's BOS is cut to fill the row (video at frame boundaries) instead
of leaving ``[BOS, PAD, ...]``, and ``truncate`` keeps the start of each clip."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
import yaml
from click.testing import CliRunner
from safetensors import safe_open

from corpusforge.cli import main as cli
from corpusforge.errors import RecipeError
from corpusforge.shards.packer import SPAN_CLOSE, SPAN_OPEN, Packer
from corpusforge.shards.validate import validate_output
from corpusforge.tokenize.special import BOS, EOS, NUM_SPECIAL, PAD
from tests.media.test_multimodal import mixed_folder

OPEN = {"image": 4, "audio": 6, "video": 8}
FRAME = 7  # codes per video frame in the generated documents


def _random_docs(seed: int, n: int = 300) -> list[list[int]]:
    """Documents of text runs and image (14 codes), audio (1-40) and video (1-5 frames of 7 codes)
    spans, a text token between any two spans (so merging cut pieces back is unambiguous)."""
    rng = np.random.default_rng(seed)
    docs = []
    while len(docs) < n:
        doc: list[int] = []
        for _ in range(int(rng.integers(1, 4))):
            kind = rng.choice(["text", "image", "audio", "video"], p=[0.3, 0.25, 0.25, 0.2])
            if kind == "text":
                doc += rng.integers(16, 99, int(rng.integers(1, 12))).tolist()
                continue
            if doc and doc[-1] in SPAN_CLOSE:
                doc.append(50)
            k = {"image": 14, "audio": int(rng.integers(1, 40)), "video": FRAME * int(rng.integers(1, 6))}[kind]
            doc += [OPEN[kind], *rng.integers(100, 200, k).tolist(), OPEN[kind] + 1]
        docs.append(doc)
    return docs


def _pack(docs, n, mode, frame_tokens=FRAME):
    p = Packer(n, mode, whole_spans=True, frame_tokens=frame_tokens)
    rows, lineage = [], []
    for i in range(0, len(docs), 23):
        lineage.append(p.add_documents(docs[i : i + 23]))
        rows.append(p.take_full())
    rows.append(p.finish())
    return p, np.concatenate(rows), np.concatenate(lineage)


def _merged(tokens: list[int]) -> list[int]:
    """Tokens without PAD, the pieces of a cut span joined back (``<M_END> <M>`` removed)."""
    out: list[int] = []
    for t in tokens:
        if t == PAD:
            continue
        if t in SPAN_OPEN and out and out[-1] == t + 1:
            out.pop()
            continue
        out.append(t)
    return out


def _spans_whole(row: list[int]) -> bool:
    depth = 0
    for t in row:
        depth += (t in SPAN_OPEN) - (t in SPAN_CLOSE)
        if depth not in (0, 1):
            return False
    return depth == 0


MODES = ["concat", "pad", "truncate"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n", [16, 17, 24])
@pytest.mark.parametrize("frame_tokens", [0, FRAME])
def test_no_row_is_left_without_a_token_to_train_on(mode, n, frame_tokens):
    _, rows, _ = _pack(_random_docs(n), n, mode, frame_tokens)
    for row in rows.tolist():
        assert _spans_whole(row), row
        # a text token or media code; or the EOS of a document that filled its rows exactly
        assert any(t >= NUM_SPECIAL for t in row) or row[0] == EOS, row


@pytest.mark.parametrize("mode", ["concat", "pad"])
@pytest.mark.parametrize("frame_tokens", [0, FRAME])
def test_cutting_and_padding_lose_no_token(mode, frame_tokens):
    docs = _random_docs(5)
    p, rows, lineage = _pack(docs, 16, mode, frame_tokens)
    framed = [t for d in docs for t in (BOS, *d, EOS)]
    assert _merged(rows.reshape(-1).tolist()) == framed
    assert p.split_spans > 0 and p.filled_rows > 0
    assert int(lineage[:, 1].max()) == len(rows) - 1  # the lineage names every row


def test_video_pieces_are_cut_at_frame_boundaries():
    docs = _random_docs(9)
    _, rows, _ = _pack(docs, 24, "concat")
    for row in rows.tolist():
        for start in [i for i, t in enumerate(row) if t == OPEN["video"]]:
            end = row.index(OPEN["video"] + 1, start)
            assert (end - start - 1) % FRAME == 0, row  # whole frames, rows of 22 code slots hold 3


def test_truncate_keeps_the_start_of_each_document():
    docs = _random_docs(11)
    p, rows, _ = _pack(docs, 16, "truncate")
    assert len(rows) == len(docs)
    for doc, row in zip(docs, rows.tolist(), strict=True):
        kept = _merged(row)
        kept = kept[:-1] if kept[-1] in SPAN_CLOSE and kept != [BOS, *doc, EOS][: len(kept)] else kept
        assert kept == [BOS, *doc, EOS][: len(kept)]
    assert p.truncated_tokens > 0


def test_a_span_that_fits_a_row_but_not_after_the_bos_fills_the_row():
    p = Packer(8, "pad", whole_spans=True)
    p.add_documents([[4, *range(100, 106), 5]])  # <IMG> 6 codes <IMG_END>: 8 tokens, the whole row
    assert p.finish().tolist() == [[BOS, 4, 100, 101, 102, 103, 104, 5], [4, 105, 5, EOS, PAD, PAD, PAD, PAD]]
    assert (p.filled_rows, p.split_spans, p.span_padding) == (1, 1, 0)


def test_concat_fills_a_row_holding_only_the_previous_eos_and_a_bos():
    p = Packer(8, whole_spans=True)
    p.add_documents([[20, 21, 22, 23, 24, 25], [4, *range(100, 106), 5]])
    assert p.finish().tolist() == [[BOS, 20, 21, 22, 23, 24, 25, EOS], [BOS, 4, 100, 101, 102, 103, 104, 5],
                                   [4, 105, 5, EOS, PAD, PAD, PAD, PAD]]
    live = Packer(8, whole_spans=True)  # text before the span in the row: it moves to the next row as before
    live.add_documents([[20, 21, 4, *range(100, 106), 5]])
    assert live.finish().tolist()[0] == [BOS, 20, 21, PAD, PAD, PAD, PAD, PAD] and live.filled_rows == 0


def test_truncate_keeps_whole_frames_of_a_video_that_starts_a_document():
    p = Packer(12, "truncate", whole_spans=True, frame_tokens=4)
    codes = list(range(100, 120))  # 5 frames of 4 codes
    p.add_documents([[8, *codes, 9, 31]])
    assert p.finish().tolist() == [[BOS, 8, *codes[:8], 9, PAD]]  # 2 whole frames fit after the BOS
    # cut off: pieces of 2 frames and 1 frame (8 + 2 and 4 + 2 tokens), 31, EOS
    assert p.filled_rows == 1 and p.truncated_tokens == 10 + 6 + 1 + 1


def test_truncate_moves_no_image_into_a_row_with_text():
    p = Packer(8, "truncate", whole_spans=True)
    p.add_documents([[30, 31, 32, 4, 100, 101, 102, 5, 33]])
    assert p.finish().tolist() == [[BOS, 30, 31, 32, PAD, PAD, PAD, PAD]] and p.filled_rows == 0


def test_long_spans_error_refuses_a_span_that_would_leave_a_row_empty():
    strict = Packer(8, "pad", whole_spans=True, split_long=False)
    with pytest.raises(RecipeError, match=r"cat.png \(document 3\): .*8 tokens .*after the 1 special tokens.*"
                                          r"sequence_length >= 9"):
        strict.add_documents([[4, *range(100, 106), 5]], ["cat.png (document 3)"])


def _run(base, packing: str, length: int):
    folder = mixed_folder(base / "mixed")
    recipe = base / "r.yaml"
    res = CliRunner().invoke(cli, ["init", str(recipe), "--preset", "multimodal", "--media", str(folder),
                                   "--output", str(base / "out")])
    assert res.exit_code == 0, res.output
    data = yaml.safe_load(recipe.read_text())
    data["media"] = {**(data.get("media") or {}), "codebook_size": 32}
    data["sharding"].update(sequence_length=length, packing=packing)
    recipe.write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(cli, ["run", str(recipe), "-w", "1", "-q"])
    assert res.exit_code == 0, res.output
    return base / "out"


def _rows(out):
    index = orjson.loads((out / "shard_index.json").read_bytes())
    rows = []
    for s in index["shards"]:
        with safe_open(str(out / s["path"]), framework="numpy") as f:
            rows.append(f.get_tensor("input_ids"))
    return index, np.concatenate(rows)


@pytest.mark.parametrize("packing", MODES)
def test_a_multimodal_run_emits_no_row_without_a_trainable_token(tmp_path, packing):
    out = _run(tmp_path, packing, 198)  # a 224x224 image span is 198 tokens: it fits only a row of its own
    assert validate_output(out)[0] == []
    _, ids = _rows(out)
    for row in ids.tolist():
        assert any(t >= NUM_SPECIAL for t in row) or row[0] == EOS, row[:12]
    stats = orjson.loads((out / "stats.json").read_bytes())["media"]
    assert stats["filled_rows"] > 0 and stats["split_spans"] > 0 and "span_padding" in stats


def test_truncate_keeps_the_first_whole_frames_of_a_video(tmp_path):
    out = _run(tmp_path, "truncate", 512)
    assert validate_output(out)[0] == []
    index, ids = _rows(out)
    video = index["media"]["media"]["video"]
    per_row = ((ids >= video["offset"]) & (ids < video["offset"] + video["size"])).sum(axis=1)
    assert per_row.tolist().count(2 * 196) == 1 and set(per_row.tolist()) == {0, 392}  # 2 of the clip's 8 frames
