"""What a smol sounds like and says, as numbers: audio features of its songs, text features, and the vector that
"more like this" compares (cosine). Pure functions: no I/O beyond the bytes handed in."""

import hashlib
import re

import miniaudio
import numpy as np

RATE = 22050
MAX_SECONDS = 45  # enough to hear tempo, key and sound; bounds the time a long song costs
FRAME, HOP = 2048, 512
NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
# Krumhansl–Kessler key profiles
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

# The vector: blocks, each L2-normalised then weighted, so no block drowns the others. Audio blocks are zero when
# no song could be decoded. Changing these changes every vector: re-run `smol index --backfill --all`.
BLOCKS = {"tempo": 12, "mode": 2, "chroma": 12, "energy": 4, "brightness": 4, "timbre": 14, "style": 48, "words": 32}
WEIGHTS = {"tempo": 1.0, "mode": 0.4, "chroma": 0.4, "energy": 0.5, "brightness": 0.5, "timbre": 0.6,
           "style": 1.2, "words": 0.5}  # fmt: skip
DIMENSIONS = sum(BLOCKS.values())  # 128: schema/010_search.sql declares vector(128)

# Small vocabularies for the explanation of a result: a word in the style tags or lyrics → a mood, a theme.
MOODS = {
    "upbeat": "happy joy joyful sunny sun summer party dance dancing upbeat bright fun celebrate",
    "melancholic": "sad lonely tears cry crying rain rainy blue sorrow lost goodbye melancholic melancholy",
    "dreamy": "dream dreams dreamy night moon stars float floating space ambient ethereal",
    "dark": "dark ghost shadow shadows storm haunted doom fear darkness",
    "energetic": "fast run running fire battle energetic power loud rock punk metal techno rave",
    "chill": "calm chill sleep slow ocean sea breeze relax relaxing lofi gentle soft",
    "romantic": "love heart kiss romance romantic darling",
    "playful": "cat cats dog dogs frog frogs robot robots silly funny playful chiptune bounce",
}  # fmt: skip
THEMES = {
    "nature": "rain ocean sea forest tree trees river sun moon frog frogs bird birds flower flowers garden storm",
    "love": "love heart kiss darling romance",
    "night": "night midnight moon stars dark dream",
    "space": "space stars galaxy planet rocket orbit cosmic",
    "city": "city street streets neon car cars traffic downtown subway",
    "party": "party dance dancing club disco celebrate floor",
    "animals": "cat cats dog dogs frog frogs bird birds fox robot",
    "journey": "road travel journey home away run running train",
}  # fmt: skip
_MOOD_OF = {word: mood for mood, words in MOODS.items() for word in words.split()}
_THEME_OF = {word: theme for theme, words in THEMES.items() for word in words.split()}
_WORD = re.compile(r"[a-z][a-z']{1,30}")
STOPWORDS = set(
    "the and you your for with that this are was were from into over under they them their our ours have has had "
    "not but all can will just like what when where who how its it's i'm verse chorus bridge outro intro".split()
)


def decode(mp3: bytes, seconds: float = MAX_SECONDS) -> np.ndarray:
    """Mono float samples at RATE of the first `seconds` of an MP3."""
    sound = miniaudio.decode(mp3, output_format=miniaudio.SampleFormat.FLOAT32, nchannels=1, sample_rate=RATE)
    return np.frombuffer(sound.samples, dtype=np.float32)[: int(seconds * RATE)]


