"""Decode media by content (magic bytes, never the extension) with wheel-bundled codecs.

Images go through Pillow (every frame of an animated GIF/WebP, converted to RGB); audio through
soundfile (wav/flac/ogg/mp3) or PyAV (m4a and anything soundfile cannot open), mixed to mono and
resampled; video through PyAV in one demuxing pass, frames picked uniformly or at a frame rate.
Every decoder takes a path or a binary stream (inline ``data:`` media, remote files), and every
failure of a malformed file (random bytes, a truncated file, a decompression bomb, a codec's own
exception) is a ``CorruptInput`` naming it, so the caller quarantines the item and goes on.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import numpy as np

from corpusforge.errors import CorruptInput
from corpusforge.extract.detect import HEAD_BYTES, sniff

Source = str | Path | IO[bytes]  # a path, or the bytes of inline/remote media

# Pillow's own bomb limit (89,478,485 pixels, about 9,459 x 9,459): a larger image or video frame is
# quarantined before its pixels are decoded (a 14000 x 14000 PNG is 190 KB on disk, 588 MB as RGB).
MAX_PIXELS = 89_478_485
# Audio (a file, or a video's track) over an hour is refused from its header or while decoding: decoded
# at once, an hour is 230 MB at 16 kHz mono (1.4 GB as read at 48 kHz stereo).
MAX_AUDIO_SECONDS = 3600


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
    why = unsigned_image(kind.family, kind.mime)
    if why:
        raise CorruptInput(str(p), why)
    return kind.family


def unsigned_image(family: str, mime: str) -> str | None:
    """Why a file the sniffer calls an image only by its name is not one, else None: every image
    format Pillow reads here starts with a signature, so bytes without one (random bytes named
    ``.jpg``) cannot be decoded."""
    if family == "image" and not mime:
        return "cannot decode image: no image signature in its first bytes (only the file name says image)"
    return None


def too_large(width: int, height: int, what: str) -> str | None:
    """Why an image or frame of ``width`` x ``height`` is refused (over ``MAX_PIXELS``), else None."""
    if width * height > MAX_PIXELS:
        return (f"{what} too large: {width}x{height} = {width * height:,} pixels, over the {MAX_PIXELS:,} "
                "pixel limit (a decompression bomb?)")
    return None


def decode_image(path: Source, max_frames: int = 1) -> list[np.ndarray]:
    """Up to ``max_frames`` frames of an image as (H, W, 3) uint8 RGB arrays (grayscale/RGBA
    converted), picked evenly from first to last for an animated GIF/WebP/PNG with more frames.
    An image over ``MAX_PIXELS`` is refused from its header, before its pixels are decoded."""
    import warnings

    from PIL import Image

    name = _name(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked below
            with Image.open(_rewound(path)) as im:
                why = too_large(im.width, im.height, "image")
                if why:
                    raise CorruptInput(name, why)
                total = (getattr(im, "n_frames", 1) or 1) if max_frames > 1 else 1  # a GIF counts by seeking
                picks = sorted(set(np.linspace(0, total - 1, min(max_frames, total)).round().astype(int).tolist()))
                frames = []
                for i in picks:
                    im.seek(i)
                    frames.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
    except CorruptInput:
        raise
    except Image.DecompressionBombError as exc:
        raise CorruptInput(name, f"image too large (a decompression bomb?): {exc}") from None
    except Exception as exc:  # noqa: BLE001 -- Pillow's plugins raise many types on malformed files
        raise CorruptInput(name, f"cannot decode image: {type(exc).__name__}: {exc}") from None
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
        with sf.SoundFile(_rewound(path)) as f:
            _check_length(f.frames / f.samplerate if f.samplerate else 0.0, _name(path))
            data, rate = f.read(dtype="float32", always_2d=True), f.samplerate
    except CorruptInput:
        raise
    except Exception:  # noqa: BLE001 -- libsndfile cannot read it: PyAV tries, and names the failure
        return np.clip(_av_audio(path, sample_rate), -1.0, 1.0)
    if not data.size:
        raise CorruptInput(_name(path), "audio has no samples")
    return np.clip(resample(data.mean(axis=1), rate, sample_rate), -1.0, 1.0)


def _av_audio(path: Source, sample_rate: int) -> np.ndarray:
    import av

    try:
        with av.open(_rewound(path)) as container:
            if not container.streams.audio:
                raise CorruptInput(_name(path), "no audio stream")
            track = _Track(sample_rate, _name(path))
            for frame in container.decode(audio=0):
                track.add(frame)
            wave = track.wave()
    except CorruptInput:
        raise
    except (av.error.FFmpegError, OSError, ValueError, RuntimeError) as exc:
        raise CorruptInput(_name(path), f"cannot decode audio: {exc}") from None
    if not len(wave):
        raise CorruptInput(_name(path), "audio has no samples")
    return wave


class _Track:
    """An audio stream resampled to mono float32 at ``rate`` as PyAV decodes it, refused once it
    passes ``MAX_AUDIO_SECONDS`` (whatever its header said)."""

    def __init__(self, rate: int, name: str):
        import av

        self.rate, self.name, self.samples = rate, name, 0
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        self.chunks: list[np.ndarray] = []

    def add(self, frame: Any) -> None:
        for r in self.resampler.resample(frame):
            self.chunks.append(r.to_ndarray().reshape(-1))
            self.samples += len(self.chunks[-1])
        _check_length(self.samples / self.rate, self.name)

    def wave(self) -> np.ndarray:
        """Everything decoded (the resampler flushed), clipped to [-1, 1]."""
        self.chunks.extend(r.to_ndarray().reshape(-1) for r in self.resampler.resample(None))
        wave = np.concatenate(self.chunks).astype(np.float32) if self.chunks else np.zeros(0, np.float32)
        return np.clip(wave, -1.0, 1.0)


def _check_length(seconds: float, name: str) -> None:
    """Audio longer than ``MAX_AUDIO_SECONDS`` is refused (a tiny FLAC of hours of silence decodes
    to gigabytes of samples)."""
    if seconds > MAX_AUDIO_SECONDS:
        raise CorruptInput(name, f"audio too long: {seconds:,.0f} s, over the {MAX_AUDIO_SECONDS:,} s limit "
                           "(cut long recordings into parts)")


def _check_frame_size(stream: Any, name: str) -> None:
    """A video whose frames are over ``MAX_PIXELS`` is refused before a frame is decoded."""
    why = too_large(int(stream.codec_context.width or 0), int(stream.codec_context.height or 0), "video frame")
    if why:
        raise CorruptInput(name, why)


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
                 fps: float = 1.0, seek: bool = True) -> tuple[list[np.ndarray], np.ndarray]:
    """Up to ``max_frames`` RGB frames and the audio track (empty without one).

    ``uniform`` picks frames evenly from first to last; ``fps`` takes one frame every ``1/fps``
    seconds from the start. With ``seek`` (when every video packet has a timestamp and the
    container seeks) a first pass reads the packets without decoding video, for the frames'
    timestamps, the keyframes and the audio; then only the stretches from the keyframe before each
    picked frame to that frame are decoded, so a long video costs about the frames sampled (times
    the keyframe interval), not all its frames. Otherwise ``sequential_video`` decodes every frame.
    """
    if seek:
        try:
            got = _seeking_video(source, max_frames, sample_rate, sampling, fps)
        except CorruptInput:
            raise
        except Exception:  # noqa: BLE001 -- the sequential pass below gives the error, or copes
            got = None
        if got is not None:
            return got
    return sequential_video(source, max_frames, sample_rate, sampling, fps)


def _picks(pts: list[int], time_base: float, max_frames: int, sampling: str, fps: float) -> list[int]:
    """Timestamps of the frames to keep, from every frame's (sorted) ``pts``: the same frames
    ``sequential_video`` keeps."""
    if sampling == "uniform":
        idx = np.linspace(0, len(pts) - 1, min(max_frames, len(pts))).round().astype(int)
        return [pts[i] for i in sorted(set(idx.tolist()))]
    out, next_time = [], 0.0
    for p in pts:
        if len(out) >= max_frames:
            break
        if p * time_base + 1e-6 >= next_time:
            out.append(p)
            next_time += 1.0 / fps
    return out


def _seeking_video(source: Source, max_frames: int, sample_rate: int, sampling: str, fps: float
                   ) -> tuple[list[np.ndarray], np.ndarray] | None:
    """``decode_video`` by seeking to keyframes; None when the container does not allow it."""
    from bisect import bisect_right

    import av

    with av.open(_rewound(source)) as container:
        if not container.streams.video:
            return None
        video = container.streams.video[0]
        _check_frame_size(video, _name(source))
        audio = container.streams.audio[0] if container.streams.audio else None
        track = _Track(sample_rate, _name(source))
        pts: list[int] = []
        keys: list[int] = []
        for packet in container.demux(*(s for s in (video, audio) if s is not None)):
            if packet.stream.type == "audio":
                for frame in packet.decode():
                    track.add(frame)
            elif packet.size:
                if packet.pts is None:
                    return None
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
        wave = track.wave()
        pts.sort()
        keys.sort()
        if not pts or not keys or not video.time_base:
            return None
        targets = _picks(pts, float(video.time_base), max_frames, sampling, fps)
        if targets[0] < keys[0]:
            return None
        video.thread_type = "AUTO"
        frames: list[np.ndarray] = []
        decoded: Any = None
        at: int | None = None  # pts of the last frame decoded
        for target in targets:
            key = keys[bisect_right(keys, target) - 1]
            if decoded is None or at is None or key > at:  # the keyframe is ahead: jump to it
                container.seek(key, stream=video, backward=True, any_frame=False)
                decoded = container.decode(video)
            for frame in decoded:
                if frame.pts is None:
                    return None
                at = frame.pts
                if at >= target:
                    frames.append(frame.to_ndarray(format="rgb24"))
                    break
            else:
                return None
    return frames, wave


def sequential_video(source: Source, max_frames: int = 32, sample_rate: int = 16_000, sampling: str = "uniform",
                     fps: float = 1.0) -> tuple[list[np.ndarray], np.ndarray]:
    """``decode_video`` in one demuxing pass that decodes every frame (containers that cannot seek).

    The frame count comes from the container or, when it has none, from duration x frame rate; the
    last frame decoded closes a ``uniform`` pick when that estimate was high. Only picked frames are
    converted and kept, so a long video never holds more than ``max_frames`` frames.
    """
    import av

    name = _name(source)
    frames: list[np.ndarray] = []
    try:
        with av.open(_rewound(source)) as container:
            if not container.streams.video:
                raise CorruptInput(name, "no video stream")
            video = container.streams.video[0]
            _check_frame_size(video, name)
            audio = container.streams.audio[0] if container.streams.audio else None
            video.thread_type = "AUTO"
            total = _stream_frames(video, container)
            picks: list[int] = []
            if sampling == "uniform" and total:
                picks = sorted(set(np.linspace(0, total - 1, min(max_frames, total)).round().astype(int).tolist()))
            next_pick, next_time, seen, last = 0, 0.0, 0, None
            track = _Track(sample_rate, name)
            for packet in container.demux(*(s for s in (video, audio) if s is not None)):
                for frame in packet.decode():
                    if packet.stream.type == "audio":
                        track.add(frame)
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
            wave = track.wave()
    except CorruptInput:
        raise
    except (av.error.FFmpegError, OSError, ValueError, RuntimeError) as exc:
        raise CorruptInput(name, f"cannot decode video: {exc}") from None
    if not frames:
        raise CorruptInput(name, "video has no frames")
    return frames, wave
