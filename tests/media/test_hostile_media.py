"""Hostile media never stops a run: a decompression bomb, random bytes named .jpg, a truncated PNG,
broken audio and video are quarantined with the file and reason and counted in stats.json, the card
and the report; animated GIFs give all their frames; a loaded codebook must match the recipe."""

from __future__ import annotations

import os
import shutil

import numpy as np
import orjson
import pytest
import yaml
from click.testing import CliRunner

from corpusforge.cli import main as cli
from corpusforge.errors import CorruptInput, RecipeError
from corpusforge.media import decode, ingest
from corpusforge.media.sequence import media_features
from corpusforge.media.stage import check_codebooks
from corpusforge.media.vq import Codebook
from corpusforge.observe.report import media_line
from corpusforge.recipe import MediaConfig
from corpusforge.shards.validate import validate_output
from tests.conftest import SHARED_DATA
from tests.media.test_media import sine, tiny_video

PIL = pytest.importorskip("PIL.Image")
sf = pytest.importorskip("soundfile")
MEDIA = SHARED_DATA / "media"
CAPTION = "A tabby cat looks up at the camera from a wooden floor in the afternoon light."


def bomb_png(path, side: int = 14_000) -> None:
    """A 1-bit ``side`` x ``side`` PNG: ~24 KB on disk, 588 MB once decoded as RGB."""
    PIL.new("1", (side, side)).save(path, optimize=True)