def _spectrogram(samples: np.ndarray, chunk: int = 32) -> np.ndarray:
    """Magnitudes, one row per frame; made `chunk` frames at a time, so the windowed frames and their complex
    transforms never exist for the whole song at once (and a chunk stays in the CPU's cache: faster, too)."""
    if len(samples) < FRAME:
        samples = np.pad(samples, (0, FRAME - len(samples)))
    frames = np.lib.stride_tricks.sliding_window_view(samples, FRAME)[::HOP]
    window = np.hanning(FRAME)
    spectrum = np.empty((len(frames), FRAME // 2 + 1), dtype=np.float32)
    for start in range(0, len(frames), chunk):
        spectrum[start : start + chunk] = np.abs(np.fft.rfft(frames[start : start + chunk] * window, axis=1))
    return spectrum


def _tempo(spectrum: np.ndarray) -> float:
    """Beats per minute, 60–200: the autocorrelation of the low band's spectral flux (kick and bass mark the beat;
    hats would suggest double time), with a log-normal preference around 120 against half and double time."""
    freqs = np.fft.rfftfreq(FRAME, 1 / RATE)
    flux = np.maximum(np.diff(np.log1p(spectrum[:, freqs < 300]), axis=0), 0).sum(axis=1)
    flux = flux - flux.mean()
    frame_rate = RATE / HOP
    lags = np.arange(int(frame_rate * 60 / 200), int(frame_rate * 60 / 60) + 1)
    if len(flux) <= lags[-1] + 1 or not flux.any():
        return 0.0
    correlation = np.correlate(flux, flux, mode="full")[len(flux) - 1 :]
    correlation = correlation / (len(flux) - np.arange(len(correlation)))  # unbiased: long lags are not penalised
    prior = np.exp(-0.5 * np.log2(60 * frame_rate / lags / 120) ** 2)
    best = int(lags[np.argmax(correlation[lags] * prior)])
    a, b, c = correlation[best - 1 : best + 2]  # refine the lag with a parabola through its neighbours
    shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) else 0.0
    return float(60 * frame_rate / (best + float(np.clip(shift, -0.5, 0.5))))


def _chroma(spectrum: np.ndarray) -> np.ndarray:
    freqs = np.fft.rfftfreq(FRAME, 1 / RATE)
    band = (freqs >= 200) & (freqs <= 2000)  # above the kick and bass, whose bins are wider than a semitone
    pitch_class = np.round(12 * np.log2(freqs[band] / 440.0) + 69).astype(int) % 12
    energy = spectrum[:, band].mean(axis=0)
    chroma = np.bincount(pitch_class, weights=energy, minlength=12)
    return chroma / (chroma.sum() or 1.0)


def _key(chroma: np.ndarray) -> tuple[int, str]:
    best = (-2.0, 0, "major")
    for tonic in range(12):
        for mode, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
            score = float(np.corrcoef(chroma, np.roll(profile, tonic))[0, 1])
            if score > best[0]:
                best = (score, tonic, mode)
    return best[1], best[2]


def _mel_filters(bands: int = 26) -> np.ndarray:
    freqs = np.fft.rfftfreq(FRAME, 1 / RATE)
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    edges = 700 * (10 ** (np.linspace(mel(40), mel(RATE / 2), bands + 2) / 2595) - 1)
    filters = np.zeros((bands, len(freqs)))
    for i in range(bands):
        low, mid, high = edges[i : i + 3]
        filters[i] = np.clip(np.minimum((freqs - low) / (mid - low), (high - freqs) / (high - mid)), 0, None)
    return filters


def _timbre(spectrum: np.ndarray, coefficients: int = 14) -> np.ndarray:
    """Mean MFCCs 1..n: the shape of the spectrum, without its loudness."""
    bands = np.log(spectrum**2 @ _mel_filters().T + 1e-9)
    n = bands.shape[1]
    dct = np.cos(np.pi / n * (np.arange(n) + 0.5)[None, :] * np.arange(1, coefficients + 1)[:, None])
    return (bands @ dct.T).mean(axis=0) / n


def audio_features(mp3: bytes) -> dict:
    """Tempo, key and mode, loudness and energy, brightness, chroma and timbre summary of one song."""
    samples = decode(mp3)
    spectrum = _spectrogram(samples)
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
    freqs = np.fft.rfftfreq(FRAME, 1 / RATE)
    power = spectrum.sum(axis=1)
    centroid = float(np.mean((spectrum @ freqs)[power > 0] / power[power > 0])) if power.any() else 0.0
    chroma = _chroma(spectrum)
    tonic, mode = _key(chroma)
    return {
        "tempo": round(_tempo(spectrum), 1),
        "key": NOTE_NAMES[tonic],
        "mode": mode,
        "loudness": round(20 * np.log10(rms + 1e-9), 2),  # dBFS
        "energy": round(rms, 4),
        "brightness": round(centroid, 1),  # spectral centroid, Hz
        "chroma": [round(float(v), 4) for v in chroma],
        "timbre": [round(float(v), 4) for v in _timbre(spectrum)],
        "seconds": round(len(samples) / RATE, 2),
    }


def words(text: str) -> list[str]:
    return [w.strip("'") for w in _WORD.findall(text.lower()) if w.strip("'") not in STOPWORDS]


def _most_common(found: list[str]) -> str | None:
    if not found:
        return None
    return max(dict.fromkeys(found), key=found.count)  # ties: the first found


def mood_and_theme(style: list[str], lyrics: str) -> tuple[str | None, str | None]:
    """A mood and a theme from the vocabularies above: style tags count three times as much as lyrics."""
    tag_words = [w for tag in style for w in words(tag)]
    found = tag_words * 3 + words(lyrics)
    return _most_common([_MOOD_OF[w] for w in found if w in _MOOD_OF]), _most_common(
        [_THEME_OF[w] for w in found if w in _THEME_OF]
    )


def _soft_bins(value: float, low: float, high: float, bins: int, width: float = 0.7) -> np.ndarray:
    """A value as a smooth bump over `bins` (log scale): near values share bins, so cosine sees them as near."""
    position = (np.log(max(value, 1e-6)) - np.log(low)) / (np.log(high) - np.log(low)) * (bins - 1)
    return np.exp(-0.5 * ((np.arange(bins) - position) / width) ** 2)


def _hashed(tokens: list[str], size: int) -> np.ndarray:
    out = np.zeros(size)
    for token in tokens:
        digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
        out[int.from_bytes(digest[:4], "big") % size] += 1.0 if digest[4] & 1 else -1.0
    return out


def _normalised(block: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(block))
    return block / norm if norm > 0 else block


def _audio_blocks(song: dict) -> dict[str, np.ndarray]:
    return {
        "tempo": _soft_bins(song["tempo"], 60, 200, BLOCKS["tempo"]) if song["tempo"] > 0 else np.zeros(12),
        "mode": np.array([1.0, 0.0]) if song["mode"] == "major" else np.array([0.0, 1.0]),
        "chroma": np.array(song["chroma"]),
        "energy": _soft_bins(song["energy"], 0.02, 0.5, BLOCKS["energy"]),
        "brightness": _soft_bins(song["brightness"], 300, 6000, BLOCKS["brightness"]),
        "timbre": np.array(song["timbre"]),
    }


def text_tokens(style: list[str], text: str) -> tuple[list[str], list[str]]:
    """Style tokens (each tag whole, and its words) and the words of the lyrics, description and prompt."""
    style_tokens = [t.strip().lower() for t in style if t.strip()]
    style_tokens += [w for tag in style for w in words(tag)]
    return style_tokens, words(text)


def smol_vector(songs: list[dict], style: list[str], text: str) -> list[float]:
    """The smol's vector: its songs' audio (averaged), its style tags and its words."""
    blocks = {name: np.zeros(size) for name, size in BLOCKS.items()}
    if songs:
        for name in ("tempo", "mode", "chroma", "energy", "brightness", "timbre"):
            blocks[name] = np.mean([_normalised(_audio_blocks(s)[name]) for s in songs], axis=0)
    style_tokens, word_tokens = text_tokens(style, text)
    blocks["style"] = _hashed(style_tokens, BLOCKS["style"])
    blocks["words"] = _hashed(word_tokens, BLOCKS["words"])
    vector = np.concatenate([_normalised(blocks[name]) * WEIGHTS[name] for name in BLOCKS])
    return [round(float(v), 6) for v in _normalised(vector)]


def refine_vector(text: str) -> list[float]:
    """A vector of free text ("more upbeat", "with piano") in the same space: its words as style and as words."""
    tokens = words(text)
    blocks = {name: np.zeros(size) for name, size in BLOCKS.items()}
    blocks["style"] = _hashed(tokens, BLOCKS["style"])
    blocks["words"] = _hashed(tokens, BLOCKS["words"])
    vector = np.concatenate([_normalised(blocks[name]) * WEIGHTS[name] for name in BLOCKS])
    return [round(float(v), 6) for v in _normalised(vector)]
