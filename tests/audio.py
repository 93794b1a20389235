"""Measurements on decoded audio, used by the tests to check the songs for real."""

import miniaudio
import numpy as np


def decode_mp3(data: bytes) -> tuple[np.ndarray, int]:
    """Mono float samples and the sample rate."""
    decoded = miniaudio.decode(data, output_format=miniaudio.SampleFormat.FLOAT32)
    samples = np.frombuffer(decoded.samples, dtype=np.float32).reshape(-1, decoded.nchannels)
    return samples.mean(axis=1), decoded.sample_rate


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def estimate_bpm(samples: np.ndarray, rate: int, low: float = 60, high: float = 200) -> float:
    """Tempo from the autocorrelation of the onset strength (positive energy flux in ~5.8 ms frames)."""
    hop = 256
    frames = len(samples) // hop
    energy = np.square(samples[: frames * hop].reshape(frames, hop)).sum(axis=1)
    onset = np.maximum(np.diff(np.log1p(energy * 100)), 0)
    onset -= onset.mean()
    corr = np.correlate(onset, onset, mode="full")[len(onset) - 1 :]
    frame_rate = rate / hop
    lags = np.arange(int(frame_rate * 60 / high), int(frame_rate * 60 / low) + 1)
    best = lags[np.argmax(corr[lags])]
    # refine with a parabola through the peak and its neighbours
    a, b, c = corr[best - 1], corr[best], corr[best + 1]
    offset = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) else 0.0
    return 60 * frame_rate / (best + offset)
