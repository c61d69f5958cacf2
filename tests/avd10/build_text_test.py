#!/usr/bin/python3
"""The AVD-10 builder's text functions (bench/avd10/build.py), without the
sources cache: number words kept as spelled but told apart case-folded,
capitalisation only where the text featurizer undoes it, distractors that
name no number word, however it is wrapped.

Skips (exit 77) only when python3-numpy is missing (build.py needs it).

    /usr/bin/python3 tests/avd10/build_text_test.py
"""
import importlib.util
import re
import sys
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # Leave no __pycache__ in bench/avd10.
try:
    import numpy as np
except ImportError:
    print("SKIP: bench/avd10/build.py needs python3-numpy")
    sys.exit(77)

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("avd10_build", ROOT / "bench/avd10/build.py")
build = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(build)


def featurizer_lower(text):
    """The text featurizer's lower-casing as docs/FEATURES.md, "Text", step 4
    states it, written out here apart from build.py's: A..Z -> a..z, and the
    single-code-point lower-case mappings of U+00C0..U+024F, U+0370..U+03FF
    and U+0400..U+04FF; nothing else changes ("ß" stays, "İ" stays)."""
    out = []
    for ch in text:
        cp = ord(ch)
        in_blocks = 0xC0 <= cp <= 0x24F or 0x370 <= cp <= 0x3FF or 0x400 <= cp <= 0x4FF
        if "A" <= ch <= "Z" or (in_blocks and len(ch.lower()) == 1):
            out.append(ch.lower())
        else:
            out.append(ch)
    return "".join(out)


class NumberWordsTest(unittest.TestCase):
    def test_kept_as_spelled(self):
        words = build.number_words({3: [("el", "Τρεις."), ("de", "Weiß!")]})
        self.assertEqual(words[3], [("de", "Weiß"), ("el", "Τρεις")])

    def test_dedup_by_casefold_keeps_first_spelling(self):
        words = build.number_words({
            0: [("en", "Zero."), ("it", "ZERO"), ("pt", "zero")],
            3: [("de", "Weiß"), ("gsw", "WEISS"), ("el", "ΤΡΕΙΣ"), ("grc", "τρεις")],
        })
        self.assertEqual(words[0], [("en", "Zero")])
        self.assertEqual(words[3], [("de", "Weiß"), ("el", "ΤΡΕΙΣ")])

    def test_word_naming_two_digits_dropped(self):
        words = build.number_words({6: [("it", "Sei"), ("eu", "Sei")],
                                    3: [("xx", "SEI"), ("fr", "Trois")]})
        self.assertEqual(words[6], [])
        self.assertEqual(words[3], [("fr", "Trois")])

    def test_words_with_digits_or_bad_bytes_dropped(self):
        words = build.number_words(
            {7: [("shs", "Tsútsllke7."), ("xx", "S\ufffdpt"), ("fr", "Sept.")]})
        self.assertEqual(words[7], [("fr", "Sept")])

    def test_clean_word(self):
        self.assertEqual(build.clean_word(" Trois. "), "Trois")
        self.assertEqual(build.clean_word("शून्य|"), "शून्य")
        self.assertEqual(build.clean_word("ᐊᑕᐅᓯᖅ.\""), "ᐊᑕᐅᓯᖅ")
        self.assertEqual(build.clean_word("A h-aon."), "A h-aon")


