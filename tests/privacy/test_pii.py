"""The pii step: what is redacted, how, and what is left alone."""

import hashlib
import hmac

import pytest

from corpusforge.document import Document
from corpusforge.observe.stats import TaskContext
from corpusforge.privacy.pii import PII, PIIDetector


def redact(text: str, **kw) -> str:
    step = PII(**kw)
    return step.redact(text, step.detector.find(text))


def run_step(step: PII, texts: list[str], tmp_path) -> tuple[list[Document], TaskContext]:
    ctx = TaskContext("curate", 0, tmp_path, audit=True)
    step.setup(ctx)
    docs = [Document(t, f"id{i}", "mem://x", i) for i, t in enumerate(texts)]
    return list(step(iter(docs), ctx)), ctx


def test_placeholders_are_typed_per_category():
    text = ("Write to ana.lopez@example.es or call +34 612 345 678. Card 4111 1111 1111 1111, "
            "IBAN GB82 WEST 1234 5698 7654 32, host 203.0.113.7, SSN 123-45-6789.")
    assert redact(text) == ("Write to <EMAIL> or call <PHONE>. Card <CREDIT_CARD>, "
                            "IBAN <IBAN>, host <IP_ADDRESS>, SSN <NATIONAL_ID>.")


def test_scheme_labels_name_the_jurisdiction():
    text = "CPF 529.982.247-25, PESEL 44051401359, codice fiscale RSSMRA85T10A562S, NIE X1234567L."
    assert redact(text, scheme_labels=True) == (
        "CPF <BR_CPF>, PESEL <PL_PESEL>, codice fiscale <IT_CODICE_FISCALE>, NIE <ES_DNI>.")


@pytest.mark.parametrize("text, label", [
    ("NINO: AB 12 34 56 C", "UK_NINO"),
    ("SIN 130 692 544", "CA_SIN"),
    ("Aadhaar 2341 2341 2346", "IN_AADHAAR"),
    ("NIR 2 55 08 14 168 025 38", "FR_NIR"),
    ("BSN 111222333", "NL_BSN"),
    ("personnummer 811228-9874", "SE_PERSONNUMMER"),
    ("身份证 11010519491231002X", "CN_RESIDENT_ID"),
    ("CURP HEGG560427MVZRRL04", "MX_CURP"),
    ("Steuer-ID 86095742719", "DE_STEUER_ID"),
    ("TFN 123 456 782", "AU_TFN"),
    ("numéro national 85.07.30-033.28", "BE_NATIONAL_NUMBER"),
    ("CPR 070761-4285", "DK_CPR"),
    ("HETU 131052-308T", "FI_HETU"),
    ("fødselsnummer 01010750160", "NO_FODSELSNUMMER"),
    ("RRN 800101-1234560", "KR_RRN"),
    ("My Number 123456789018", "JP_MY_NUMBER"),
    ("NRIC S1234567D", "SG_NRIC"),
])
def test_national_id_detected_in_its_usual_written_form(text, label):
    out = redact(text, scheme_labels=True)
    assert out.endswith(f"<{label}>"), out


@pytest.mark.parametrize("text", [
    "ISBN 978-3-16-148410-0 is the second edition.",
    "Released 2021-03-14, version 10.0.19041.1237, see commit 3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39.",
    "Order #48213377 shipped; request 550e8400-e29b-41d4-a716-446655440000 failed.",
    "The population was 12 000 000 in 1990 and pi is 3.1415926535.",
    "CPF: 529.982.247-24",  # wrong check digits
    "Card 4111 1111 1111 1112 was declined.",  # fails Luhn
    "IBAN GB82 WEST 1234 5698 7654 33",  # fails mod 97
    "My SSN is 666-45-6789.",  # area 666 is never issued
])
def test_look_alikes_are_left_unchanged(text):
    assert redact(text) == text


def test_weak_checksum_ids_need_a_context_word():
    # 130692544 passes the SIN's Luhn check, but one check digit over nine digits is too weak alone.
    assert redact("Reference 130692544 attached.", categories=["national_id"]) == "Reference 130692544 attached."
    assert redact("SIN 130692544 attached.", categories=["national_id"]) == "SIN <NATIONAL_ID> attached."


@pytest.mark.parametrize("text, label", [
    ("Reference 111222333 attached.", "NL_BSN"),  # 11-proof: found without its name
    ("Listed as 234123412346 in the file.", "IN_AADHAAR"),  # Verhoeff
    ("Listed as 2341 2341 2346 in the file.", "IN_AADHAAR"),
    ("Her code 36805280109, enclosed.", "EE_ISIKUKOOD"),
    ("Holder 756.9217.0769.85 since 2010.", "CH_AHV"),
])
def test_strong_checksum_ids_need_no_context_word(text, label):
    assert f"<{label}>" in redact(text, categories=["national_id"], scheme_labels=True)


@pytest.mark.parametrize("text", [
    "timestamp=1712345678 level=info",  # named: a timestamp
    "Logged 1712345678 by the node.",  # a bare ten-digit Unix time is not read as an ID
    "Listed as 234123412347 in the file.",  # Aadhaar with a wrong Verhoeff digit
    "Table 3: 234 719 742 693 mm",  # a valid Aadhaar's digits, but not its printed grouping
    "Serial no. 36805280109 is printed under the lid.",
])
def test_numbers_that_are_not_ids_stay(text):
    assert redact(text, categories=["national_id", "phone", "credit_card"]) == text


