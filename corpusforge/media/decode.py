"""Decode media by content (magic bytes, never the extension) with wheel-bundled codecs.

Images go through Pillow (every frame of an animated GIF/WebP, converted to RGB); audio through
soundfile (wav/flac/ogg/mp3) or PyAV (m4a and anything soundfile cannot open), mixed to mono and
resampled; video through PyAV in one demuxing pass, frames picked uniformly or at a frame rate.
Every decoder takes a path or a binary stream (inline ``data:`` media, remote files).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import numpy as np

from corpusforge.errors import CorruptInput
from corpusforge.extract.detect import HEAD_BYTES, sniff

Source = str | Path | IO[bytes]  # a path, or the bytes of inline/remote media


def _name(source: Source) -> str:
    return str(source) if isinstance(source, (str, Path)) else "inline media"


def _rewound(source: Source) -> str | IO[bytes]:
    """A path as a string, or the stream from its start (one source may be decoded twice)."""
    if isinstance(source, (str, Path)):
        return str(source)
    source.seek(0)
    return source


def media_kind(path: str | Path) -> str:
    """``image``, ``audio`` or ``video`` from the file's first bytes; raises on anything else."""
    p = Path(path)
    with open(p, "rb") as f:
        head = f.read(HEAD_BYTES)
    kind = sniff(head, p.name)
    if not kind.is_media:
        raise CorruptInput(str(p), f"not an image, audio or video file (content looks like {kind.family})")
    return kind.family


def decode_image(path: Source, max_frames: int = 1) -> list[np.ndarray]:
    """Up to ``max_frames`` frames of an image as (H, W, 3) uint8 RGB arrays (grayscale/RGBA converted)."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        with Image.open(_rewound(path)) as im:
            frames = []
            for frame in ImageSequence.Iterator(im):
                frames.append(np.asarray(frame.convert("RGB"), dtype=np.uint8))
                if len(frames) >= max_frames:
                    break
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise CorruptInput(_name(path), f"cannot decode image: {exc}") from exc
    return frames


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``wave`` (mono float32) from ``rate`` Hz to ``target`` Hz with a polyphase filter."""
    if rate == target:
        return wave.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    ratio = Fraction(target, rate)
    return resample_poly(wave, ratio.numerator, ratio.denominator).astype(np.float32)


def decode_audio(path: Source, sample_rate: int = 16_000) -> np.ndarray:
    """A mono float32 waveform at ``sample_rate`` Hz, clipped to [-1, 1] (MP3 decoders and the
    resampling filter overshoot full scale on loud recordings)."""
    import soundfile as sf

    try:
        data, rate = sf.read(_rewound(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError):
        return np.clip(_av_audio(path, sample_rate), -1.0, 1.0)
    return np.clip(resample(data.mean(axis=1), rate, sample_rate), -1.0, 1.0)


def _av_audio(path: Source, sample_rate: int) -> np.ndarray:
    import av

    try:
        with av.open(_rewound(path)) as container:
            if not container.streams.audio:
                raise CorruptInput(_name(path), "no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            chunks = []
            for frame in container.decode(audio=0):
                chunks.extend(r.to_ndarray().reshape(-1) for r in resampler.resample(frame))
            chunks.extend(r.to_ndarray().reshape(-1) for r in resampler.resample(None))
    except av.error.FFmpegError as exc:
        raise CorruptInput(_name(path), f"cannot decode audio: {exc}") from exc
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def _stream_frames(stream: Any, container: Any) -> int:
    """The video's frame count: from the container, else estimated from its duration and rate."""
    if stream.frames:
        return int(stream.frames)
    rate = float(stream.average_rate or stream.guessed_rate or 0)
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    else:
        seconds = (container.duration or 0) / 1_000_000
    return max(1, round(seconds * rate)) if rate and seconds else 0


def decode_video(source: Source, max_frames: int = 32, sample_rate: int = 16_000, sampling: str = "uniform",
                 fps: float = 1.0) -> tuple[list[np.ndarray], np.ndarray]:
    """Up to ``max_frames`` RGB frames and the audio track (empty without one), in one demuxing pass.

    ``uniform`` picks frames evenly from first to last (the count comes from the container or, when
    it has none, from duration x frame rate; the last frame decoded closes the pick when that
    estimate was high); ``fps`` takes one frame every ``1/fps`` seconds from the start. Only picked
    frames are converted and kept, so a long video never holds more than ``max_frames`` frames.
    """
    import av

    name = _name(source)
    frames: list[np.ndarray] = []
    chunks: list[np.ndarray] = []
    try:
        with av.open(_rewound(source)) as container:
            if not container.streams.video:
                raise CorruptInput(name, "no video stream")
            video = container.streams.video[0]
            audio = container.streams.audio[0] if container.streams.audio else None
            video.thread_type = "AUTO"
            total = _stream_frames(video, container)
            picks: list[int] = []
            if sampling == "uniform" and total:
                picks = sorted(set(np.linspace(0, total - 1, min(max_frames, total)).round().astype(int).tolist()))
            next_pick, next_time, seen, last = 0, 0.0, 0, None
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate) if audio else None
            for packet in container.demux(*(s for s in (video, audio) if s is not None)):
                for frame in packet.decode():
                    if packet.stream.type == "audio":
                        chunks.extend(r.to_ndarray().reshape(-1) for r in resampler.resample(frame))
                        continue
                    i, seen, last = seen, seen + 1, frame
                    if len(frames) >= max_frames:
                        continue
                    if sampling == "fps":
                        t = float(frame.time) if frame.time is not None else i / float(video.average_rate or 1)
                        if t + 1e-6 >= next_time:
                            frames.append(frame.to_ndarray(format="rgb24"))
                            next_time += 1.0 / fps
                    elif not picks or (next_pick < len(picks) and i == picks[next_pick]):
                        frames.append(frame.to_ndarray(format="rgb24"))
                        next_pick += 1
            if sampling == "uniform" and picks and next_pick < len(picks) and last is not None and seen - 1 > (
                    picks[next_pick - 1] if next_pick else -1):
                frames.append(last.to_ndarray(format="rgb24"))
            if resampler is not None:
                chunks.extend(r.to_ndarray().reshape(-1) for r in resampler.resample(None))
    except av.error.FFmpegError as exc:
        raise CorruptInput(name, f"cannot decode video: {exc}") from exc
    if not frames:
        raise CorruptInput(name, "video has no frames")
    wave = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return frames, np.clip(wave, -1.0, 1.0)
