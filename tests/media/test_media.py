"""Media decoding, features, VQ codebooks and interleaved sequences on real files and generated media."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from click.testing import CliRunner

from corpusforge.cli import main as cli
from corpusforge.errors import CorruptInput
from corpusforge.media import decode, features
from corpusforge.media.sequence import encode_with_mask, joint_vocabulary, media_features, modality_mask_of
from corpusforge.media.vq import Codebook
from tests.conftest import SHARED_DATA

pytest.importorskip("PIL")
sf = pytest.importorskip("soundfile")
av = pytest.importorskip("av")

MEDIA = SHARED_DATA / "media"


def sine(freq: float, rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def tiny_video(path, frames: int = 40, size: int = 32, with_audio: bool = True) -> None:
    """A PyAV-encoded mp4: frame i is uniformly grey level 5*i, plus a 440 Hz tone."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("mpeg4", rate=Fraction(10))
        v.width = v.height = size
        v.pix_fmt = "yuv420p"
        a = out.add_stream("aac", rate=16_000) if with_audio else None
        for i in range(frames):
            img = np.full((size, size, 3), 5 * i, np.uint8)
            out.mux(v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(v.encode(None))
        if a is not None:
            wave = sine(440, 16_000, frames / 10)
            for start in range(0, len(wave), 1024):
                chunk = wave[start:start + 1024].reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                frame.sample_rate = 16_000
                out.mux(a.encode(frame))
            out.mux(a.encode(None))


def test_kind_is_read_from_content_not_extension(tmp_path):
    liar = tmp_path / "really_a_png.wav"
    liar.write_bytes((MEDIA / "images" / "camera.png").read_bytes())
    assert decode.media_kind(liar) == "image"
    assert decode.media_kind(MEDIA / "audio" / "jfk.flac") == "audio"
    assert decode.media_kind(MEDIA / "video" / "test.webm") == "video"
    prose = tmp_path / "notes.jpg"
    prose.write_text("just some prose, not a picture\n")
    with pytest.raises(CorruptInput, match="notes.jpg: not an image, audio or video file"):
        decode.media_kind(prose)


def test_images_decode_to_rgb_and_gif_keeps_frames(tmp_path):
    (gray,) = decode.decode_image(MEDIA / "images" / "camera.png")
    assert gray.ndim == 3 and gray.shape[2] == 3 and gray.dtype == np.uint8
    assert np.array_equal(gray[..., 0], gray[..., 1])  # grayscale spread over R, G, B
    frames = decode.decode_image(MEDIA / "images" / "newtonscradle.gif", max_frames=5)
    assert len(frames) == 5 and all(f.shape == frames[0].shape for f in frames)
    broken = tmp_path / "cut.png"
    broken.write_bytes((MEDIA / "images" / "camera.png").read_bytes()[:200])
    with pytest.raises(CorruptInput, match="cut.png: cannot decode image"):
        decode.decode_image(broken)


def test_patches_are_196_by_768_and_invert_exactly():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    p = features.image_patches(img)
    assert p.shape == (196, 768) and p.dtype == np.float32
    assert np.allclose(p[0].reshape(16, 16, 3), img[:16, :16] / 255.0)
    assert np.allclose(p[15].reshape(16, 16, 3), img[16:32, 16:32] / 255.0)  # row-major: 14 per row
    assert np.array_equal(features.patches_to_image(p), img)


def test_audio_resampled_and_log_mel_peaks_at_the_tone(tmp_path):
    wav = tmp_path / "tone.dat"  # the extension says nothing: soundfile reads the header
    sf.write(str(wav), np.stack([sine(1000, 8000, 1.0)] * 2, axis=1), 8000, format="WAV")
    wave = decode.decode_audio(wav, 16_000)
    assert len(wave) == 16_000
    mel = features.log_mel(wave)
    assert mel.shape == (1 + (16_000 - 400) // 160, 80)
    fb = features.mel_filterbank(16_000, 400, 80)
    bin_1k = round(1000 / (16_000 / 400))
    assert int(np.argmax(mel[40])) == int(np.argmax(fb[:, bin_1k]))
    for name in ("jfk.flac", "textract-raw_text.ogg", "markitdown-test.mp3", "markitdown-test.wav"):
        w = decode.decode_audio(MEDIA / "audio" / name)
        assert w.dtype == np.float32 and w.ndim == 1 and len(w) > 16_000 and np.abs(w).max() <= 1.0 + 1e-3
    info = sf.info(str(MEDIA / "audio" / "jfk.flac"))
    assert len(decode.decode_audio(MEDIA / "audio" / "jfk.flac")) == round(info.frames * 16_000 / info.samplerate)


def test_video_frames_uniform_and_audio_track(tmp_path):
    path = tmp_path / "clip.bin"
    tiny_video(tmp_path / "clip.mp4")
    (tmp_path / "clip.mp4").rename(path)
    assert decode.media_kind(path) == "video"
    frames, audio = decode.decode_video(path, max_frames=8)
    assert len(frames) == 8 and frames[0].shape == (32, 32, 3)
    levels = [int(np.median(f)) for f in frames]
    assert levels == sorted(levels) and levels[0] < 10 and levels[-1] > 180  # first .. last frame
    assert 0.9 * 64_000 < len(audio) < 1.1 * 64_000  # 4 s at 16 kHz
    frames, audio = decode.decode_video(MEDIA / "video" / "cockatoo.mp4", max_frames=4)
    assert len(frames) == 4


def test_codebook_trains_saves_loads_and_reports_quality(tmp_path):
    rng = np.random.default_rng(1)
    centres = rng.random((8, 12), dtype=np.float32)
    x = np.repeat(centres, 50, axis=0) + rng.normal(0, 0.001, (400, 12)).astype(np.float32)
    book = Codebook.train("image", x, 8, seed=0, config={"image_size": 224})
    codes = book.encode(x)
    assert len(set(codes.tolist())) == 8
    assert all(len(set(codes[i * 50:(i + 1) * 50].tolist())) == 1 for i in range(8))
    q = book.reconstruction(x)
    assert q["mse"] < 2e-6 and q["psnr_db"] > 55
    back = Codebook.load(book.save(tmp_path / "cb"))
    assert back.modality == "image" and back.config == {"image_size": 224}
    assert np.array_equal(back.centroids, book.centroids) and np.array_equal(back.encode(x), codes)
    cfg = json.loads((tmp_path / "cb" / "codebook.json").read_text())
    (tmp_path / "cb" / "codebook.json").write_text(json.dumps({**cfg, "size": 9}))
    with pytest.raises(CorruptInput, match=r"centroids are \[8, 12\] but codebook.json says size 9"):
        Codebook.load(tmp_path / "cb")
    with pytest.raises(ValueError, match="400 training vectors cannot make a codebook of 500 codes"):
        Codebook.train("image", x, 500)


class ByteTok:
    """A real, deterministic text encoder for the test: one id per UTF-8 byte, after the 16 specials."""

    vocab_size = 16 + 256

    def encode_batch(self, texts):
        return [[16 + b for b in t.encode()] for t in texts]


def test_interleaved_sequence_keeps_order_and_mask(tmp_path):
    cfg = {"image_size": 32, "patch_size": 16, "audio_sample_rate": 16_000, "n_mels": 20}
    img = MEDIA / "images" / "chelsea.png"
    tone = tmp_path / "tone.wav"
    sf.write(str(tone), sine(440, 16_000, 0.5), 16_000)
    img_rows = features.image_patches(decode.decode_image(img)[0], 32, 16)
    aud_rows = features.log_mel(decode.decode_audio(tone), 16_000, 20)
    books = {"image": Codebook.train("image", np.repeat(img_rows, 4, axis=0), 4, config=cfg),
             "audio": Codebook.train("audio", aud_rows, 4, config=cfg)}
    tok = ByteTok()
    ids, mask = encode_with_mask(["a cat", ("image", img), "hears", ("audio", tone)], tok, books)
    vocab = joint_vocabulary(tok.vocab_size, books)
    assert vocab == {"text_vocab_size": 272, "vocab_size": 280,
                     "media": {"image": {"offset": 272, "size": 4}, "audio": {"offset": 276, "size": 4}}}
    n_img, n_aud = 4, len(aud_rows)
    assert len(ids) == len(mask) == 5 + (n_img + 2) + 5 + (n_aud + 2)
    assert ids[:5].tolist() == [16 + b for b in b"a cat"] and mask[:5].tolist() == [0] * 5
    seg = ids[5:5 + n_img + 2]
    assert seg[0] == 4 and seg[-1] == 5 and ((272 <= seg[1:-1]) & (seg[1:-1] < 276)).all()
    assert seg[1:-1].tolist() == (books["image"].encode(img_rows) + 272).tolist()
    assert mask[5:5 + n_img + 2].tolist() == [1] * (n_img + 2)
    rest = 5 + n_img + 2
    assert ids[rest:rest + 5].tolist() == [16 + b for b in b"hears"] and not mask[rest:rest + 5].any()
    aud = ids[rest + 5:]
    assert aud[0] == 6 and aud[-1] == 7 and ((276 <= aud[1:-1]) & (aud[1:-1] < 280)).all()
    assert (mask[rest + 5:] == 2).all()
    assert np.array_equal(modality_mask_of(ids, vocab), mask)
    rows = np.concatenate([[2], ids, [3, 0, 0]]).reshape(1, -1)  # framed and padded, as in a shard
    assert np.array_equal(modality_mask_of(rows, vocab)[0], np.concatenate([[0], mask, [0, 0, 0]]))
    with pytest.raises(ValueError, match="clip.mp4: no video codebook"):
        encode_with_mask([("video", tmp_path / "clip.mp4")], tok, books)


def test_video_sequence_has_frames_then_its_audio(tmp_path):
    clip = tmp_path / "clip.mp4"
    tiny_video(clip, frames=20)
    cfg = {"image_size": 32, "patch_size": 16, "max_video_frames": 4, "n_mels": 20}
    (_, rows), (_, mel) = media_features(clip, "video", cfg)
    assert rows.shape == (4 * 4, 768)
    books = {"video": Codebook.train("video", rows, 4, config=cfg), "audio": Codebook.train("audio", mel, 4, config=cfg)}
    ids, mask = encode_with_mask([("video", clip)], ByteTok(), books)
    assert ids[0] == 8 and ids[17] == 9 and (mask[:18] == 3).all()
    assert ids[18] == 6 and ids[-1] == 7 and (mask[18:] == 2).all() and len(ids) == 18 + len(mel) + 2


def test_cli_trains_an_image_codebook(tmp_path):
    out = tmp_path / "img_cb"
    res = CliRunner().invoke(cli, ["tokenizer", "train", "image", str(MEDIA / "images"), "-o", str(out),
                                   "--codebook-size", "16", "--image-size", "64", "--iterations", "5"])
    assert res.exit_code == 0, res.output
    assert "from 11 files" in res.output and "PSNR" in res.output
    book = Codebook.load(out)
    assert book.size == 16 and book.centroids.shape == (16, 768) and book.config["image_size"] == 64
    res = CliRunner().invoke(cli, ["tokenizer", "train", "video", str(MEDIA / "images"), "-o", str(out)])
    assert res.exit_code == 2 and "no video files under" in res.output
