"""The multimodal preset end to end, and the media documents it is built from."""

from __future__ import annotations

import base64
import json
import shutil

import numpy as np
import orjson
import pytest
from click.testing import CliRunner
from safetensors import safe_open

from corpusforge.cli import main as cli
from corpusforge.media import decode, features
from corpusforge.media.ingest import interleaved_html
from corpusforge.media.items import PLACEHOLDER, parts_of
from corpusforge.media.sequence import modality_mask_of
from corpusforge.recipe import load_recipe
from corpusforge.shards.formats import safetensors_bytes
from corpusforge.shards.validate import validate_output
from corpusforge.tokenize.special import BOS, IGNORE_INDEX, NUM_SPECIAL, PAD
from tests.conftest import SHARED_DATA
from tests.ingest.helpers import read_all
from tests.media.test_media import sine, tiny_video

sf = pytest.importorskip("soundfile")
MEDIA = SHARED_DATA / "media"
PROSE = ("The river ran quietly past the old mill, where the miller kept his accounts in a small "
         "leather book. Every evening he counted the sacks of flour and wrote the number down.\n") * 3


def mixed_folder(root):
    """Text, a captioned image, a plain image, HTML with a local and an inline image, a tone, a video."""
    root.mkdir()
    (root / "notes.txt").write_text(PROSE)
    shutil.copy(MEDIA / "images" / "chelsea.png", root / "cat.png")
    (root / "cat.txt").write_text("A tabby cat looks up at the camera.")
    shutil.copy(MEDIA / "images" / "camera.png", root / "camera.png")
    pics = root / "pics"
    pics.mkdir()
    shutil.copy(MEDIA / "images" / "checkerboard.png", pics / "board.png")
    inline = base64.b64encode((MEDIA / "images" / "text.png").read_bytes()).decode()
    (root / "page.html").write_text(
        "<html><head><title>Boards</title></head><body><nav>Home | About</nav>"
        f"<p>{PROSE[:120]}</p><img src='pics/board.png' alt='a board'><p>Between the pictures.</p>"
        f"<img src='data:image/png;base64,{inline}'><img src='https://example.com/x.png'>"
        "<p>After them.</p><script>var x = 1;</script></body></html>")
    sf.write(str(root / "tone.wav"), sine(440, 16_000, 1.0), 16_000)
    tiny_video(root / "clip.mp4", frames=20)
    return root


def run_preset(base, sharding=""):
    """The multimodal preset of ``corpusforge init`` over ``mixed_folder``, small; ``sharding`` adds
    YAML lines to its ``sharding`` section. Returns the output folder."""
    folder = mixed_folder(base / "mixed")
    recipe = base / "r.yaml"
    runner = CliRunner()
    res = runner.invoke(cli, ["init", str(recipe), "--preset", "multimodal", "--media", str(folder),
                              "--output", str(base / "out")])
    assert res.exit_code == 0, res.output
    text = recipe.read_text().replace("codebook_size: 256", "codebook_size: 64")
    # sequence_length 2048: the clip's 8-frame video span (1570 tokens) fits a row
    recipe.write_text(text.replace("sequence_length: 2048", "sequence_length: 2048" + sharding))
    res = runner.invoke(cli, ["run", str(recipe), "-w", "1", "-q"])
    assert res.exit_code == 0, res.output
    return base / "out"


@pytest.fixture(scope="module")
def run_out(tmp_path_factory):
    return run_preset(tmp_path_factory.mktemp("mm"))


def _shards(out):
    index = orjson.loads((out / "shard_index.json").read_bytes())
    for s in index["shards"]:
        with safe_open(str(out / s["path"]), framework="numpy") as f:
            yield s, {k: f.get_tensor(k) for k in f.keys()}


