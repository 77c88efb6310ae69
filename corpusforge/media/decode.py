"""Decode media by content (magic bytes, never the extension) with wheel-bundled codecs.

Images go through Pillow (every frame of an animated GIF/WebP, converted to RGB); audio through
soundfile (wav/flac/ogg/mp3) or PyAV (m4a and anything soundfile cannot open), mixed to mono and
resampled; video through PyAV, frames picked uniformly over the stream.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from corpusforge.errors import CorruptInput
from corpusforge.extract.detect import HEAD_BYTES, sniff


def media_kind(path: str | Path) -> str:
    """``image``, ``audio`` or ``video`` from the file's first bytes; raises on anything else."""
    p = Path(path)
    with open(p, "rb") as f:
        head = f.read(HEAD_BYTES)
    kind = sniff(head, p.name)
    if not kind.is_media:
        raise CorruptInput(str(p), f"not an image, audio or video file (content looks like {kind.family})")
    return kind.family


def decode_image(path: str | Path, max_frames: int = 1) -> list[np.ndarray]:
    """Up to ``max_frames`` frames of an image as (H, W, 3) uint8 RGB arrays (grayscale/RGBA converted)."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            frames = []
            for frame in ImageSequence.Iterator(im):
                frames.append(np.asarray(frame.convert("RGB"), dtype=np.uint8))
                if len(frames) >= max_frames:
                    break
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise CorruptInput(str(path), f"cannot decode image: {exc}") from exc
    return frames


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``wave`` (mono float32) from ``rate`` Hz to ``target`` Hz with a polyphase filter."""
    if rate == target:
        return wave.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    ratio = Fraction(target, rate)
    return resample_poly(wave, ratio.numerator, ratio.denominator).astype(np.float32)


def decode_audio(path: str | Path, sample_rate: int = 16_000) -> np.ndarray:
    """A mono float32 waveform at ``sample_rate`` Hz, clipped to [-1, 1] (MP3 decoders and the
    resampling filter overshoot full scale on loud recordings)."""
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError):
        return np.clip(_av_audio(path, sample_rate), -1.0, 1.0)
    return np.clip(resample(data.mean(axis=1), rate, sample_rate), -1.0, 1.0)


def _av_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise CorruptInput(str(path), "no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            chunks = []
            for frame in container.decode(audio=0):
                chunks.extend(r.to_ndarray().reshape(-1) for r in resampler.resample(frame))
            chunks.extend(r.to_ndarray().reshape(-1) for r in resampler.resample(None))
    except av.error.FFmpegError as exc:
        raise CorruptInput(str(path), f"cannot decode audio: {exc}") from exc
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def decode_video(path: str | Path, max_frames: int = 32, sample_rate: int = 16_000
                 ) -> tuple[list[np.ndarray], np.ndarray]:
    """Up to ``max_frames`` RGB frames picked uniformly over the video, and its audio track (may be empty)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise CorruptInput(str(path), "no video stream")
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except av.error.FFmpegError as exc:
        raise CorruptInput(str(path), f"cannot decode video: {exc}") from exc
    if len(frames) > max_frames:
        picks = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        frames = [frames[i] for i in picks]
    try:
        audio = _av_audio(path, sample_rate)
    except CorruptInput:
        audio = np.zeros(0, np.float32)
    return frames, audio