def test_hash_mode_writes_keyed_hmac_of_the_normalised_value(monkeypatch, tmp_path):
    monkeypatch.setenv("TEST_PII_KEY", "s3cret")
    step = PII(mode="hash", hash_key_env="TEST_PII_KEY")
    (doc,), _ = run_step(step, ["Mail Ana@Example.com now"], tmp_path)
    digest = hmac.new(b"s3cret", b"ana@example.com", hashlib.sha256).hexdigest()[:8]
    assert doc.text == f"Mail <EMAIL:{digest}> now"


def test_hash_mode_without_key_fails_at_setup(monkeypatch, tmp_path):
    monkeypatch.delenv("MISSING_PII_KEY", raising=False)
    step = PII(mode="hash", hash_key_env="MISSING_PII_KEY")
    with pytest.raises(ValueError, match="MISSING_PII_KEY"):
        step.setup(TaskContext("curate", 0, tmp_path))


def test_drop_mode_drops_documents_with_pii_and_records_the_category(tmp_path):
    step = PII(mode="drop")
    out, ctx = run_step(step, ["no personal data here", "mail me: bob@example.org"], tmp_path)
    assert [d.text for d in out] == ["no personal data here"]
    assert dict(ctx.stats_for(step).drops) == {"pii:email": 1}


def test_counts_per_category_go_to_metadata_and_stats(tmp_path):
    step = PII()
    (doc,), ctx = run_step(step, ["a@b.io, c@d.io, 4111 1111 1111 1111"], tmp_path)
    assert doc.metadata["pii"] == {"credit_card": 1, "email": 2}
    stats = ctx.stats_for(step).to_dict()
    assert stats["counts"] == {"credit_card": 1, "email": 2}
    assert stats["modified"] == 1


def test_categories_and_jurisdictions_are_selectable():
    text = "bob@example.org, SSN 123-45-6789, PESEL 44051401359"
    assert redact(text, categories=["email"]) == "<EMAIL>, SSN 123-45-6789, PESEL 44051401359"
    assert redact(text, jurisdictions=["pl_pesel"], scheme_labels=True) == "<EMAIL>, SSN 123-45-6789, PESEL <PL_PESEL>"


def test_private_ips_can_be_kept():
    text = "from 192.168.1.20 to 203.0.113.7 and 2001:db8::1"
    assert redact(text) == "from <IP_ADDRESS> to <IP_ADDRESS> and <IP_ADDRESS>"
    # 203.0.113.0/24 and 2001:db8::/32 are documentation ranges: reserved, so kept as well
    assert redact(text, skip_private_ips=True) == text


def test_phone_numbers_of_several_regions():
    text = "Ring 020 7946 0958, 06 12 34 56 78 or (415) 555-2671; WhatsApp +49 30 901820."
    assert redact(text, categories=["phone"], phone_regions=["GB", "FR", "US"]) == (
        "Ring <PHONE>, <PHONE> or <PHONE>; WhatsApp <PHONE>.")


def test_street_addresses_best_effort():
    assert redact("He lives at 742 Evergreen Terrace, Springfield.") == "He lives at <ADDRESS>, Springfield."
    assert redact("Wir wohnen in der Goethestraße 12a.") == "Wir wohnen in der <ADDRESS>."
    assert redact("Rendez-vous au 12, rue de la Paix.") == "Rendez-vous au <ADDRESS>."


def test_unknown_category_is_rejected():
    with pytest.raises(ValueError, match="unknown pii categories"):
        PII(categories=["emails"])


def test_detector_skips_digitless_text_quickly():
    assert PIIDetector().find("No numbers at all in this sentence, only words." * 1000) == []


DATA = __import__("pathlib").Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_books_yield_only_the_foundations_phone_number():
    det = PIIDetector()
    found = set()
    for path in sorted((DATA / "prose" / "gutenberg").glob("*.txt")):
        text = path.read_text(encoding="utf-8-sig")
        found |= {(sp.category, text[sp.start:sp.end]) for sp in det.find(text)}
    assert found == {("phone", "(801) 596-1887")}  # the Project Gutenberg foundation's office


def test_web_articles_yield_only_the_columnists_email():
    det = PIIDetector()
    found = []
    for path in sorted((DATA / "html").rglob("*.gold.txt")):
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [(sp.category, text[sp.start:sp.end]) for sp in det.find(text)]
    assert found == [("email", "thekian1@entermedia.co.kr")]


def test_table_rows_of_small_numbers_are_not_phones():
    text = "1 Kyle Busch 5040 5 1 17 27\n2 Martin Truex Jr. 5035 7 0 15 24"
    assert redact(text) == text


def test_digit_runs_are_the_regex_digit_runs_in_any_script():
    import re

    from corpusforge.privacy.detectors import digit_runs

    # ASCII, Arabic-Indic and Devanagari digits count; a superscript two is not a decimal digit.
    for text in ["", "no digits", "tel 0612 345", "٣٤ and ०१२x9", "x\u00b2 = 4", "99"]:
        starts, ends = digit_runs(text)
        assert list(zip(starts.tolist(), ends.tolist(), strict=True)) == [
            (m.start(), m.end()) for m in re.finditer(r"\d+", text)]
