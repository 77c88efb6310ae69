"""Media codes decode back to a PNG a person can look at and a WAV they can listen to: the image a
codebook sees correlates with its source, a tone keeps its pitch, speech keeps its loudness contour."""

from __future__ import annotations

import io

import numpy as np
import orjson
import pytest
from click.testing import CliRunner
from safetensors import safe_open

from corpusforge.cli import main as cli
from corpusforge.media import decode, features, reconstruct
from corpusforge.media.vq import Codebook
from tests.conftest import SHARED_DATA
from tests.media.test_media import sine
from tests.media.test_span_rows import _run

PIL = pytest.importorskip("PIL.Image")
sf = pytest.importorskip("soundfile")
MEDIA = SHARED_DATA / "media"
IMAGES = {"cat.png": "chelsea.png", "camera.png": "camera.png", "board.png": "checkerboard.png",
          "text.png": "text.png"}


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.reshape(-1).astype(float), b.reshape(-1).astype(float))[0, 1])


def _source(name: str) -> np.ndarray:
    """The source image as the codebook saw it: resized to 224 x 224 through the patches."""
    return features.patches_to_image(features.image_patches(decode.decode_image(MEDIA / "images" / name)[0]))


def test_an_image_span_decodes_to_its_source_resized_and_quantised():
    patches = [features.image_patches(decode.decode_image(MEDIA / "images" / n)[0]) for n in IMAGES.values()]
    book = Codebook.train("image", np.concatenate(patches), 64, config={"image_size": 224, "patch_size": 16})
    back = reconstruct.image_from_codes(book.encode(patches[0]), book)
    assert back.shape == (224, 224, 3) and back.dtype == np.uint8
    assert _corr(back, _source("chelsea.png")) > 0.8
    cut = reconstruct.image_from_codes(book.encode(patches[0])[:98], book)  # a span cut by a row: top half
    assert np.array_equal(cut[:112], back[:112]) and (cut[112:] == 128).all()
    strip = reconstruct.video_from_codes(np.concatenate([book.encode(p) for p in patches[:2]]), book)
    assert strip.shape == (224, 448, 3)


@pytest.mark.parametrize("kind", ["log_mel", "mfcc"])
@pytest.mark.parametrize("freq", [440, 1000])
def test_an_audio_span_decodes_to_a_tone_of_the_same_pitch(kind, freq):
    cfg = {"audio_features": kind, "n_mfcc": 20}
    rows = features.audio_rows(sine(freq, 16_000, 1.0), cfg)
    book = Codebook.train("audio", rows, 16, config=cfg)
    wave, rate = reconstruct.audio_from_codes(book.encode(rows), book)
    assert rate == 16_000 and abs(len(wave) - 16_000) <= 400 and np.abs(wave).max() <= 1.0
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()] - freq) < 2 * 16_000 / 400 / 2


def test_speech_keeps_its_loudness_contour_and_the_wav_reads_back():
    speech = decode.decode_audio(MEDIA / "audio" / "jfk.flac")
    rows = features.log_mel(speech)
    book = Codebook.train("audio", rows, 64, config={})
    wave, rate = reconstruct.audio_from_codes(book.encode(rows), book)

    def loudness(x: np.ndarray) -> np.ndarray:
        n = len(x) // 160
        return np.sqrt((x[: n * 160].reshape(n, 160) ** 2).mean(axis=1))

    a, b = loudness(speech), loudness(wave)
    assert _corr(a[: len(b)], b[: len(a)]) > 0.85
    data, back_rate = sf.read(io.BytesIO(reconstruct.wav_bytes(wave, rate)), dtype="float32")
    assert back_rate == rate and np.abs(data - wave).max() < 1e-4


def test_spans_of_a_row_name_cut_spans():
    layout = {"media": {"image": {"offset": 100, "size": 10}, "audio": {"offset": 110, "size": 10}}}
    row = np.array([101, 102, 5, 20, 6, 111, 112, 7, 4, 103])  # an image cut by the start and one by the end
    got = [(m, c.tolist(), whole) for m, c, whole in reconstruct.spans_of_row(row, layout)]
    assert got == [("image", [1, 2], False), ("audio", [1, 2], True), ("image", [3], False)]


@pytest.fixture(scope="module")
def run_out(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("recon"), "concat", 2048)


def test_inspect_media_writes_a_rows_images_and_audio_back(run_out, tmp_path):
    index = orjson.loads((run_out / "shard_index.json").read_bytes())
    for split in index["splits"]:  # every row of every split, numbered within its split
        row = 0
        for s in (s for s in index["shards"] if s["split"] == split):
            with safe_open(str(run_out / s["path"]), framework="numpy") as f:
                ids = f.get_tensor("input_ids")
            for r in range(len(ids)):
                res = CliRunner().invoke(cli, ["inspect", str(run_out), "--split", split, "--media", str(row + r),
                                               "--media-out", str(tmp_path / split)])
                assert res.exit_code == 0, res.output
                assert ("wrote" in res.output) == bool(((ids[r] >= 4) & (ids[r] <= 9)).any())
            row += len(ids)
    written = sorted(tmp_path.rglob("*.*"))
    pngs = [np.asarray(PIL.open(p).convert("RGB")) for p in written if p.name.endswith("_image.png")]
    assert len(pngs) == 4 and all(p.shape == (224, 224, 3) for p in pngs)
    best = {src: max(_corr(p, _source(src)) for p in pngs) for src in IMAGES.values()}
    assert best["chelsea.png"] > 0.7 and best["camera.png"] > 0.7, best
    wavs = [p for p in written if p.name.endswith("_audio.wav")]
    assert len(wavs) == 2  # the tone and the clip's audio track
    reads = [sf.read(str(p)) for p in wavs]
    assert all(rate == 16_000 for _, rate in reads)
    assert any(0.9 < len(data) / 16_000 < 1.1 for data, _ in reads)  # the 1 s tone


def test_inspect_media_names_a_row_out_of_range(run_out, tmp_path):
    res = CliRunner().invoke(cli, ["inspect", str(run_out), "--media", "99999", "--media-out", str(tmp_path)])
    assert res.exit_code != 0 and "row 99999: split 'train' has rows 0-" in res.output
