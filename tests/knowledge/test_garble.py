"""The garbled-text detector: real text in several languages passes, encoding garbage does not;
on the shared corpus only the pages that really are garbage get flagged."""

from __future__ import annotations

import pytest

from knowledge.loaders.garble import check, script
from knowledge.loaders.pdf import run_worker

REAL = {
    "english": "Lockout/tagout: before any servicing, the authorized employee shall isolate the machine "
               "from its energy sources and apply a lock to each energy-isolating device.",
    "german": "Ein topologischer Raum ist ein Paar (X, T) bestehend aus einer Menge X und einer Familie "
              "T von Teilmengen, die unter Vereinigungen und endlichen Durchschnitten abgeschlossen ist. Größe, Maß.",
    "french": "Le réglage de la pompe doit être vérifié chaque semaine ; remplacez les joints usés avant "
              "l'hiver et notez la pression relevée à l'entrée du réseau d'irrigation.",
    "chinese": "第六条 进入有限空间作业前，应当检测氧含量，氧含量应在19.5%至23.5%之间。"
               "温室内使用的灌溉水泵、卷帘机和加温设备，应当由经过培训的人员操作，并定期检查维护。",
    "chinese_with_terms": "采用PLC控制的滴灌系统，施氮量为120 kg·hm⁻²，α-淀粉酶活性提高了15%，"
                          "β-胡萝卜素含量以μg/g计；CO2浓度维持在800 μmol/mol。",
    "japanese": "わたくしといふ現象は仮定された有機交流電燈のひとつの青い照明です。"
                "風景やみんなといっしょにせはしくせはしく明滅しながらいかにもたしかにともりつづける。",
    "korean": "온실 내 관수 펌프는 매주 점검해야 하며 압력계의 값을 기록해야 합니다.",
    "numeric_table": "| Alabama | 18,870 | 23,022 | 22,650 | 859 | 1,178 | 0 | 14 |\n"
                     "| Alaska | 209 | 3,062 | 3,209 | 191 | 184 | 0 | 9 |\n| Totals | 804,006 | 671,330 |",
    "chemistry": "Apply MgSO4·7H2O at 25 kg/ha, KH2PO4 at 2 g/L and NH4NO3 as side dressing; "
                 "keep the pH between 5.5 and 6.5 and EC below 2.5 mS/cm; CaCl2, NaHCO3, 3rd week, 10th day.",
    # pypdf reads some math fonts' minus sign as U+0000: a few per page are no reason to re-read it.
    "math_with_nulls": "dim Zn = bn + dim Bn\x001 für n≥ 1, (\x001)k dim Zk + (\x001)k+1 dim Bk = a0 + b0, "
                       "da ad+1 = 0 und a\x001 = 0; X × X → R, d(x, y) = 0 ⇔ x = y ∀x, y ∈ X",
}

# What pypdf makes of the shared Japanese sample (glyph ids read through a broken map).
JO_PYPDF = ("ɹɹং\nΘͨ͘͠ͱ͍;ݱ\u09c5\u0378၊ఆ͞Εͨ༗ަػྲྀి౯ͷͻͱͭͷ੨͍র໌Ͱ͢ớ͋ΒΏΔಁ໌ͳ༓ྶͷෳ߹ମỜ෩ܠ\u038dΈΜͳͱ͍ỳ͠Ỷʹͤ"
            "\u0378ͤ͘͠\u0378͘͠໌໓͠ͳ͕Β͍͔ʹ\u038b͔ͨ͠ʹͱ\u038bΓ͚ͭͮΔҼՌަྲྀి౯ͷͻͱͭͷ੨͍র໌Ͱ͢ớͻ͔Γ\u0378ͨ\u038bͪỏͦͷి౯")