def animated_gif(path, frames: int = 5) -> None:
    imgs = [PIL.new("RGB", (32, 32), (40 * i, 255 - 40 * i, 0)) for i in range(frames)]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=100, loop=0)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    bomb_png(d / "bomb.png")
    (d / "random.jpg").write_bytes(np.random.default_rng(3).bytes(6000))
    png = (MEDIA / "images" / "chelsea.png").read_bytes()
    (d / "cut.png").write_bytes(png[: len(png) // 2])
    flac = (MEDIA / "audio" / "jfk.flac").read_bytes()
    (d / "cut.flac").write_bytes(flac[: len(flac) // 3])
    (d / "random.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + np.random.default_rng(4).bytes(6000))
    animated_gif(d / "anim.gif")
    return d


def test_a_bomb_is_refused_from_its_header_with_its_size(hostile):
    assert (hostile / "bomb.png").stat().st_size < 200_000
    with pytest.raises(CorruptInput, match=r"bomb.png: image too large"):
        decode.decode_image(hostile / "bomb.png")
    side = 9_500  # over MAX_PIXELS, under Pillow's own 2x error: only a warning in Pillow
    bomb_png(hostile / "big.png", side)
    with pytest.raises(CorruptInput, match=rf"big.png: image too large: {side}x{side} = 90,250,000 pixels"):
        decode.decode_image(hostile / "big.png")
    why = ingest.refusal("image", "image/png", (hostile / "big.png").read_bytes())
    assert why.startswith("image too large")


@pytest.mark.parametrize("name,kind,match", [
    ("random.jpg", "image", "no image signature"),
    ("cut.png", "image", "cannot decode image: OSError: image file is truncated"),
    ("cut.flac", "audio", "cannot decode audio"),
    ("random.mp4", "video", "cannot decode video"),
])
def test_broken_files_are_corrupt_input_naming_the_file(hostile, name, kind, match):
    with pytest.raises(CorruptInput, match=rf"{name}: .*{match}"):
        if name == "random.jpg":
            decode.media_kind(hostile / name)
        media_features(hostile / name, kind, MediaConfig().features())


def test_random_bytes_named_jpg_are_not_an_image(hostile):
    data = (hostile / "random.jpg").read_bytes()
    assert ingest.kind_of(data, "random.jpg") is None
    assert ingest.kind_of((MEDIA / "images" / "chelsea.jpg").read_bytes(), "x.jpg") == ("image", "image/jpeg")


def test_an_animated_gif_gives_its_frames_each_an_image_segment(hostile):
    cfg = MediaConfig(image_size=32, patch_size=16, max_video_frames=3).features()
    segs = media_features(hostile / "anim.gif", "image", cfg)
    assert [m for m, _ in segs] == ["image"] * 3 and all(r.shape == (4, 768) for _, r in segs)
    # frames 0, 2, 4 picked evenly: their red channel is 0, 80, 160
    reds = [round(float(r[0, 0]) * 255) for _, r in segs]
    assert reds == [0, 80, 160]
    with PIL.open(MEDIA / "images" / "newtonscradle.gif") as im:
        total = im.n_frames
    frames = decode.decode_image(MEDIA / "images" / "newtonscradle.gif", max_frames=1000)
    assert len(frames) == total > 1


def _folder(root, hostile):
    root.mkdir()
    shutil.copy(MEDIA / "images" / "chelsea.png", root / "cat.png")
    (root / "cat.txt").write_text(CAPTION)
    shutil.copy(MEDIA / "images" / "camera.png", root / "camera.png")
    for name in ("bomb.png", "random.jpg", "cut.png", "cut.flac", "anim.gif"):
        shutil.copy(hostile / name, root / name)
    pics = root / "pics"
    pics.mkdir()
    bomb_png(pics / "inner_bomb.png")  # embedded in the page: reaches codebook training and encoding
    (root / "page.html").write_text(
        "<html><body><p>A page about very large pictures, which some people send to crash servers.</p>"
        "<img src='pics/inner_bomb.png'><p>The text after the picture stays in the corpus.</p></body></html>")
    sf.write(str(root / "tone.wav"), sine(440, 16_000, 1.0), 16_000)
    tiny_video(root / "clip.mp4", frames=12)
    (root / "notes.txt").write_text("The river ran quietly past the old mill. " * 20)
    return root


def _run(base, folder, media_extra: dict | None = None):
    recipe = base / "r.yaml"
    res = CliRunner().invoke(cli, ["init", str(recipe), "--preset", "multimodal", "--media", str(folder),
                                   "--output", str(base / "out")])
    assert res.exit_code == 0, res.output
    data = yaml.safe_load(recipe.read_text())
    data["media"] = {**(data.get("media") or {}), "codebook_size": 16, **(media_extra or {})}
    data["sharding"]["sequence_length"] = 512
    recipe.write_text(yaml.safe_dump(data))
    return CliRunner().invoke(cli, ["run", str(recipe), "-w", "1", "-q"])


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, hostile):
    base = tmp_path_factory.mktemp("hrun")
    res = _run(base, _folder(base / "in", hostile))
    assert res.exit_code == 0, res.output
    return base / "out", res.output


def _quarantine(out):
    return [orjson.loads(line) for f in sorted((out / "quarantine").rglob("*.jsonl"))
            for line in f.read_bytes().splitlines()]


def test_a_folder_with_bombs_and_broken_files_runs_to_valid_shards(hostile_run):
    out, _ = hostile_run
    faults, summary = validate_output(out)
    assert faults == [] and summary["samples"] > 0
    where = {os.path.basename(q["location"].split(" at ")[0]): q["reason"] for q in _quarantine(out)}
    assert where["bomb.png"].startswith("image too large")
    assert where["random.jpg"].startswith("cannot decode image: no image signature")
    assert where["cut.png"].startswith("cannot decode image")
    assert where["inner_bomb.png"].startswith("image too large")
    assert where["cut.flac"].startswith("cannot decode audio")


def test_decode_failures_are_in_stats_the_card_the_report_and_the_summary(hostile_run):
    out, _ = hostile_run
    stats = orjson.loads((out / "stats.json").read_bytes())
    media = stats["media"]
    # the page's bomb, cut.png (its header is whole) and cut.flac: skipped in codebook training and
    # left out of their documents in the shards
    want = {"image too large": 1, "cannot decode image": 1, "cannot decode audio": 1}
    assert media["decode_failures"] == media["codebook_decode_failures"] == want
    assert media["failed_items"] == 3 and media["tokens"] > 0
    assert {"span_padding", "split_spans", "filled_rows"} <= set(media)
    # files refused at ingest (bomb.png from its header, random.jpg) are curate quarantines
    assert stats["quarantine"] == {"image too large": 1, "cannot decode image": 1}
    assert media_line(stats).startswith("media: ") and "image too large 1" in media_line(stats)
    card = (out / "README.md").read_text()
    assert "## Media" in card and "shards: image too large" in card
    assert "<h2>Media</h2>" in (out / "report.html").read_text()
    res = CliRunner().invoke(cli, ["card", str(out)])
    assert res.exit_code == 0, res.output


def test_the_page_keeps_its_text_when_its_bomb_is_left_out(hostile_run):
    out, _ = hostile_run
    res = CliRunner().invoke(cli, ["inspect", str(out), "-n", "50", "--chars", "100000"])
    assert res.exit_code == 0 and "The text after the picture stays in the corpus." in res.output


def test_a_loaded_codebook_of_other_features_is_refused_before_any_work(tmp_path):
    book = Codebook.train("image", np.random.default_rng(0).random((64, 192), dtype=np.float32), 8,
                          config={"image_size": 64, "patch_size": 8})
    book.save(tmp_path / "cb")
    with pytest.raises(RecipeError, match=r"media.codebooks.image: .* was trained with image_size 64 but the "
                                          r"recipe has media.image_size 224; set media.image_size: 64"):
        check_codebooks(MediaConfig(codebooks={"image": str(tmp_path / "cb")}))
    check_codebooks(MediaConfig(codebooks={"image": str(tmp_path / "cb")}, image_size=64, patch_size=8))
    audio = Codebook.train("audio", np.random.default_rng(0).random((64, 80), dtype=np.float32), 8, config={})
    audio.save(tmp_path / "au")
    with pytest.raises(RecipeError, match=r"audio_features 'log_mel' but the recipe has media.audio_features "
                                          r"'mfcc'; .*--audio-features mfcc"):
        check_codebooks(MediaConfig(codebooks={"audio": str(tmp_path / "au")}, audio_features="mfcc"))


def test_a_run_with_a_mismatched_codebook_stops_before_curation(tmp_path, hostile):
    book = Codebook.train("image", np.random.default_rng(0).random((64, 192), dtype=np.float32), 8,
                          config={"image_size": 64, "patch_size": 8})
    book.save(tmp_path / "cb")
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(MEDIA / "images" / "camera.png", folder / "camera.png")
    res = _run(tmp_path, folder, {"codebooks": {"image": str(tmp_path / "cb")}})
    assert res.exit_code != 0 and "was trained with image_size 64" in res.output
    assert not (tmp_path / "out" / "_state" / "curate").exists()


def test_tokenizer_train_audio_makes_an_mfcc_codebook_a_recipe_loads(tmp_path):
    res = CliRunner().invoke(cli, ["tokenizer", "train", "audio", str(MEDIA / "audio" / "jfk.flac"), "-o",
                                   str(tmp_path / "cb"), "--codebook-size", "16", "--audio-features", "mfcc",
                                   "--n-mfcc", "20"])
    assert res.exit_code == 0, res.output
    book = Codebook.load(tmp_path / "cb")
    assert book.centroids.shape == (16, 20) and book.config["audio_features"] == "mfcc"
    check_codebooks(MediaConfig(codebooks={"audio": str(tmp_path / "cb")}, audio_features="mfcc", n_mfcc=20))
    with pytest.raises(RecipeError, match="n_mfcc 20 but the recipe has media.n_mfcc 13"):
        check_codebooks(MediaConfig(codebooks={"audio": str(tmp_path / "cb")}, audio_features="mfcc"))


def test_tokenizer_train_skips_a_bomb_and_names_it(tmp_path, hostile):
    folder = tmp_path / "imgs"
    folder.mkdir()
    shutil.copy(hostile / "bomb.png", folder / "bomb.png")
    shutil.copy(MEDIA / "images" / "camera.png", folder / "camera.png")
    res = CliRunner().invoke(cli, ["tokenizer", "train", "image", str(folder), "-o",
                                                   str(tmp_path / "cb"), "--codebook-size", "16"])
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())  # rich wraps long lines
    assert "bomb.png: image too large" in said and "from 1 files" in said


def test_with_loaded_codebooks_the_bombs_are_quarantined_in_the_shards_stage(hostile_run, hostile, tmp_path):
    trained, _ = hostile_run
    books = {m: str(trained / "codebooks" / m) for m in ("image", "audio", "video")}
    res = _run(tmp_path, _folder(tmp_path / "in", hostile), {"codebooks": books})
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    assert validate_output(out)[0] == []
    stats = orjson.loads((out / "stats.json").read_bytes())
    assert stats["media"]["decode_failures"] == {"image too large": 1, "cannot decode image": 1,
                                                 "cannot decode audio": 1}
    assert stats["media"]["codebook_decode_failures"] == {}  # nothing was trained
    reasons = [q["reason"] for q in _quarantine(out) if "inner_bomb.png" in q["location"]]
    assert len(reasons) == 1 and reasons[0].startswith("image too large")


def test_audio_over_the_length_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(decode, "MAX_AUDIO_SECONDS", 2)
    sf.write(str(tmp_path / "long.flac"), np.zeros(3 * 8000, np.float32), 8000)
    with pytest.raises(CorruptInput, match=r"long.flac: audio too long: 3 s, over the 2 s limit"):
        decode.decode_audio(tmp_path / "long.flac")
    tiny_video(tmp_path / "clip.mp4", frames=20)  # 20 frames at 10 fps: 2 s of audio track
    monkeypatch.setattr(decode, "MAX_AUDIO_SECONDS", 1)
    for seek in (True, False):
        with pytest.raises(CorruptInput, match=r"clip.mp4: audio too long"):
            decode.decode_video(tmp_path / "clip.mp4", seek=seek)
    sf.write(str(tmp_path / "short.flac"), np.zeros(8000, np.float32), 8000)
    assert len(decode.decode_audio(tmp_path / "short.flac")) == 16_000
