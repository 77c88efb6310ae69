"""The ``pii`` step: find personal data and replace it with a placeholder or a keyed hash, or drop."""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from collections.abc import Callable, Iterator
from typing import Literal

from corpusforge.document import Document
from corpusforge.observe.stats import TaskContext
from corpusforge.privacy.addresses import find_addresses
from corpusforge.privacy.detectors import (
    CATEGORIES,
    NumberMatcher,
    Span,
    digit_runs,
    find_alnum_ids,
    find_emails,
    find_ibans,
    find_ips,
    windows_around_spans,
)
from corpusforge.privacy.national_ids import SCHEMES
from corpusforge.privacy.redact import SpanRedactor
from corpusforge.registry import register

# Which span wins when two overlap: checksum-validated kinds before looser ones.
_PRIORITY = {"iban": 0, "national_id": 1, "credit_card": 2, "email": 3, "ip_address": 4, "phone": 5, "address": 6}
# Regions to try first for a document whose metadata names its language (langid, HTML lang).
LANGUAGE_REGIONS: dict[str, tuple[str, ...]] = {
    "de": ("DE", "AT", "CH"), "fr": ("FR", "BE", "CH", "CA"), "es": ("ES", "MX", "AR", "CO", "CL", "PE"),
    "pt": ("BR", "PT"), "it": ("IT", "CH"), "nl": ("NL", "BE"), "sv": ("SE", "FI"), "da": ("DK",),
    "no": ("NO",), "nb": ("NO",), "nn": ("NO",), "fi": ("FI",), "pl": ("PL",), "cs": ("CZ",), "sk": ("SK",),
    "hu": ("HU",), "ro": ("RO", "MD"), "el": ("GR", "CY"), "tr": ("TR",), "ru": ("RU", "UA", "BY", "KZ"),
    "uk": ("UA",), "he": ("IL",), "ar": ("SA", "AE", "EG", "MA"), "ja": ("JP",), "ko": ("KR",),
    "zh": ("CN", "TW", "HK"), "hi": ("IN",), "en": ("US", "GB", "CA", "AU", "IN", "IE", "NZ"),
    "bg": ("BG",), "hr": ("HR",), "sr": ("RS", "BA", "ME"), "bs": ("BA",), "sl": ("SI",), "mk": ("MK",),
    "sq": ("AL", "XK"), "lt": ("LT",), "lv": ("LV",), "et": ("EE",), "is": ("IS",), "ga": ("IE",), "mt": ("MT",),
    "lb": ("LU",), "ca": ("ES", "AD"), "eu": ("ES",), "gl": ("ES",), "cy": ("GB",), "be": ("BY",), "kk": ("KZ",),
    "uz": ("UZ",), "az": ("AZ",), "hy": ("AM",), "ka": ("GE",), "fa": ("IR", "AF"), "ur": ("PK", "IN"),
    "bn": ("BD", "IN"), "ta": ("IN", "LK", "SG"), "te": ("IN",), "mr": ("IN",), "gu": ("IN",), "ne": ("NP",),
    "si": ("LK",), "th": ("TH",), "vi": ("VN",), "id": ("ID",), "ms": ("MY", "SG", "BN"), "tl": ("PH",),
    "fil": ("PH",), "sw": ("KE", "TZ"), "am": ("ET",), "af": ("ZA",), "zu": ("ZA",), "ha": ("NG",), "yo": ("NG",),
}


def language_regions(language: str | None, regions: tuple[str, ...]) -> tuple[str, ...]:
    """``regions`` with the language's own regions first: "pt-BR" gives BR, then PT, then the rest."""
    if not language:
        return regions
    tag = language.replace("_", "-").split("-")
    first = ([tag[1].upper()] if len(tag) > 1 and len(tag[1]) == 2 else []) + list(LANGUAGE_REGIONS.get(tag[0].lower(), ()))
    return tuple(dict.fromkeys(first + list(regions)))


