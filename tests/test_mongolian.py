"""Language and hygiene signals on texts whose answer is known."""

import pytest

from mglkit.mongolian import (
    cyrillic_share,
    detect_language,
    detect_language_lingua,
    fix_text,
    guess_unmojibake,
    is_plain_text,
    mixed_script_words,
)

MN = "Чингис хаан 1206 онд Их Монгол Улсыг байгуулж, монгол аймгуудыг нэгтгэсэн юм."
RU = "Чингисхан основал Монгольскую империю в 1206 году и объединил все племена."
KK = "Шыңғыс хан 1206 жылы Ұлы Моңғол мемлекетін құрып, барлық тайпаларды біріктірді."
MIXED = "Конечно, Чингис хаан очень сильный байсан, это всем известно, Их Монгол Улсыг байгуулсан."


@pytest.mark.parametrize(("text", "lang"), [(MN, "mn"), (RU, "ru"), (KK, "kk"), (MIXED, "mixed-ru")])
def test_signals(text, lang):
    assert detect_language(text).lang == lang


def test_signal_explains_itself():
    verdict = detect_language(RU)
    assert "«в»" in verdict.signal and "«году»" in verdict.signal


@pytest.mark.parametrize(("text", "lang"), [(MN, "mn"), (RU, "ru"), (KK, "kk")])
def test_lingua_agrees_on_clear_cases(text, lang):
    assert detect_language_lingua(text).lang == lang


def test_cyrillic_share():
    assert cyrillic_share(MN) == 1.0
    assert cyrillic_share("Монгол Mongolia") == pytest.approx(6 / 14)
    assert cyrillic_share("1206") == 0.0


def test_plain_text_screen():
    assert is_plain_text(MN) and is_plain_text(RU)
    for odd in ("Мo", "а\u200bб", "ә", "Ð§Ð¸", "и\u0306"):
        assert not is_plain_text(odd), odd


def test_fix_repairs_only_what_is_safe():
    text = "  Монгoл\u200b  Улс   Mongolia хии\u0306д "
    fixed, repairs = fix_text(text)
    assert fixed == "Монгол Улс Mongolia хийд"  # the English word keeps its Latin letters
    assert len(repairs) == 4  # invisible, look-alike, NFC, whitespace
    assert mixed_script_words(fixed) == []
    assert fix_text(fixed) == (fixed, [])


def test_unmojibake_guess():
    broken = "Чингис".encode().decode("latin-1")
    assert guess_unmojibake(broken) == "Чингис"
