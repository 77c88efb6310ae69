"""``engine: presidio``: Presidio's pattern and checksum recognizers, with a blank spaCy pipeline (no download)."""

import pytest

pytest.importorskip("presidio_analyzer", reason="engine 'presidio' needs pip install 'corpusforge[presidio]'")

from corpusforge.privacy.pii import PII  # noqa: E402


@pytest.fixture(scope="module")
def step() -> PII:
    return PII(engine="presidio", scheme_labels=True)


def test_presidio_engine_redacts_with_its_recognizers_offline(step):
    text = ("Write to ana@example.com or call +44 20 7946 0123. SSN 536-22-1234, "
            "card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32, host 8.8.8.8.")
    assert step.redact(text, step.detector.find(text)) == (
        "Write to <EMAIL> or call <PHONE>. SSN <US_SSN>, card <CREDIT_CARD>, IBAN <IBAN>, host <IP_ADDRESS>.")


def test_presidio_engine_keeps_to_the_chosen_categories(step):
    only_email = PII(engine="presidio", categories=["email"])
    only_email.detector._analyzer = step.detector._analyzer  # built once for the module
    text = "Mail ana@example.com, call +44 20 7946 0123."
    assert only_email.redact(text, only_email.detector.find(text)) == "Mail <EMAIL>, call +44 20 7946 0123."


def test_presidio_engine_leaves_urls_and_dates(step):
    text = "See https://example.org/page on 2024-03-01 at 10:30."
    assert step.detector.find(text) == []