def test_preset_runs_a_mixed_folder_into_valid_interleaved_shards(run_out):
    faults, summary = validate_output(run_out)
    assert faults == [] and summary["shards"] >= 1
    index = orjson.loads((run_out / "shard_index.json").read_bytes())
    layout = index["media"]
    assert layout["text_vocab_size"] == index["tokenizer"]["vocab_size"]
    assert set(layout["media"]) == {"image", "audio", "video"}
    assert all(r["size"] == 64 for r in layout["media"].values())
    ids = np.concatenate([t["input_ids"].reshape(-1) for _, t in _shards(run_out)])
    # 2 image files (board.png is in the page, so not a document of its own: embedded_media skip) + 2
    # images of the page (the web one skipped); the tone and the clip's audio track.
    assert int((ids == 4).sum()) == int((ids == 5).sum()) == 4
    assert int((ids == 6).sum()) == 2 and int((ids == 8).sum()) == 1
    img = layout["media"]["image"]
    codes = ids[(ids >= img["offset"]) & (ids < img["offset"] + img["size"])]
    assert len(codes) == 4 * 196  # 224x224 in 16x16 patches
    vid = layout["media"]["video"]
    assert int(((ids >= vid["offset"]) & (ids < vid["offset"] + vid["size"])).sum()) == 8 * 196


def test_modality_mask_and_labels_follow_the_ids(run_out):
    layout = orjson.loads((run_out / "shard_index.json").read_bytes())["media"]
    seen = set()
    for _, t in _shards(run_out):
        ids, mask, labels = t["input_ids"], t["modality_mask"], t["labels"]
        assert np.array_equal(mask, modality_mask_of(ids, layout))
        seen |= set(np.unique(mask).tolist())
        masked = np.isin(ids, [PAD, BOS])  # EOS and the media markers keep their labels
        assert (labels[masked] == IGNORE_INDEX).all() and np.array_equal(labels[~masked], ids[~masked])
        markers = (ids >= 4) & (ids <= 9)
        assert (mask[markers] > 0).all() and (mask[ids == PAD] == 0).all()
        assert (mask[(ids >= NUM_SPECIAL) & (ids < layout["text_vocab_size"])] == 0).all()
    assert seen == {0, 1, 2, 3}


def test_page_keeps_text_and_images_in_document_order(run_out):
    docs = [json.loads(line) for f in sorted((run_out / "documents").glob("*.parquet"))
            for line in _parquet_json(f)]
    page = next(d for d in docs if d["source"].endswith("page.html"))
    pieces = page["text"].split(PLACEHOLDER)
    assert len(pieces) == 3 and "river ran quietly" in pieces[0] and pieces[1].strip() == "Between the pictures."
    assert pieces[2].strip() == "After them." and "Home" not in page["text"] and "var x" not in page["text"]
    assert [m["uri"] for m in page["metadata"]["media"]][0].endswith("pics/board.png")
    assert page["metadata"]["media"][1]["uri"] == "data:" and page["metadata"]["media_skipped"] == 1
    cat = next(d for d in docs if d["source"].endswith("cat.png"))
    assert cat["text"] == PLACEHOLDER + "A tabby cat looks up at the camera."
    assert not any(d["source"].endswith("cat.txt") for d in docs)  # consumed as the caption


def _parquet_json(path):
    import pyarrow.parquet as pq

    for r in pq.read_table(path).to_pylist():
        yield json.dumps({**r, "metadata": json.loads(r["metadata"])})


def test_inspect_shows_media_spans_and_loader_returns_the_mask(run_out):
    res = CliRunner().invoke(cli, ["inspect", str(run_out), "-n", "50", "--chars", "100000"])
    assert res.exit_code == 0, res.output
    assert "<IMG ×196>" in res.output and "<VIDEO" in res.output and "<AUDIO" in res.output
    from corpusforge.loader import ShardIterator

    batch = next(iter(ShardIterator(run_out, batch_size=1, shuffle=False, prefetch=0)))
    assert batch["modality_mask"].dtype == np.uint8 and batch["modality_mask"].shape == batch["input_ids"].shape


