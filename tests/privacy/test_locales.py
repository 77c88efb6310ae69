"""PII across locales: local street forms, card brands, local ID words and printed ID forms."""

import pytest

from corpusforge.privacy.pii import PII, PIIDetector

DET = PIIDetector()


def redact(text: str, **kw) -> str:
    step = PII(**kw)
    return step.redact(text, step.detector.find(text))


@pytest.mark.parametrize("address", [
    "Oderwaldstr. 8533",  # de: abbreviated Straße
    "Anne-Kathrin-Kreusel-Ring 10-57",  # de: hyphenated name, Ring, number range
    "Lange Straße 5",
    "36 O'Doherty Street",  # en_IE
    "H.No. 366, Butala Road",  # en_IN
    "47/602, Ghose Nagar",
    "981 montée Cloutier",  # fr_CA
    "18106 boulevard Xavier",
    "chemin de Cretton 3",  # fr_CH: type first, number after
    "R. dos Mastros, 59",  # pt_PT
    "ул. Разина, д. 1/8 к. 4",  # ru
    "вул. Шевченка, буд. 12",  # uk
    "Kossuth Lajos utca 12.",  # hu
    "Bulevardul Unirii Nr. 17",  # ro
    "Atatürk Cad. No: 12",  # tr
    "서울특별시 영등포구 압구정길 215",  # ko road-name address with city and district
    "勝利路19號",  # zh_TW
    "上海市闵行区曲吴路589号",  # zh_CN
    "Chydeniuksentie 734",  # fi
    "Bertel Jungin katu 57",
    "Sorø Allé 932",  # da
    "Store Regnevej 642",
    "Haugebakken 79",  # no
    "Tijlring 76",  # nl
])
def test_local_street_addresses_are_found_whole(address):
    text = f"Deliver the parcel to {address}, please."
    assert redact(text) == "Deliver the parcel to <ADDRESS>, please.", DET.find(text)


@pytest.mark.parametrize("text", [
    "The ceremony took place on June 8 . It rained.",
    "Route 29 intersects Route 175 near the river.",
    "Engineering 39.0 Financial 53.0",
    "In Spring 2020 the town grew.",
    "A String 4 of the guitar broke.",
    "Pickled Herring 8 ways.",
    "Agatha Christie 12 novels were filmed.",
    "Returns the square root HP10062461 15 times.",
    "They went to the boulevard 12 times.",
    "The premiere in Washington, D.C. on September 25, 1961.",
    "An exhibition in Washington , D.C. that ran from 30 June.",
])
def test_english_words_that_end_like_street_words_are_left(text):
    assert DET.find(text) == []


@pytest.mark.parametrize("text, found", [
    ("Paid with 3530 1113 3330 0000 today.", True),  # JCB, in the published 3528-3589 range
    ("Card number: 3595 3042 1699 3130, exp 04/27.", True),  # other 35xx: test cards and generators use them
    ("Reference 3595 3042 1699 3130 on file.", True),
    ("Reference 9100 0000 0000 0000 on file.", False),  # passes Luhn, but no network issues 91xx
    ("Mir card 2200 0000 0000 0004 expired.", True),
    ("Kreditkarte 6759 7781 8805 gesperrt.", True),  # 12-digit Maestro after a card word
])
def test_card_brands(text, found):
    cats = [s.category for s in DET.find(text)]
    assert ("credit_card" in cats) is found, cats


@pytest.mark.parametrize("text", [
    "Mon numéro d'assurance sociale est 130 692 544.",
    "Mijn sofinummer is 111222333.",
    "Steueridentifikationsnummer 86095742719",
    "CPR-nummer: 070761-4285",
    "マイナンバー：123456789018",
    "Unser Kunde, Steuer-IdNr 86095742719, zahlt.",
])
def test_national_ids_named_in_the_local_language(text):
    assert [s.category for s in DET.find(text)] == ["national_id"]


@pytest.mark.parametrize("text", [
    "Reference: 1112.22.333",  # Dutch BSN in its dotted printed form
    "Reference: 86 095 742 719",  # German Steuer-ID in its printed groups
    "Reference: 070761-4285",  # Danish CPR DDMMYY-NNNN
])
def test_printed_national_id_forms_count_without_a_word(text):
    assert [s.category for s in DET.find(text)] == ["national_id"]


@pytest.mark.parametrize("text", [
    "Reference: 1112.22.334",  # BSN shape, 11-proef fails
    "Reference: 86 095 742 710",  # Steuer-ID shape, check digit wrong
    "Reference: 130 692 544",  # a SIN-valid triplet without its word is not taken as an ID
    "Reference: 453201-4285",  # no such day
])
def test_printed_forms_failing_their_checks_are_not_ids(text):
    assert "national_id" not in [s.category for s in DET.find(text)]


def test_russian_iban_of_the_2023_registry():
    iban = "RU02 0445 2560 0407 0281 0412 3456 7890 1"
    found = [s for s in DET.find(f"IBAN {iban}.") if s.category == "iban"]
    assert [s.value for s in found] == [iban.replace(" ", "")]


def test_python_example_in_the_docs_runs(capsys):
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "privacy.md").read_text(encoding="utf-8")
    code = next(b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "sofinummer" in b)
    exec(code, {})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("'")[1] if "'" in line else "" for line in lines] == [
        "national_id", "national_id", "credit_card", "national_id", "national_id", "", "address", "address"]


def test_language_puts_its_regions_first():
    from corpusforge.privacy.pii import DEFAULT_REGIONS, language_regions

    assert language_regions("pt-BR", DEFAULT_REGIONS)[:2] == ("BR", "PT")
    assert language_regions("nl", DEFAULT_REGIONS)[:2] == ("NL", "BE")
    assert language_regions(None, DEFAULT_REGIONS) == DEFAULT_REGIONS
    assert set(language_regions("xx", DEFAULT_REGIONS)) == set(DEFAULT_REGIONS)


def test_document_language_finds_numbers_of_its_regions(tmp_path):
    """A Swiss mobile and a Belarusian number are found in their languages' documents; a short
    grouped number (a Danish one) counts only where the document's language says it is valid."""
    from corpusforge.document import Document
    from corpusforge.observe.stats import TaskContext

    step = PII()
    ctx = TaskContext("curate", 0, tmp_path)
    texts = [("Bureau : 078 79 12 34, accueil.", "fr"), ("Офис: 8 0152 45-09-11, приёмная.", "ru"),
             ("Kontor 32 15 67 89 i dag.", "da"), ("Kontor 32 15 67 89 i dag.", None)]
    docs = []
    for i, (text, lang) in enumerate(texts):
        doc = Document(text, f"d{i}", "mem://x", i)
        if lang:
            doc.metadata["language"] = lang
        docs.append(doc)
    out = [d.text for d in step(iter(docs), ctx)]
    assert out == ["Bureau : <PHONE>, accueil.", "Офис: <PHONE>, приёмная.", "Kontor <PHONE> i dag.",
                   "Kontor 32 15 67 89 i dag."]
