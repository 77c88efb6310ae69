"""Interleave text and media codes: ``text <IMG> codes <IMG_END> text <AUDIO> codes <AUDIO_END> ...``.

Media codes live in id ranges after the text vocabulary, one range per modality in the order
image, audio, video (only the modalities with a codebook get one); ``joint_vocabulary`` records the
layout. ``modality_mask`` is 0 on text, 1 image, 2 audio, 3 video, markers included.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from corpusforge.media import decode, features
from corpusforge.media.vq import MODALITIES, Codebook

MARKERS = {"image": (4, 5), "audio": (6, 7), "video": (8, 9)}
MASK = {"text": 0, "image": 1, "audio": 2, "video": 3}


def joint_vocabulary(text_vocab: int, codebooks: dict[str, Codebook]) -> dict[str, Any]:
    """The joint id layout: text ids below ``text_vocab``, then each modality's code range."""
    ranges, start = {}, text_vocab
    for m in MODALITIES:
        if m in codebooks:
            ranges[m] = {"offset": start, "size": codebooks[m].size}
            start += codebooks[m].size
    return {"text_vocab_size": text_vocab, "media": ranges, "vocab_size": start}


def modality_mask_of(ids: np.ndarray, layout: dict[str, Any]) -> np.ndarray:
    """The modality mask of any id array (rows of packed shards too) from the joint ``layout``:
    code ranges and markers name their modality, so a shard writer needs no parallel mask array."""
    ids = np.asarray(ids)
    mask = np.zeros(ids.shape, dtype=np.uint8)
    for m, (start, end) in MARKERS.items():
        mask[(ids == start) | (ids == end)] = MASK[m]
    for m, r in layout["media"].items():
        mask[(ids >= r["offset"]) & (ids < r["offset"] + r["size"])] = MASK[m]
    return mask


def media_features(path: decode.Source, modality: str, cfg: dict[str, Any]) -> list[tuple[str, np.ndarray]]:
    """The feature rows of one media file (a path or a stream) per segment: [(modality, rows)];
    a video adds its audio track; an animated image gives one image segment per frame (at most
    ``max_video_frames``, picked evenly)."""
    size, patch = cfg.get("image_size", 224), cfg.get("patch_size", 16)
    rate = cfg.get("audio_sample_rate", 16_000)
    if modality == "image":
        frames = decode.decode_image(path, cfg.get("max_video_frames", 8))
        return [("image", features.image_patches(f, size, patch)) for f in frames]
    if modality == "audio":
        return [("audio", features.audio_rows(decode.decode_audio(path, rate), cfg))]
    frames, audio = decode.decode_video(path, cfg.get("max_video_frames", 8), rate,
                                        cfg.get("video_sampling", "uniform"), cfg.get("video_fps", 1.0))
    rows = np.concatenate([features.image_patches(f, size, patch) for f in frames])
    out = [("video", rows)]
    if len(audio):
        out.append(("audio", features.audio_rows(audio, cfg)))
    return out


def media_segments(source: decode.Source, modality: str, codebooks: dict[str, Codebook],
                   layout: dict[str, Any], name: str = "", cfg: dict[str, Any] | None = None) -> list[np.ndarray]:
    """The id segments ``<M> codes <M_END>`` of one media file (a video gives its frames, then its
    audio track) in the joint ``layout``, its features cut as ``cfg`` says (a run's recipe; default:
    the codebook's own options); a modality with no codebook is a ValueError naming it."""
    name = name or str(source)
    if modality not in codebooks:
        raise ValueError(f"{name}: no {modality} codebook to encode it with")
    out = []
    for m, rows in media_features(source, modality, codebooks[modality].config if cfg is None else cfg):
        if m not in codebooks:
            raise ValueError(f"{name}: no {m} codebook to encode it with")
        start, end = MARKERS[m]
        codes = codebooks[m].encode(rows) + layout["media"][m]["offset"]
        out.append(np.concatenate([[start], codes, [end]]).astype(np.int32))
    return out


def encode_with_mask(parts: Sequence[str | tuple[str, str | Path]], tok: Any,
                     codebooks: dict[str, Codebook]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and modality mask of one document's ``parts`` in order: text strings, or
    ``(modality, path)`` media files; BOS/EOS are added by the packer. A modality with no
    codebook is an error naming the file."""
    layout = joint_vocabulary(tok.vocab_size, codebooks)
    texts = [p for p in parts if isinstance(p, str)]
    encoded = iter(tok.encode_batch(texts)) if texts else iter(())
    ids: list[np.ndarray] = []
    for part in parts:
        if isinstance(part, str):
            ids.append(np.asarray(next(encoded), dtype=np.int32))
        else:
            ids.extend(media_segments(part[1], part[0], codebooks, layout))
    if not ids:
        return np.zeros(0, np.int32), np.zeros(0, np.uint8)
    flat = np.concatenate(ids)
    return flat, modality_mask_of(flat, layout)


_TAGS = {"image": "IMG", "audio": "AUDIO", "video": "VIDEO"}


def render_ids(ids: Sequence[int], layout: dict[str, Any], decode_text: Any) -> str:
    """A row for people: text decoded, each media span shown as ``<IMG ×196>`` (its code count);
    a span cut by the row's start or end shows ``…`` on that side."""
    starts = {MARKERS[m][0]: m for m in MARKERS}
    ends = {MARKERS[m][1]: m for m in MARKERS}
    ranges = [(r["offset"], r["offset"] + r["size"], m) for m, r in layout["media"].items()]
    out: list[str] = []
    text: list[int] = []
    span: list[Any] = [None, 0, False]  # modality, codes, opened in this row

    def close(cut: bool) -> None:
        m, n, opened = span
        if m is not None:
            out.append(f"<{'' if opened else '… '}{_TAGS[m]} ×{n}{' …' if cut else ''}>")
        span[:] = [None, 0, False]

    for i in ids:
        i = int(i)
        m = starts.get(i) or ends.get(i) or next((mm for lo, hi, mm in ranges if lo <= i < hi), None)
        if m is None:
            text.append(i)
            continue
        if text:
            out.append(decode_text(text))
            text = []
        if i in starts:
            close(True)
            span[:] = [m, 0, True]
        elif i in ends:
            if span[0] is None:
                span[:] = [m, 0, False]
            close(False)
        else:
            if span[0] != m:
                close(True)
                span[:] = [m, 0, False]
            span[1] += 1
    if text:
        out.append(decode_text(text))
    close(True)
    return "".join(out)