# What pypdf makes of the shared Senate statement's table font (a wrong one-byte encoding).
SENATE_PYPDF = ("o(hô..i.p3xSTRxtT3xR2tTOR /xNhyM/TTw2W\n9nhmmmimm02vxS0/TxV2tORR2SPON32NTSMxTwh/0V/ROR\n"
                "n9hnnnimp02vxS0/TxV2tORR2SPON32NTTOyU0in1/N3uROM/UvinnTO/Uvinô/RM2Rh32R2z/\n"
                "91hô..i.pST/uu/SSxST/NT2Nv02RThP/YTON/\nonhnnnim)3xSTRxtT3xR2tTORuROMM/Y9ot/MP 200ht0/YTON3\n"
                "9ph)(ôi..02vxS0/TxV2/SSxST/NT/NTuROMM/Y99V202Z-vR22Nh/02X/N32Ry\nôôpi)(xNT2RNuROMS2Pin) O00xNv2Rh2RxNS\n"
                "nnhn))i)(02vxS0/TxV2tORR2SPON32NTuROMyU0in1zxSwxh3/Nx20M\nnh9pmimmxNT2RNuROMS2Pinm0/V/002YhRO 2RTt0xNTON")

GARBAGE = {
    "jo_pypdf": JO_PYPDF,
    "senate_pypdf": SENATE_PYPDF,
    "private_use": "".join(chr(0xE000 + (i * 7) % 300) + (" " if i % 5 == 4 else "") for i in range(200)),
    "replacement": "Th\ufffd\ufffd pump m\ufffdst b\ufffd \ufffd\ufffdspected \ufffd\ufffd\ufffd\ufffd week \ufffd\ufffd\ufffd" * 3,
    "utf8_as_latin1": ("Le réglage de la pompe doit être vérifié chaque année ; à l'entrée du réseau, "
                       "notez la pression élevée et la température.").encode("utf-8").decode("latin-1"),
    "box_soup": "╔═╗║╚╝▓▒░■□●◆◇★☆♠♣♥♦" * 4 + " ¤¦§¨ª«¬¯´¶¸º»¼½¾¿" * 3,
    "greek_in_kana": "ͷͻͱͭͷ੨͍র໌Ͱ͢ΘͨͱΒΏΔಁ໌ͳ༓ͷෳ߹ମ" * 3,
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_text_is_not_garbled(name):
    verdict = check(REAL[name])
    assert not verdict.garbled, verdict.reason
    assert verdict.score < 1.0


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_encoding_garbage_is_garbled_with_a_reason(name):
    verdict = check(GARBAGE[name])
    assert verdict.garbled and verdict.score == 1.0
    assert verdict.reason and verdict.reason != "reads as text"


def test_reasons_name_what_was_seen():
    assert "mix unrelated scripts" in check(JO_PYPDF).reason or "unrelated scripts" in check(JO_PYPDF).reason
    assert "case and digits" in check(SENATE_PYPDF).reason
    assert "private-use" in check(GARBAGE["private_use"]).reason
    assert "Latin-1" in check(GARBAGE["utf8_as_latin1"]).reason


def test_too_little_text_is_not_judged():
    assert not check("\ue000\ue001\ue002 ⌘").garbled
    assert not check("").garbled


def test_script_table():
    assert [script(c) for c in "aÄ中あアΩЖ한"] == ["Latin", "Latin", "Han", "Kana", "Kana", "Greek", "Cyrillic", "Hangul"]
    assert script("1") == script(" ") == script("，") == ""


def test_shared_corpus_text_is_never_flagged(corpus):
    files = sorted(p for p in corpus.rglob("*") if p.suffix in (".md", ".txt"))
    assert files
    flagged = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for start in range(0, len(text), 2500):  # page-sized slices
            verdict = check(text[start:start + 2500])
            if verdict.garbled:
                flagged.append((path.name, start, verdict.reason))
    assert flagged == []


@pytest.mark.slow
def test_shared_pdf_pages_flagged_are_only_the_garbled_ones(pdf_samples):
    """Every page of every shared PDF through the real worker (pypdf's text, tables not looked
    for): the Japanese sample and the Senate statement (pypdf misreads their fonts) only."""
    flagged = set()
    for path in sorted(pdf_samples.glob("*.pdf")):
        run = run_worker(["extract", str(path)], 1536, 60, 65)
        for record in run.records:
            for number, page in enumerate(record.get("pages") or [], 1):
                if page.get("garbled"):
                    flagged.add((path.name, number))
    assert flagged == {("pdfminer_jo-japanese.pdf", 1), ("pdfplumber_senate-expenditures.pdf", 1)}