class CaseVariantTest(unittest.TestCase):
    WORDS = ("Trois", "Τρεις", "ΤΡΕΙΣ", "Weiß", "ßa", "İki", "Sıfır", "ıfır", "Զրո", "ნული",
             "Ǆ", "ǆa", "Ṣṣa", "A h-aon", "Số không", "Ɓolum", "µ", "ſ", "ǰ", "Четыре")

    def test_every_variant_is_undone_by_the_featurizer(self):
        for word in self.WORDS:
            for kind in build.CASE_VARIANTS:
                variant = build.case_variant(word, kind)
                self.assertEqual(featurizer_lower(variant), featurizer_lower(word),
                                 (word, kind, variant))

    def test_variants_that_the_featurizer_undoes_are_used(self):
        self.assertEqual(build.case_variant("Trois", "upper"), "TROIS")
        self.assertEqual(build.case_variant("Trois", "lower"), "trois")
        self.assertEqual(build.case_variant("Четыре", "upper"), "ЧЕТЫРЕ")
        self.assertEqual(build.case_variant("τρία", "capitalised"), "Τρία")

    def test_variants_it_does_not_undo_are_not(self):
        self.assertEqual(build.case_variant("ΤΡΕΙΣ", "lower"), "ΤΡΕΙΣ")  # Final ς, featurizer σ.
        self.assertEqual(build.case_variant("Τρεις", "upper"), "Τρεις")
        self.assertEqual(build.case_variant("Weiß", "upper"), "Weiß")  # "WEISS".
        self.assertEqual(build.case_variant("İki", "lower"), "İki")  # "i" + U+0307.
        self.assertEqual(build.case_variant("Sıfır", "upper"), "Sıfır")  # "I" -> "i".
        self.assertEqual(build.case_variant("Զրո", "lower"), "Զրո")  # Armenian: not in the table.

    def test_make_text_writes_only_undone_variants(self):
        seen = set()
        for word in ("Trois", "ΤΡΕΙΣ", "Weiß"):
            for seed in range(40):
                text = build.make_text(np.random.default_rng(seed), word, ["distractor"], "clean")
                (variant,) = [t for t in text.split(" ") if t != "distractor"]
                self.assertEqual(featurizer_lower(variant), featurizer_lower(word), (word, seed))
                seen.add(variant)
        self.assertTrue({"Trois", "trois", "TROIS"} <= seen, seen)

    def test_mirror_matches_the_featurizer_table(self):
        """build.py's table is the featurizer's own (client/featurize/unicode_tables.cc)."""
        path = ROOT / "client/featurize/unicode_tables.cc"
        if not path.is_file():
            self.skipTest(f"no {path}")
        body = path.read_text().split("kLowercase[]", 1)[1].split("};", 1)[0]
        pairs = re.findall(r"\{0x([0-9A-F]+), 0x([0-9A-F]+)\}", body)
        table = {int(a, 16): int(b, 16) for a, b in pairs}
        ours = {k: v for k, v in build.FEATURIZER_LOWER.items() if k > 0x7F}
        self.assertEqual(ours, table)


class DistractorTest(unittest.TestCase):
    PATTERNS = build.number_word_patterns(["Three", "Drei", "One", "Un", "Số không", "तीन", "एक"])

    def banned(self, text):
        return build.names_number(text, self.PATTERNS)

    def test_number_word_behind_punctuation(self):
        self.assertTrue(self.banned("A clover (three)."))
        self.assertTrue(self.banned("«Three»"))
        self.assertTrue(self.banned("एक हरी मिर्च|"))

    def test_number_word_in_hyphenated_compound(self):
        self.assertTrue(self.banned("A three-legged stool."))
        self.assertTrue(self.banned("twenty-one"))
        self.assertTrue(self.banned("Tux, într-un tractor!"))

    def test_number_word_in_closed_compound(self):
        self.assertTrue(self.banned("Ein Dreirad."))
        self.assertTrue(self.banned("THREEFOLD"))

    def test_multi_word_number_name(self):
        self.assertTrue(self.banned("Số không độ."))
        self.assertFalse(self.banned("Số nhà."))

    def test_short_words_only_as_tokens(self):
        self.assertFalse(self.banned("Une pomme."))  # "un" is 2 letters.
        self.assertFalse(self.banned("Someone"))  # "one" is 3 letters.
        self.assertFalse(self.banned("तीनों"))  # 3 code points: token only.

    def test_letter_tokens_keep_combining_marks(self):
        self.assertEqual(build.letter_tokens("तीन|"), ["तीन"])
        self.assertEqual(build.letter_tokens("(Three-Legged)"), ["three", "legged"])

    def test_distractor_texts(self):
        texts = ["A clover (three).", "A three-legged stool.", "Ein Dreirad.", "twenty-one",
                 "3 cats", "x", "A red ball.", "Une pomme.", "A red ball."]
        self.assertEqual(build.distractor_texts(texts, self.PATTERNS),
                         ["A red ball.", "Une pomme."])


if __name__ == "__main__":
    unittest.main(verbosity=2)