# Where a national-format number of a document with no language is tried: the largest corpora's
# countries first (a number is read in the first region where it is valid).
DEFAULT_REGIONS = ("US", "GB", "CA", "AU", "IN", "FR", "DE", "ES", "IT", "NL", "SE", "PL", "BR", "MX", "CN",
                   "RU", "JP", "KR", "TW", "TR", "PT", "BE", "CH", "AT", "IE", "DK", "NO", "FI", "CZ", "GR",
                   "IL", "HU", "RO", "UA", "ZA", "NZ", "AR", "CO")


def resolve_overlaps(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans in text order; on overlap the higher-priority, then longer, span wins."""
    chosen: list[Span] = []
    for sp in sorted(spans, key=lambda s: (_PRIORITY[s.category], s.start - s.end, s.start)):
        if all(sp.end <= c.start or sp.start >= c.end for c in chosen):
            chosen.append(sp)
    chosen.sort(key=lambda s: s.start)
    return chosen


class PIIDetector:
    """All enabled detectors over one text; reusable outside the pipeline."""

    def __init__(
        self,
        categories: tuple[str, ...] = CATEGORIES,
        jurisdictions: tuple[str, ...] | None = None,
        phone_regions: tuple[str, ...] = DEFAULT_REGIONS,
        skip_private_ips: bool = False,
        regions: tuple[str, ...] = (),
    ):
        """``regions``: where the corpus's documents come from (ISO 3166 codes), used for
        national-format phone numbers of documents that carry no language."""
        self.categories = frozenset(categories)
        self.regions = tuple(r.upper() for r in regions)
        self.schemes = frozenset(SCHEMES if jurisdictions is None else jurisdictions)
        self.skip_private_ips = skip_private_ips
        self.numbers = NumberMatcher(self.categories, self.schemes, tuple(dict.fromkeys(self.regions + tuple(phone_regions))))

    def find(self, text: str, language: str | None = None) -> list[Span]:
        """Non-overlapping spans in text order; ``language`` (a BCP 47 tag) puts its regions first
        when a phone number without ``+`` is parsed.

        Emails are searched in the whole text (only if it holds an '@'); every other kind contains
        a digit, so the other detectors run only on windows of ``WINDOW`` characters around digit
        runs, which is what makes the step cheap on prose where numbers are rare.
        """
        spans: list[Span] = []
        self.numbers.regions_now = language_regions(language, self.numbers.regions)
        self.numbers.regions_doc = language_regions(language, ()) + self.regions if language else self.regions
        if "email" in self.categories:
            spans.extend(find_emails(text))
        for lo, hi in digit_windows(text):
            if lo == 0 and hi == len(text):
                spans.extend(self._find_digit_kinds(text))
            else:
                spans.extend(
                    Span(sp.start + lo, sp.end + lo, sp.category, sp.label, sp.value)
                    for sp in self._find_digit_kinds(text[lo:hi])
                )
        return resolve_overlaps(spans) if len(spans) > 1 else spans

    def _find_digit_kinds(self, text: str) -> Iterator[Span]:
        cats = self.categories
        if "ip_address" in cats:
            yield from find_ips(text, self.skip_private_ips)
        if "iban" in cats:
            yield from find_ibans(text)
        if "national_id" in cats:
            yield from find_alnum_ids(text, self.schemes)
        if cats & {"credit_card", "phone", "national_id"}:
            yield from self.numbers.find(text)
        if "address" in cats:
            yield from find_addresses(text)


WINDOW = 120


def digit_windows(text: str) -> list[tuple[int, int]]:
    """Merged ranges reaching ``WINDOW`` characters either side of every digit run."""
    starts, ends = digit_runs(text)
    return windows_around_spans(text, zip(starts.tolist(), ends.tolist(), strict=True), WINDOW)


@register("pii")
class PII(SpanRedactor):
    """Redact emails, phones, IPs, cards, IBANs, street addresses and national IDs.

    ``mode``: ``placeholder`` writes ``<EMAIL>``, ``<PHONE>``, ``<IP_ADDRESS>``, ``<CREDIT_CARD>``,
    ``<IBAN>``, ``<ADDRESS>`` and ``<NATIONAL_ID>`` (or the scheme, ``<US_SSN>``, with
    ``scheme_labels``); ``hash`` writes ``<EMAIL:3f2a9c1d>``, the first 8 hex of HMAC-SHA256 of the
    normalised value keyed by the environment variable ``hash_key_env``; ``drop`` drops the document.
    Per-category counts go to ``doc.metadata["pii"]`` and to the step's ``counts`` in stats.json.
    ``regions`` (ISO 3166 codes) says where the corpus comes from, for national-format phone numbers
    of documents without ``metadata["language"]``; ``engine: presidio`` finds the spans with
    Presidio's pattern recognizers instead (presidio_engine.py; no addresses).
    """

    reason_prefix = "pii"
    metadata_key = "pii"

    def __init__(
        self,
        mode: Literal["placeholder", "hash", "drop"] = "placeholder",
        categories: list[str] | None = None,
        jurisdictions: list[str] | None = None,
        phone_regions: list[str] | None = None,
        skip_private_ips: bool = False,
        scheme_labels: bool = False,
        hash_key_env: str = "CORPUSFORGE_PII_KEY",
        hash_chars: int = 8,
        metadata: bool = True,
        regions: list[str] | None = None,
        engine: Literal["corpusforge", "presidio"] = "corpusforge",
        presidio_min_score: float = 0.4,
    ):
        cats = tuple(categories) if categories is not None else CATEGORIES
        bad = [c for c in cats if c not in CATEGORIES]
        if bad:
            raise ValueError(f"unknown pii categories {bad}; allowed: {', '.join(CATEGORIES)}")
        if jurisdictions is not None:
            bad = [j for j in jurisdictions if j not in SCHEMES]
            if bad:
                raise ValueError(f"unknown jurisdictions {bad}; allowed: {', '.join(SCHEMES)}")
        if not 4 <= hash_chars <= 64:
            raise ValueError("hash_chars must be between 4 and 64")
        if regions is not None or phone_regions is not None:
            import phonenumbers

            bad = [r for r in (regions or []) + (phone_regions or []) if r.upper() not in phonenumbers.SUPPORTED_REGIONS]
            if bad:
                raise ValueError(f"unknown regions {bad}: use ISO 3166 two-letter codes phonenumbers knows (US, GB, NL...)")
        self.mode, self.scheme_labels, self.write_metadata = mode, scheme_labels, metadata
        self.hash_key_env, self.hash_chars = hash_key_env, hash_chars
        self.engine = engine
        if engine == "presidio":
            from corpusforge.privacy.presidio_engine import PresidioDetector

            self.detector = PresidioDetector(cats, presidio_min_score)
        else:
            self.detector = PIIDetector(
                cats,
                tuple(jurisdictions) if jurisdictions is not None else None,
                tuple(phone_regions) if phone_regions is not None else DEFAULT_REGIONS,
                skip_private_ips,
                tuple(regions or ()),
            )
        self._key: bytes | None = None

    def setup(self, ctx: TaskContext) -> None:
        if self.mode == "hash":
            key = os.environ.get(self.hash_key_env)
            if not key:
                raise ValueError(f"pii mode 'hash' needs a key in the environment variable {self.hash_key_env}")
            self._key = key.encode()

    def _label(self, sp: Span) -> str:
        if sp.category == "national_id" and not self.scheme_labels:
            return "NATIONAL_ID"
        return sp.label

    def placeholder(self, sp: Span) -> str:
        label = self._label(sp)
        if self.mode != "hash":
            return f"<{label}>"
        if self._key is None:
            raise ValueError("pii mode 'hash': setup() was not called, so there is no key")
        return f"<{label}:{hmac.new(self._key, sp.value.encode(), hashlib.sha256).hexdigest()[: self.hash_chars]}>"

    def kind_of(self, sp: Span) -> str:
        return sp.category

    def finder(self, doc: Document) -> Callable[[str], list[Span]]:
        """``detector.find`` with the document's language (``metadata["language"]``) as a phone hint."""
        lang = doc.metadata.get("language")
        if not isinstance(lang, str):
            return self.detector.find
        return functools.partial(self.detector.find, language=lang)