def _rewrite(out, shard, tensors):
    """Replace one shard's tensors and fix its index entry, so only the tensor checks can object."""
    path = out / shard["path"]
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
    data = safetensors_bytes(tensors, meta)
    assert len(data) == shard["bytes"]
    path.write_bytes(data)
    index = orjson.loads((out / "shard_index.json").read_bytes())
    import hashlib

    for s in index["shards"]:
        if s["path"] == shard["path"]:
            s["bytes"], s["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    (out / "shard_index.json").write_bytes(orjson.dumps(index))


def test_validate_catches_a_corrupted_mask_and_a_stray_code(run_out, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(run_out, out)
    shard, t = next(_shards(out))
    layout = orjson.loads((out / "shard_index.json").read_bytes())["media"]
    t = {k: v.copy() for k, v in t.items()}
    row, col = map(int, np.argwhere(t["modality_mask"] == 1)[0])
    t["modality_mask"][row, col] = 0
    _rewrite(out, shard, t)
    faults, _ = validate_output(out)
    assert len(faults) == 1 and "modality_mask disagrees with input_ids at 1 positions" in faults[0]
    assert f"row {row}, position {col}: mask 0, ids say 1" in faults[0]
    t["modality_mask"][row, col] = 1
    text_pos = np.argwhere((t["input_ids"] >= NUM_SPECIAL) & (t["input_ids"] < layout["text_vocab_size"]))
    r, c = map(int, text_pos[len(text_pos) // 2])
    t["input_ids"][r, c] = t["labels"][r, c] = layout["media"]["audio"]["offset"]
    t["modality_mask"][r, c] = 2
    _rewrite(out, shard, t)
    faults, _ = validate_output(out)
    assert any("audio codes outside <AUDIO> ... <AUDIO_END>" in f and f"row {r}, position {c}" in f for f in faults)


def test_an_ids_only_format_is_validated_against_the_layout_too(tmp_path):
    """npy shards hold input_ids alone: validate derives the mask from the layout and still finds
    media codes outside their markers."""
    import hashlib

    from corpusforge.loader.reader import read_stored
    from corpusforge.shards.formats import compress, get_format

    out = run_preset(tmp_path, "\n  format: npy\n  compression: zstd")
    assert validate_output(out)[0] == []
    res = CliRunner().invoke(cli, ["inspect", str(out), "-n", "50", "--chars", "100000"])
    assert res.exit_code == 0 and "<IMG ×196>" in res.output and "<AUDIO" in res.output
    index = orjson.loads((out / "shard_index.json").read_bytes())
    shard, layout = index["shards"][0], index["media"]
    assert shard["path"].endswith(".npy.zst")
    ids = np.array(read_stored(out / shard["path"])["input_ids"])
    # the first text token of the shard: right after an <IMG_END>, in a row without audio markers
    r, c = map(int, np.argwhere((ids >= NUM_SPECIAL) & (ids < layout["text_vocab_size"]))[0])
    ids[r, c] = layout["media"]["audio"]["offset"]
    data = compress(get_format("npy").encode({"input_ids": ids}, {})[".npy"], "zstd")
    (out / shard["path"]).unlink()
    (out / shard["path"]).write_bytes(data)
    index["splits"][shard["split"]]["bytes"] += len(data) - shard["bytes"]
    index["totals"]["bytes"] += len(data) - shard["bytes"]
    shard["bytes"], shard["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    (out / "shard_index.json").write_bytes(orjson.dumps(index))
    assert validate_output(out)[0] == [
        f"{shard['path']}: 1 audio codes outside <AUDIO> ... <AUDIO_END> (first: row {r}, position {c})"]


def test_html_interleaving_resolves_local_and_inline_images(tmp_path):
    shutil.copy(MEDIA / "images" / "camera.png", tmp_path / "a.png")
    png = base64.b64encode((MEDIA / "images" / "checkerboard.png").read_bytes()).decode()
    html = (f"<html><body><h1>T</h1><p>one</p><figure><img src='a.png?v=2'><figcaption>cap</figcaption></figure>"
            f"<p>two <b>bold</b> end</p><img src='missing.png'><img src='data:image/png;base64,{png}'></body></html>")
    text, meta, items = interleaved_html(html.encode(), str(tmp_path / "p.html"))
    assert text.split("\n") == ["T", "one", PLACEHOLDER, "cap", "two bold end", PLACEHOLDER]
    assert [i["kind"] for i in items] == ["image", "image"] and items[0]["uri"] == str(tmp_path / "a.png")
    assert meta["media_skipped"] == 1 and "data" in items[1]
    parts = parts_of(text, items)
    assert [p if isinstance(p, str) else p["uri"][:5] for p in parts] == [
        "T\none\n", str(tmp_path / "a.png")[:5], "\ncap\ntwo bold end\n", "data:"]


def test_records_name_their_media_and_missing_media_is_quarantined(tmp_path):
    shutil.copy(MEDIA / "images" / "camera.png", tmp_path / "cam.png")
    lines = [{"image": "cam.png", "caption": "a man with a camera"}, {"image": "gone.png", "caption": "lost"},
             {"caption": "just words"}]
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    (tmp_path / "cam.json").write_text(json.dumps({"caption": "sidecar", "license": "CC0"}))
    # embedded_media keep: cam.png is also a document of its own (with its sidecar), beside the record's copy
    docs, quarantined = read_all(tmp_path, tmp_path / "ctx", media="pass", text_field="caption",
                                 include=["*.jsonl", "*.png", "*.json"], embedded_media="keep")
    by_text = {d.text: d for d in docs}
    assert set(by_text) == {PLACEHOLDER + "a man with a camera", "just words", PLACEHOLDER + "sidecar"}
    assert by_text[PLACEHOLDER + "sidecar"].metadata["license"] == "CC0"
    rec = by_text[PLACEHOLDER + "a man with a camera"]
    assert rec.metadata["media"][0]["uri"] == str(tmp_path / "cam.png") and rec.media == rec.metadata["media"]
    assert by_text["just words"].media is None
    assert len(quarantined) == 1 and "gone.png" in quarantined[0]["reason"]


def test_text_filters_pass_media_and_exact_dedup_compares_media_content(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png", "d.png"):
        shutil.copy(MEDIA / "images" / "camera.png", folder / name)  # the same picture three times
    shutil.copy(MEDIA / "images" / "chelsea.png", folder / "c.png")
    for stem in ("c", "b"):
        (folder / f"{stem}.txt").write_text("short")  # same caption, different content for c
    from corpusforge import run

    recipe = {"preset": "multimodal", "sources": [{"path": str(folder)}], "tokenizer": {"vocab_size": 300},
              "media": {"codebook_size": 8, "image_size": 32}, "sharding": {"sequence_length": 64},
              "output": {"documents": "jsonl"}}
    stats = run(load_recipe(recipe), output=str(tmp_path / "out"), workers=1, progress=False)
    kept = [json.loads(x) for f in (tmp_path / "out" / "documents").glob("*.jsonl") for x in f.read_text().splitlines()]
    assert sorted(d["source"].rsplit("/", 1)[1] for d in kept) == ["a.png", "b.png", "c.png"]
    # d.png repeats a.png (same bytes, no caption); b.png differs from a.png by its caption.
    assert stats["documents"]["kept"] == 3 and stats["documents"]["read"] == 4


def test_video_fps_sampling_caps_and_mfcc(tmp_path):
    clip = tmp_path / "clip.mp4"
    tiny_video(clip, frames=40)  # 4 s at 10 fps, grey level 5*i
    frames, audio = decode.decode_video(clip, max_frames=100, sampling="fps", fps=2.0)
    assert len(frames) == 8 and len(audio) > 0
    levels = [int(np.median(f)) for f in frames]
    assert levels == sorted(levels) and abs(levels[1] - levels[0] - 25) <= 3  # every 5th frame
    assert len(decode.decode_video(clip, max_frames=3, sampling="fps", fps=2.0)[0]) == 3
    with open(clip, "rb") as fh:
        import io

        assert len(decode.decode_video(io.BytesIO(fh.read()), max_frames=4)[0]) == 4
    mel = features.log_mel(sine(1000, 16_000, 0.5))
    mf = features.audio_rows(sine(1000, 16_000, 0.5), {"audio_features": "mfcc", "n_mfcc": 13})
    assert mf.shape == (len(mel), 13)
    from scipy.fft import dct

    assert np.allclose(mf, dct(mel, type=2, axis=1, norm="ortho")[:, :13], atol=1e-4)


def test_text_recipes_keep_their_fingerprint_and_yaml():
    """The media section is absent from text recipes: their hash (carried by every shard) is the
    one computed before the section existed, less the source path (left out since issue 24). The
    default task_bytes went from 64 MB to 4 MiB in issue 19 (tasks cut the shards, so it is hashed);
    with the old value given, the old hash comes back."""
    old = load_recipe({"sources": [{"path": "/tmp/x"}], "executor": {"task_bytes": 64_000_000}})
    assert old.fingerprint() == "a36a360a3533b64c3d21cf33859dde279e6c04f0177601abde36ac09836fac2f"
    recipe = load_recipe({"sources": [{"path": "/tmp/x"}]})
    assert "media" not in recipe.to_yaml()
    assert recipe.build_sources()[0].media == "quarantine"
    multi = load_recipe({"preset": "multimodal", "sources": [{"path": "/tmp/x"}]})
    assert multi.build_sources()[0].media == "pass" and "media:" in multi.to_yaml()


def test_learned_encoders_write_embeddings_aligned_with_media_ids(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    vision = tmp_path / "clip"
    transformers.CLIPVisionModel(transformers.CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
        patch_size=16)).save_pretrained(vision)
    transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        vision)
    speech = tmp_path / "w2v"
    transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, conv_dim=(16, 16),
        conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        vocab_size=10)).save_pretrained(speech)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16_000).save_pretrained(speech)
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(MEDIA / "images" / "camera.png", folder / "a.png")
    shutil.copy(MEDIA / "images" / "chelsea.png", folder / "b.png")
    sf.write(str(folder / "tone.wav"), sine(440, 16_000, 0.5), 16_000)
    from corpusforge import run

    recipe = {"preset": "multimodal", "sources": [{"path": str(folder)}], "tokenizer": {"vocab_size": 300},
              "media": {"codebook_size": 8, "image_size": 32, "encoders": {"image": str(vision), "audio": str(speech)}},
              "sharding": {"sequence_length": 64, "splits": {"train": 1.0}}}
    out = tmp_path / "out"
    run(load_recipe(recipe), output=str(out), workers=1, progress=False)
    assert validate_output(out)[0] == []
    emb = orjson.loads((out / "shard_index.json").read_bytes())["media"]["embeddings"]
    assert emb["image"]["dim"] == 32 and emb["audio"]["dim"] == 32
    import pyarrow.parquet as pq
    from safetensors.numpy import load_file

    part = emb["image"]["parts"][0]
    vectors = load_file(str(out / part["embeddings"]))["embeddings"]
    ids = pq.read_table(out / part["ids"]).to_pylist()
    assert vectors.shape == (2, 32) and part["rows"] == 2 and np.isfinite(vectors).all()
    assert sorted(r["uri"].rsplit("/", 1)[1] for r in ids) == ["a.png", "b.png"]
    assert not np.allclose(vectors[0], vectors[1])  # two different pictures
    from corpusforge.media.encoders import LearnedEncoder

    row = next(i for i, r in enumerate(ids) if r["uri"].endswith("a.png"))
    again = LearnedEncoder("image", str(vision)).embed(folder / "a.png")
    assert np.allclose(vectors[row], again, atol=1e-5)
    audio = load_file(str(out / emb["audio"]["parts"][0]["embeddings"]))["embeddings"]
    assert audio.shape == (1, 32)
