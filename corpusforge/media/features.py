"""Features that codebooks quantise: 16x16 RGB patches of an image, log-mel (or MFCC) frames of audio."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def image_patches(frame: np.ndarray, image_size: int = 224, patch: int = 16) -> np.ndarray:
    """(image_size/patch)^2 flattened RGB patches in [0, 1], row-major: (196, 768) for the defaults."""
    from PIL import Image

    if image_size % patch:
        raise ValueError(f"image_size {image_size} is not a multiple of patch {patch}")
    img = Image.fromarray(frame).resize((image_size, image_size), Image.BICUBIC)
    x = np.asarray(img, dtype=np.float32) / 255.0
    g = image_size // patch
    return x.reshape(g, patch, g, patch, 3).transpose(0, 2, 1, 3, 4).reshape(g * g, patch * patch * 3)


def patches_to_image(patches: np.ndarray, patch: int = 16) -> np.ndarray:
    """The inverse of ``image_patches``: an (S, S, 3) uint8 image from (g*g, patch*patch*3) patches."""
    g = int(round(len(patches) ** 0.5))
    x = patches.reshape(g, g, patch, patch, 3).transpose(0, 2, 1, 3, 4).reshape(g * patch, g * patch, 3)
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


@lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_mels, n_fft//2+1) triangular Slaney-style filters on the HTK mel scale."""
    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    mels = np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(sample_rate / 2)), n_mels + 2)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lo, mid, hi = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    up = (bins[None] - lo) / (mid - lo)
    down = (hi - bins[None]) / (hi - mid)
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


def log_mel(wave: np.ndarray, sample_rate: int = 16_000, n_mels: int = 80, n_fft: int = 400,
            hop: int = 160) -> np.ndarray:
    """(frames, n_mels) natural-log mel energies; 25 ms Hann windows every 10 ms at 16 kHz."""
    wave = np.asarray(wave, dtype=np.float32)
    if len(wave) < n_fft:
        wave = np.pad(wave, (0, n_fft - len(wave)))
    n = 1 + (len(wave) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(wave[idx] * np.hanning(n_fft).astype(np.float32), axis=1)) ** 2
    return np.log(spec.astype(np.float32) @ mel_filterbank(sample_rate, n_fft, n_mels).T + 1e-6)


def mfcc(log_mel_frames: np.ndarray, n_mfcc: int = 13) -> np.ndarray:
    """(frames, n_mfcc) mel-frequency cepstral coefficients: the orthonormal DCT-II of each log-mel
    frame, first ``n_mfcc`` kept (as librosa and Kaldi compute them, without liftering)."""
    from scipy.fft import dct

    return dct(log_mel_frames, type=2, axis=1, norm="ortho")[:, :n_mfcc].astype(np.float32)


def audio_rows(wave: np.ndarray, cfg: dict) -> np.ndarray:
    """The audio feature rows ``cfg`` asks for: ``audio_features`` log_mel (default) or mfcc."""
    rate = cfg.get("audio_sample_rate", 16_000)
    mel = log_mel(wave, rate, cfg.get("n_mels", 80))
    if cfg.get("audio_features", "log_mel") == "mfcc":
        return mfcc(mel, cfg.get("n_mfcc", 13))
    return mel
