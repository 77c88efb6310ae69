"""Media throughput on one core: ms per 224x224 image and per 32-frame video (decode + features +
VQ encode), codebook training time, media tokens per second, and a whole ``multimodal`` run over
the media folder (CPU seconds of the shards stage per media token: the figure that holds under load),
video sampling by seeking against decoding every frame (CPU seconds, best of 3) on
``video/cockatoo.mp4`` (280 frames 1280x720) and a generated 1200-frame clip, and the hostile and
decode-back paths: refusing a decompression bomb, an animated GIF's frames, codes back to PNG / WAV.

Usage: ``PYTHONPATH=. python benchmarks/media.py [MEDIA_DIR]`` (default ``../shared/data/media``). Pin one core
with ``taskset -c 0`` for the per-core figures; bars: <= 50 ms per image, <= 200 ms per video.
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import av  # noqa: E402
import numpy as np  # noqa: E402

from corpusforge import run  # noqa: E402
from corpusforge.media import decode, features  # noqa: E402
from corpusforge.media.sequence import media_features  # noqa: E402
from corpusforge.media.vq import Codebook  # noqa: E402


def video_32(path: Path, size: int = 224) -> None:
    """A 32-frame 224x224 mp4 of moving noise, encoded with PyAV."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        v = out.add_stream("mpeg4", rate=Fraction(16))
        v.width = v.height = size
        v.pix_fmt = "yuv420p"
        for _ in range(32):
            img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            out.mux(v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(v.encode(None))


def timed(fn, repeat: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat * 1000


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def long_video(path: Path, frames: int = 1200, size: int = 224, gop: int = 25) -> None:
    """A ``frames``-frame mp4 (25 fps, a keyframe every ``gop`` frames) of a moving gradient."""
    ramp = np.add.outer(np.arange(size), np.arange(size)).astype(np.uint8)
    with av.open(str(path), "w") as out:
        v = out.add_stream("mpeg4", rate=Fraction(25))
        v.width = v.height = size
        v.pix_fmt = "yuv420p"
        v.codec_context.gop_size = gop
        for i in range(frames):
            img = np.repeat((ramp + np.uint8(i % 256))[:, :, None], 3, axis=2)
            out.mux(v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(v.encode(None))


def video_seeking(media: Path, tmp: Path) -> None:
    """CPU seconds of ``decode_video`` (8 frames) with and without seeking, best of 3 runs."""
    clip = tmp / "long.mp4"
    long_video(clip)
    for path in (media / "video" / "cockatoo.mp4", clip):
        for sampling in ("uniform", "fps"):
            cost = {}
            for seek in (False, True):
                runs = []
                for _ in range(3):
                    c = cpu_seconds()
                    decode.decode_video(path, 8, sampling=sampling, fps=1.0, seek=seek)
                    runs.append(cpu_seconds() - c)
                cost[seek] = min(runs)
            print(f"video {path.name} {sampling} 8 frames: every frame decoded {cost[False]:.3f} CPU-s, "
                  f"seeking {cost[True]:.3f} CPU-s ({cost[False] / cost[True]:.1f}x)")


def pipeline_run(media: Path, tmp: Path) -> None:
    """``corpusforge run`` with the multimodal preset over ``media`` (one worker, in this process),
    then its shards stage once more alone under the CPU clock: media tokens per CPU-second."""
    from corpusforge.observe.stats import TaskContext
    from corpusforge.pipeline import Pipeline, Stage
    from corpusforge.recipe import load_recipe
    from corpusforge.stages.shards import ShardsStage

    out = tmp / "out"
    recipe = load_recipe({"preset": "multimodal", "name": "bench", "sources": [{"name": "media", "path": str(media)}],
                          "tokenizer": {"vocab_size": 2000}, "media": {"codebook_size": 256},
                          "sharding": {"sequence_length": 2048, "splits": {"train": 1.0}}})
    wall, cpu = time.perf_counter(), cpu_seconds()
    stats = run(recipe, output=str(out), workers=1, progress=False)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    pipe = Pipeline(recipe, out)
    shard_wall, shard_cpu, tokens = time.perf_counter(), cpu_seconds(), 0
    for task in range(len(pipe.plan)):
        result = ShardsStage().run_task(pipe, Stage("shards", "shards", len(pipe.plan)), task, TaskContext("shards", task, out))
        tokens += result.media["tokens"]
    shard_wall, shard_cpu = time.perf_counter() - shard_wall, cpu_seconds() - shard_cpu
    print(f"multimodal run over {media}: {stats['tokens']:,} tokens in {wall:.1f} s wall, {cpu:.1f} CPU-s "
          "(codebook training included)")
    print(f"  shards stage alone: {tokens:,} media tokens in {shard_cpu:.2f} CPU-s ({shard_wall:.2f} s wall): "
          f"{tokens / shard_cpu:,.0f} media tokens per CPU-s")
    shutil.rmtree(out)


def hostile_and_back(media: Path, book: Codebook) -> None:
    """ms to refuse a 14000x14000 decompression-bomb PNG (from its header), to decode an animated
    GIF's frames, and to decode codes back to a PNG and to a WAV (Griffin-Lim) per second of audio."""
    from PIL import Image

    from corpusforge.errors import CorruptInput
    from corpusforge.media import reconstruct

    with tempfile.TemporaryDirectory() as tmp:
        bomb = Path(tmp) / "bomb.png"
        Image.new("1", (14_000, 14_000)).save(bomb, optimize=True)
        size = bomb.stat().st_size

        def refuse() -> None:
            try:
                decode.decode_image(bomb)
            except CorruptInput:
                return
            raise AssertionError("the bomb was decoded")

        bomb_ms = timed(refuse, 5)
    gif = media / "images" / "newtonscradle.gif"
    frames = len(decode.decode_image(gif, 32))
    gif_ms = timed(lambda: decode.decode_image(gif, 32), 3)
    codes = book.encode(features.image_patches(decode.decode_image(media / "images" / "chelsea.png")[0]))
    png_ms = timed(lambda: reconstruct.render_span("image", codes, book), 5)
    speech = decode.decode_audio(media / "audio" / "jfk.flac")
    rows = features.log_mel(speech)
    audio_book = Codebook.train("audio", rows, 256, config={})
    audio_codes = audio_book.encode(rows)
    wav_ms = timed(lambda: reconstruct.render_span("audio", audio_codes, audio_book), 1)
    print(f"decompression bomb ({size:,} B PNG) refused in {bomb_ms:.2f} ms; "
          f"animated GIF {frames} frames in {gif_ms:.1f} ms")
    print(f"decode back: image span -> PNG {png_ms:.1f} ms; jfk.flac ({len(speech) / 16_000:.1f} s) -> WAV "
          f"{wav_ms:.0f} ms ({wav_ms / (len(speech) / 16_000):.0f} ms per audio second, 48 Griffin-Lim iterations)")


def main() -> None:
    media = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data" / "media")
    images = sorted((media / "images").iterdir())
    cfg = {"image_size": 224, "patch_size": 16, "max_video_frames": 32}
    rows = np.concatenate([features.image_patches(decode.decode_image(p)[0]) for p in images])
    t = time.perf_counter()
    book = Codebook.train("image", rows, 256, config=cfg)
    train_s = time.perf_counter() - t
    quality = book.reconstruction(rows)
    video_book = Codebook("video", book.centroids, cfg)
    still = {**cfg, "max_video_frames": 1}  # one frame per image: an animated GIF's others are timed below
    img_ms = np.mean([timed(lambda p=p: book.encode(media_features(p, "image", still)[0][1]), 5) for p in images])
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip32.mp4"
        video_32(clip)
        vid_ms = timed(lambda: video_book.encode(media_features(clip, "video", cfg)[0][1]), 5)
    print(f"images: {len(images)} files from {media / 'images'}, {len(rows)} patches")
    print(f"codebook training (256 codes, dim 768, faiss k-means 20 iters): {train_s:.2f} s; "
          f"MSE {quality['mse']:.5f}, PSNR {quality['psnr_db']:.2f} dB")
    print(f"image decode+patches+encode: {img_ms:.1f} ms/image (bar 50), {196 / img_ms * 1000:,.0f} tokens/s")
    print(f"32-frame 224x224 video decode+patches+encode: {vid_ms:.1f} ms (bar 200), "
          f"{32 * 196 / vid_ms * 1000:,.0f} tokens/s")
    hostile_and_back(media, book)
    with tempfile.TemporaryDirectory() as tmp:
        video_seeking(media, Path(tmp))
    with tempfile.TemporaryDirectory() as tmp:
        pipeline_run(media, Path(tmp))


if __name__ == "__main__":
    main()
