"""Media codes back to something a person can look at and listen to: the approximation a model sees.

An image span's codes name codebook centroids, which are its patches (``features.image_patches``):
laid back in row-major order they are the image, resized and quantised. A video span is its frames
one after another. An audio span's centroids are log-mel frames (or MFCCs, inverted to log-mel by
the inverse DCT); the linear spectrogram is estimated from the mel filterbank by non-negative least
squares and a waveform found by Griffin-Lim (Griffin & Lim 1984), in NumPy (no librosa needed). The sound
is intelligible but phasey: VQ and the mel scale both discard detail.
"""

from __future__ import annotations

import io
import wave
from typing import Any

import numpy as np

from corpusforge.media import features
from corpusforge.media.sequence import MARKERS
from corpusforge.media.vq import Codebook

_OPEN = {start: m for m, (start, _) in MARKERS.items()}
_CLOSE = {end: m for m, (_, end) in MARKERS.items()}
GRAY = 0.5  # patches a cut span does not hold are shown mid-gray


def spans_of_row(ids: np.ndarray, layout: dict[str, Any]) -> list[tuple[str, np.ndarray, bool]]:
    """``(modality, codes, whole)`` of every media span in one shard row, in order; ``codes`` are
    codebook indices (the layout's offset removed); ``whole`` is False for a span the row's start
    or end cuts (it opens before the row or closes after it)."""
    ranges = {m: (r["offset"], r["offset"] + r["size"]) for m, r in layout["media"].items()}
    out: list[tuple[str, np.ndarray, bool]] = []
    current: str | None = None
    codes: list[int] = []
    opened = False
    for i in np.asarray(ids).tolist():
        if i in _OPEN:
            if current is not None:
                out.append((current, np.array(codes, np.int64), False))
            current, codes, opened = _OPEN[i], [], True
        elif i in _CLOSE:
            if current is not None or codes:
                out.append((_CLOSE[i], np.array(codes, np.int64), opened))
            current, codes, opened = None, [], False
        else:
            m = next((m for m, (lo, hi) in ranges.items() if lo <= i < hi), None)
            if m is None:
                continue
            if current is None:  # codes at the row's start: the span opened in the row before
                current, opened = m, False
            codes.append(i - ranges[m][0])
    if current is not None and codes:
        out.append((current, np.array(codes, np.int64), False))
    return out


def _grid(book: Codebook) -> tuple[int, int]:
    """Patches per side and patch size of the images ``book`` was trained on."""
    size, patch = int(book.config.get("image_size", 224)), int(book.config.get("patch_size", 16))
    return size // patch, patch


def image_from_codes(codes: np.ndarray, book: Codebook) -> np.ndarray:
    """The (image_size, image_size, 3) uint8 image of one image span's codes; patches a cut span
    lacks are gray."""
    g, patch = _grid(book)
    vectors = np.full((g * g, book.centroids.shape[1]), GRAY, np.float32)
    take = min(len(codes), g * g)
    vectors[:take] = book.decode(codes[:take])
    return features.patches_to_image(vectors, patch)


def video_from_codes(codes: np.ndarray, book: Codebook) -> np.ndarray:
    """A video span's frames side by side, one (image_size, frames * image_size, 3) uint8 strip."""
    g, _ = _grid(book)
    per = g * g
    frames = [image_from_codes(codes[i : i + per], book) for i in range(0, max(len(codes), 1), per)]
    return np.concatenate(frames, axis=1)


def griffin_lim(magnitude: np.ndarray, n_fft: int = 400, hop: int = 160, iterations: int = 48,
                seed: int = 0) -> np.ndarray:
    """A waveform whose STFT magnitude (frames, n_fft//2+1) approximates ``magnitude``, phase
    found by Griffin-Lim; the framing is ``features.log_mel``'s (Hann, no centring)."""
    window = np.hanning(n_fft)
    frames = len(magnitude)
    idx = (np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]).reshape(-1)
    length = n_fft + hop * (frames - 1)
    norm = np.maximum(np.bincount(idx, np.tile(window**2, frames), length), 1e-8)

    def istft(spec: np.ndarray) -> np.ndarray:  # windowed overlap-add, one bincount
        return np.bincount(idx, (np.fft.irfft(spec, n=n_fft, axis=1) * window).reshape(-1), length) / norm

    rng = np.random.default_rng(seed)
    x = istft(magnitude * np.exp(2j * np.pi * rng.random(magnitude.shape)))
    for _ in range(iterations):
        spec = np.fft.rfft(x[idx].reshape(frames, n_fft) * window, axis=1)
        x = istft(magnitude * np.exp(1j * np.angle(spec)))
    return x.astype(np.float32)


def mel_to_power(mel_power: np.ndarray, basis: np.ndarray, iterations: int = 100) -> np.ndarray:
    """The non-negative linear power spectrogram (frames, bins) whose mel projection through
    ``basis`` (n_mels, bins) is nearest ``mel_power``: non-negative least squares by multiplicative
    updates (Lee & Seung 2001), as librosa's ``mel_to_stft`` solves it; the pseudo-inverse rings
    and its clipped negatives move a tone's energy to other bins."""
    target = mel_power @ basis
    power = np.maximum(target, 1e-12)
    gram = basis.T @ basis
    for _ in range(iterations):
        power *= target / np.maximum(power @ gram, 1e-12)
    return power


def audio_from_codes(codes: np.ndarray, book: Codebook, iterations: int = 48) -> tuple[np.ndarray, int]:
    """An approximate mono waveform (float32 in [-1, 1]) of one audio span's codes and its rate."""
    from scipy.fft import idct

    cfg = book.config
    rate, n_mels = int(cfg.get("audio_sample_rate", 16_000)), int(cfg.get("n_mels", 80))
    n_fft, hop = 400, 160  # features.log_mel's 25 ms windows every 10 ms
    rows = book.decode(codes).astype(np.float64)
    if cfg.get("audio_features", "log_mel") == "mfcc":
        full = np.zeros((len(rows), n_mels))
        full[:, : rows.shape[1]] = rows
        rows = idct(full, type=2, axis=1, norm="ortho")  # log-mel, its fine detail above n_mfcc lost
    mel_power = np.maximum(np.exp(rows) - 1e-6, 0.0)
    basis = features.mel_filterbank(rate, n_fft, n_mels).astype(np.float64)
    wave_ = griffin_lim(np.sqrt(mel_to_power(mel_power, basis)), n_fft, hop, iterations)
    peak = float(np.abs(wave_).max()) if len(wave_) else 0.0
    return (wave_ / peak * 0.9 if peak > 1.0 else wave_).astype(np.float32), rate


def png_bytes(image: np.ndarray) -> bytes:
    """``image`` (H, W, 3) uint8 as PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """Mono float samples in [-1, 1] as 16-bit PCM WAV bytes (the standard library's ``wave``)."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).round().astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def render_span(modality: str, codes: np.ndarray, book: Codebook) -> tuple[str, bytes]:
    """``(suffix, file bytes)`` of one span: ``.png`` for an image or a video strip, ``.wav`` for audio."""
    if modality == "audio":
        samples, rate = audio_from_codes(codes, book)
        return ".wav", wav_bytes(samples, rate)
    image = image_from_codes(codes, book) if modality == "image" else video_from_codes(codes, book)
    return ".png", png_bytes(image)
