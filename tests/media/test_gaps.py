"""Media documents meet every step consistently, near-dedup compares media, packing keeps spans whole,
embedded media is not read twice, and video sampling seeks."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from corpusforge.errors import RecipeError
from corpusforge.shards.packer import Packer
from corpusforge.tokenize.special import BOS, EOS, PAD

# sha256 of the packer's rows, lineage and truncated count on fixed random text documents, computed
# with the packer before media spans existed: the text path must stay byte-identical.
TEXT_PACKING = {
    "concat": "0fb3cf3f3ed05aebdad0fdbc4181d22f7f1e06074fe53b46ece07b5d945af758",
    "pad": "8949fc7d67f89aafa2cdd144c5220a530774a02240512a460432ef11d5155630",
    "truncate": "72762ae6b96b9b3b446a35ef313fde963e4ff8c6dba13589e9133d15a677d2a3",
}


def _pack_digest(mode: str, whole_spans: bool) -> str:
    rng = np.random.default_rng(7)
    docs = [rng.integers(16, 1000, size=int(n)).tolist() for n in rng.integers(0, 40, size=300)]
    p = Packer(16, mode, whole_spans=whole_spans)
    h = hashlib.sha256()
    lineage = []
    for i in range(0, 300, 37):
        lineage.append(p.add_documents(docs[i : i + 37]))
        h.update(p.take_full().tobytes())
    h.update(p.finish().tobytes())
    h.update(np.concatenate(lineage).tobytes())
    h.update(str(p.truncated_tokens).encode())
    return h.hexdigest()


@pytest.mark.parametrize("mode", ["concat", "pad", "truncate"])
@pytest.mark.parametrize("whole_spans", [False, True])
def test_text_packing_is_byte_identical(mode, whole_spans):
    assert _pack_digest(mode, whole_spans) == TEXT_PACKING[mode]


def _spans_whole(rows: np.ndarray) -> bool:
    """Every row opens and closes each media span it holds (no span crosses a row boundary)."""
    for row in rows.tolist():
        depth = 0
        for t in row:
            if t in (4, 6, 8):
                depth += 1
            elif t in (5, 7, 9):
                depth -= 1
                if depth < 0:
                    return False
        if depth:
            return False
    return True


IMG = [4, 100, 101, 102, 5]  # <IMG> three codes <IMG_END>


def test_concat_starts_a_crossing_span_on_the_next_row():
    plain = Packer(8)
    plain.add_documents([[20, 21, 22], [30, *IMG, 31]])
    assert not _spans_whole(plain.finish())  # the unchanged packer cuts the image at column 8
    p = Packer(8, whole_spans=True)
    lineage = p.add_documents([[20, 21, 22], [30, *IMG, 31]], ["a.png (document x)", "b.png (document y)"])
    rows = p.finish()
    assert rows.tolist() == [[BOS, 20, 21, 22, EOS, BOS, 30, PAD], [*IMG, 31, EOS, PAD]]
    assert p.span_padding == 1 and _spans_whole(rows)
    assert lineage.tolist() == [[0, 0, 0, 5], [1, 0, 5, 8], [1, 1, 0, 7]]  # the padding belongs to b.png


def test_pad_mode_splits_long_documents_between_spans():
    p = Packer(8, "pad", whole_spans=True)
    p.add_documents([[30, 31, *IMG, *IMG, 32]])
    rows = p.finish()
    assert _spans_whole(rows) and rows.tolist() == [[BOS, 30, 31, *IMG], [*IMG, 32, EOS, PAD]]


def test_truncate_cuts_between_spans_and_counts_no_padding():
    p = Packer(8, "truncate", whole_spans=True)
    p.add_documents([[30, 31, 32, *IMG, 33]])
    rows = p.finish()
    assert rows.tolist() == [[BOS, 30, 31, 32, PAD, PAD, PAD, PAD]] and p.truncated_tokens == 7


def test_a_span_longer_than_a_row_is_cut_into_whole_spans_or_named():
    p = Packer(8, whole_spans=True)
    p.add_documents([[30, 8, *range(100, 109), 9, 31]])  # a 9-code video span: 11 tokens, rows of 8
    rows = p.finish()
    assert rows.tolist() == [[BOS, 30, PAD, PAD, PAD, PAD, PAD, PAD], [8, *range(100, 106), 9],
                             [8, 106, 107, 108, 9, 31, EOS, PAD]]
    assert _spans_whole(rows) and p.split_spans == 1
    strict = Packer(8, whole_spans=True, split_long=False)
    with pytest.raises(RecipeError, match=r"clip.mp4 \(document 1f\).*9 tokens.*sequence_length >= 9"):
        strict.add_documents([[8, *range(100, 107), 9]], ["clip.mp4 (document 1f)"])


# -- near-duplicate steps compare media content ---------------------------------------------------

CAPTION = "A tabby cat sits on the windowsill in the morning sun and looks out at the garden birds"


def _media_doc(i: str, text: str, *hashes: str):
    from corpusforge.document import Document

    items = [{"uri": f"{h}.png", "kind": "image", "mime": "image/png", "bytes": 1, "hash": h} for h in hashes]
    return Document(text, id=i, source=f"{i}.png", metadata={"media": items}, media=items)


@pytest.mark.parametrize("kind", ["minhash_dedup", "simhash_dedup"])
def test_near_dedup_needs_the_same_media(kind, tmp_path):
    from corpusforge.document import Document
    from corpusforge.registry import STEPS
    from tests.dedup.helpers import run_step

    P = "\ufffc"
    docs = [
        _media_doc("a", P + CAPTION, "h1"),
        _media_doc("b", P + CAPTION, "h2"),  # another picture, same caption: kept
        _media_doc("c", P + CAPTION + (" today" if kind == "minhash_dedup" else ""), "h1"),  # a's again: removed
        _media_doc("d", "", "h3"),
        _media_doc("e", "", "h4"),  # two pictures without captions: both kept
        _media_doc("f", "", "h3"),  # d's picture again: removed
        Document(CAPTION, id="t", source="t.txt"),  # the caption as a text document: kept
    ]
    removed = run_step(STEPS.get(kind)(), [docs], tmp_path / kind)
    assert sorted(docs[r].id for r in removed[0]) == ["c", "f"]


def test_line_dedup_counts_caption_lines_per_media_and_never_empties_a_media_document(tmp_path):
    from corpusforge.dedup.lines import LineDedup, RemoveRepeatedLines
    from corpusforge.document import Document
    from corpusforge.observe.stats import TaskContext

    P = "\ufffc"
    same = [_media_doc(f"s{i}", P + CAPTION, "h1") for i in range(3)]  # one picture, three times
    other = [_media_doc(f"o{i}", P + CAPTION, f"x{i}") for i in range(3)]  # three pictures, one caption
    text = [Document(f"{CAPTION}\nline {i} of its own text here", id=f"t{i}", source="t") for i in range(3)]
    docs = same + other + text
    step = LineDedup(min_repeats=3, partitions=1)
    step.bind(tmp_path / "_work" / "line_dedup_0")
    ctx = TaskContext("curate", 0, tmp_path)
    assert len(list(step(iter(docs), ctx))) == 9
    step.decide(0, 1)
    remover = RemoveRepeatedLines()
    remover.setup(ctx)
    out = {d.id: remover.map(d) for d in docs}
    assert all(out[d.id].text == P for d in same)  # the placeholder stays; the document is not dropped
    assert all(out[d.id].text == P + CAPTION for d in other)  # different pictures: not repeated
    assert all(out[f"t{i}"].text == f"line {i} of its own text here" for i in range(3))


# -- every text-judging step meets media documents the same way ---------------------------------------

P = "\ufffc"
WORDS = [f"w{i}" for i in range(10)]


@pytest.fixture
def unigram_arpa(tmp_path):
    """A unigram model in which w0 is the likeliest word and w9 the least: perplexity rises with i."""
    lines = ["\\data\\", f"ngram 1={len(WORDS) + 3}", "", "\\1-grams:", "-99\t<s>", "-0.5\t</s>", "-5.0\t<unk>"]
    lines += [f"-{0.1 * (i + 1):.1f}\t{w}" for i, w in enumerate(WORDS)]
    path = tmp_path / "unigram.arpa"
    path.write_text("\n".join([*lines, "", "\\end\\", ""]), encoding="utf-8")
    return str(path)


def _through(step, docs, tmp_path):
    from corpusforge.observe.stats import TaskContext
    from corpusforge.step import run_step

    ctx = TaskContext("curate", 0, tmp_path)
    step.setup(ctx)
    return list(run_step(step, iter(docs), ctx)), ctx


def test_judges_score_the_caption_and_pass_media_without_text(unigram_arpa, tmp_path):
    from corpusforge.document import Document
    from corpusforge.models.perplexity import Perplexity

    docs = [Document("w0 w0 w1", id="t0", source="t"), _media_doc("likely", P + "w0 w1 w0", "h1"),
            _media_doc("bare", "", "h2"), _media_doc("unlikely", P + "w9 w9 w8", "h3"),
            Document("w9 w8 w9", id="t1", source="t"), _media_doc("page", f"w0 w0\n{P}\nw1\n{P}", "h4", "h5")]
    step = Perplexity(unigram_arpa, max_perplexity=4.0)
    out, ctx = _through(step, docs, tmp_path)
    assert [d.id for d in out] == ["t0", "likely", "bare", "page"]  # input order, the empty image kept
    by = {d.id: d for d in out}
    assert by["likely"].text == P + "w0 w1 w0" and by["page"].text == f"w0 w0\n{P}\nw1\n{P}"  # text restored
    assert "perplexity" not in by["bare"].metadata and by["likely"].metadata["perplexity"] < 4
    assert dict(ctx.stats_for(step).drops) == {"high_perplexity": 2}  # the caption judged "unlikely"


def test_keep_top_fraction_ranks_captions_and_keeps_media_without_text(unigram_arpa, tmp_path):
    from corpusforge.document import Document
    from corpusforge.models.perplexity import Perplexity
    from corpusforge.observe.stats import TaskContext
    from corpusforge.step import run_step

    step = Perplexity(unigram_arpa, keep_top_fraction=0.5)
    docs = [_media_doc("bare", "", "h1"), Document("w0 w0", id="a", source="t"), _media_doc("cap", P + "w9 w9", "h2"),
            Document("w1 w0", id="b", source="t"), Document("w9 w8", id="c", source="t")]
    step.bind(tmp_path / "kt")
    ctx = TaskContext("curate", 0, tmp_path)
    step.setup(ctx)
    assert [d.id for d in run_step(step, iter(docs), ctx)] == [d.id for d in docs]  # a corpus step sees every row
    assert docs[2].text == P + "w9 w9"
    step.decide(0, 1)
    assert step.removed(0) == {2: "below_top_fraction", 4: "below_top_fraction"}  # 2 of the 4 scored kept
    step.scorer.unscored = "drop"  # as llm_judge's unscored: drop: still no drop for the image without text
    assert 0 not in step.removed(0)


def test_prose_filters_skip_media_documents_in_order(tmp_path):
    from corpusforge.curate.quality import QualityThresholds
    from corpusforge.document import Document

    long = ("The river ran quietly past the old mill, where the miller kept his accounts in a small "
            "leather book. Every evening he counted the sacks of flour and wrote the number down.")
    docs = [Document(long, id="t0", source="t"), _media_doc("cap", P + "A cat.", "h1"),
            Document("too short", id="t1", source="t"), _media_doc("bare", "", "h2"),
            Document(long + " again", id="t2", source="t")]
    out, _ = _through(QualityThresholds(min_words=10), docs, tmp_path)
    assert [d.id for d in out] == ["t0", "cap", "bare", "t2"]


def test_redaction_keeps_placeholders(tmp_path):
    from corpusforge.privacy.pii import PII
    from corpusforge.privacy.secrets import Secrets

    secret = _media_doc("s", "api_key: Xk9mQ2vL8pZ4wR7tBq3" + P, "h1")
    (out,), _ = _through(Secrets(), [secret], tmp_path)
    assert out.text == "api_key: <SECRET>" + P  # on the whole text the key's match swallows the placeholder
    page = _media_doc("p", f"mail bob@example.com{P}or call\n{P}", "h1", "h2")
    (out,), _ = _through(PII(), [page], tmp_path)
    assert out.text == f"mail <EMAIL>{P}or call\n{P}" and out.metadata["pii"] == {"email": 1}
    (kept,), _ = _through(PII(mode="drop"), [_media_doc("b", "", "h3")], tmp_path)
    assert kept.id == "b"


def test_augmentation_rewrites_text_between_placeholders(tmp_path):
    from corpusforge.models.augment import RandomEdit, SentenceShuffle

    doc = _media_doc("d", f"One a. Two b. Three c. Four d.\n{P}\nFive e. Six f. Seven g.", "h1")
    out, _ = _through(SentenceShuffle(scope="document", seed=3), [doc], tmp_path)
    assert [d.id for d in out][0] == "d" and len(out) == 2
    copy = out[1]
    assert copy.text.count(P) == 1 and copy.text != doc.text and copy.media == doc.media
    before, after = copy.text.split(f"\n{P}\n")
    assert sorted(before.split(". ")) != before.split(". ") or sorted(after.split(". ")) != after.split(". ")
    assert set(before.rstrip(".").split(". ")) == {"One a", "Two b", "Three c", "Four d"}
    bare, _ = _through(RandomEdit(seed=1), [_media_doc("b", "", "h2")], tmp_path)
    assert [d.id for d in bare] == ["b"]  # nothing to edit: no copy, the image kept


# -- video sampling seeks to keyframes ------------------------------------------------------------------


def _gop_video(path, frames: int, gop: int) -> None:
    """A 32x32 mpeg4 clip with a keyframe every ``gop`` frames: frame i is grey level 2*i, plus a tone."""
    from fractions import Fraction

    av = pytest.importorskip("av")
    from tests.media.test_media import sine

    with av.open(str(path), "w") as out:
        v = out.add_stream("mpeg4", rate=Fraction(10))
        v.width = v.height = 32
        v.pix_fmt = "yuv420p"
        v.codec_context.gop_size = gop
        a = out.add_stream("aac", rate=16_000)
        for i in range(frames):
            out.mux(v.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), 2 * i, np.uint8), format="rgb24")))
        out.mux(v.encode(None))
        wave = sine(440, 16_000, frames / 10)
        for start in range(0, len(wave), 1024):
            frame = av.AudioFrame.from_ndarray(wave[start : start + 1024].reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = 16_000
            out.mux(a.encode(frame))
        out.mux(a.encode(None))


@pytest.mark.parametrize("sampling", ["uniform", "fps"])
def test_seeking_decodes_the_same_frames_and_audio(sampling, tmp_path):
    import io

    from corpusforge.media import decode

    clip = tmp_path / "gop.mp4"
    _gop_video(clip, 120, 10)  # 12 s, keyframes every second
    seeking = decode._seeking_video(clip, 5, 16_000, sampling, 0.5)
    assert seeking is not None  # mp4 seeks: the keyframe path was taken, not the fallback
    frames, audio = seeking
    ref_frames, ref_audio = decode.sequential_video(clip, 5, 16_000, sampling, 0.5)
    assert len(frames) == len(ref_frames) == 5 and all(np.array_equal(a, b) for a, b in zip(frames, ref_frames, strict=True))
    assert np.array_equal(audio, ref_audio) and len(audio) > 0
    levels = [int(np.median(f)) for f in frames]
    want = [0, 60, 119, 178, 238] if sampling == "uniform" else [0, 40, 80, 120, 160]  # frames 0,30,.. / 0,20,..
    assert all(abs(a - b) <= 3 for a, b in zip(levels, want, strict=True)), levels
    streamed = decode.decode_video(io.BytesIO(clip.read_bytes()), 5, sampling=sampling, fps=0.5)[0]
    assert all(np.array_equal(a, b) for a, b in zip(streamed, frames, strict=True))


# -- media that a page or a record embeds is not also a document of its own --------------------------


def test_embedded_media_is_skipped_unless_kept(tmp_path):
    import json
    import shutil

    from tests.conftest import SHARED_DATA
    from tests.ingest.helpers import read_all

    images = SHARED_DATA / "media" / "images"
    root = tmp_path / "site"
    (root / "pics").mkdir(parents=True)
    (root / "posts").mkdir()
    for name in ("board.png", "cam.png", "alone.png", "listed.png"):
        shutil.copy(images / ("camera.png" if name != "board.png" else "checkerboard.png"), root / "pics" / name)
    (root / "page.html").write_text("<html><body><p>A page about boards.</p><img src='pics/board.png'>"
                                    "<video><source src=\"pics/missing.mp4\"></video></body></html>")
    (root / "posts" / "post.html").write_text("<p>A post.</p><img alt=x src=../pics/cam.png>")
    (root / "pairs.jsonl").write_text(json.dumps({"image": "pics/listed.png", "caption": "listed"}) + "\n")
    docs, _ = read_all(root, tmp_path / "ctx", media="pass", text_field="caption")
    own = sorted(d.source.rsplit("/", 1)[1] for d in docs if d.source.endswith(".png"))
    # board.png is in page.html, listed.png in a record; post.html sits in a sibling folder, which is not
    # searched (only the image's folder and those above it), so cam.png stays a document too.
    assert own == ["alone.png", "cam.png"]
    carriers = sorted(d.source.rsplit("/", 1)[1] for d in docs if d.media and not d.source.endswith(".png"))
    assert carriers == ["page.html", "pairs.jsonl", "post.html"]  # the pages and the record keep their images
    docs, _ = read_all(root, tmp_path / "ctx2", media="pass", text_field="caption", embedded_media="keep")
    assert sorted(d.source.rsplit("/", 1)[1] for d in docs if d.source.endswith(".png")) == [
        "alone.png", "board.png", "cam.png", "listed.png"]
