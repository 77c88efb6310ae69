from corpusforge.curate.normalize import Normalize


def test_fix_mojibake_repairs_utf8_read_as_cp1252():
    assert Normalize(fix_mojibake=True).normalize("donâ€™t worry, the cafÃ© is open") == "don’t worry, the café is open"


def test_mojibake_is_left_alone_by_default():
    assert Normalize().normalize("donâ€™t") == "donâ€™t"


def test_fix_mojibake_leaves_correct_text_unchanged():
    text = "Ça va? Größe, naïve, 東京, emoji 🙂"
    assert Normalize(fix_mojibake=True).normalize(text) == text
