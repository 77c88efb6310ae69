"""PII detectors: find candidate spans with cheap regexes, keep those a validator accepts.

Every detector yields ``Span(start, end, category, label, value)`` where ``value`` is the
normalised identifier (what a keyed hash is computed over). Numbers are found in one pass: a
single regex finds runs of digit groups, and every window of consecutive groups is offered to the
credit-card, national-ID and phone validators, longest window first.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from corpusforge.privacy.checksums import luhn, mod97_alnum
from corpusforge.privacy.national_ids import CONTEXT_CHARS, NUMERIC, SCHEMES, epoch_like


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    category: str  # email | phone | ip_address | credit_card | iban | address | national_id
    label: str  # placeholder label: EMAIL, PHONE, ..., or the scheme's (US_SSN) for national IDs
    value: str


CATEGORIES = ("email", "phone", "ip_address", "credit_card", "iban", "address", "national_id")

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b")


def find_emails(text: str) -> Iterator[Span]:
    """Only around an '@' with a word character on both sides (wikitext's "@-@" costs nothing)."""
    at = text.find("@")
    last_end = 0
    while at != -1:
        if 0 < at < len(text) - 1 and text[at - 1].isalnum() and text[at + 1].isalnum():
            m = _EMAIL.search(text, max(last_end, at - 64), min(len(text), at + 256))
            if m is not None and m.start() < at < m.end():
                last_end = m.end()
                yield Span(m.start(), m.end(), "email", "EMAIL", m.group().lower())
        at = text.find("@", max(at + 1, last_end))


_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]{2,39}(?:\d{1,3}(?:\.\d{1,3}){3})?(?![\w:])")
_VERSIONISH = re.compile(r"(?:\bv|version|release|ver\.?)\s*$", re.IGNORECASE)


def find_ips(text: str, skip_private: bool) -> Iterator[Span]:
    if "." in text:
        for m in _IPV4.finditer(text):
            if _VERSIONISH.search(text, max(0, m.start() - 12), m.start()):
                continue  # "version 1.2.3.4"
            try:
                ip = ipaddress.IPv4Address(m.group())
            except ValueError:
                continue
            if skip_private and not ip.is_global:
                continue
            yield Span(m.start(), m.end(), "ip_address", "IP_ADDRESS", str(ip))
    if "::" in text or text.count(":") >= 7:
        for m in _IPV6.finditer(text):
            s = m.group()
            if sum(1 for g in s.split(":") if g) < 3 or not any(c.isdigit() for c in s):
                continue  # "2::" in a Python slice is a valid address; real ones have 3+ groups
            try:
                ip6 = ipaddress.IPv6Address(s)
            except ValueError:
                continue
            if skip_private and not ip6.is_global:
                continue
            yield Span(m.start(), m.end(), "ip_address", "IP_ADDRESS", ip6.compressed)


# IBAN lengths per country (SWIFT IBAN registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    # joined 2020-2024
    "BI": 27, "DJ": 27, "FK": 18, "HN": 28, "LY": 25, "MN": 20, "NI": 28, "OM": 23, "RU": 33, "SD": 18, "SO": 23,
    "YE": 30,
}
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")


def find_ibans(text: str) -> Iterator[Span]:
    for m in _IBAN.finditer(text):
        raw = m.group()
        s = raw.replace(" ", "")
        want = IBAN_LENGTHS.get(s[:2])
        if want is None or len(s) < want:
            continue
        if len(s) > want:  # the regex ran into a following word: cut back to the country's length
            end, n = m.start(), 0
            while n < want:
                if text[end] != " ":
                    n += 1
                end += 1
            s, span_end = s[:want], end
        else:
            span_end = m.end()
        if mod97_alnum(s[4:] + s[:4]) == 1:
            yield Span(m.start(), span_end, "iban", "IBAN", s)


# National IDs that contain letters, each with its own shape.
_ALNUM_IDS = (
    ("uk_nino", re.compile(r"\b[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")),
    ("es_dni", re.compile(r"\b(?:\d{8}|[XYZ]-?\d{7})-?[A-Z]\b")),
    ("it_codice_fiscale", re.compile(r"\b[A-Z]{6}[\dLMNP-V]{2}[A-EHLMPR-T][\dLMNP-V]{2}[A-Z][\dLMNP-V]{3}[A-Z]\b")),
    ("mx_curp", re.compile(r"\b[A-Z][AEIOUX][A-Z]{2}\d{6}[HMX][A-Z]{2}[A-Z]{3}[A-Z\d]\d\b")),
    ("fr_nir", re.compile(r"\b[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}\b")),
    ("fi_hetu", re.compile(r"\b\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]\b")),
    ("cn_resident_id", re.compile(r"\b\d{17}[\dX]\b")),
    ("sg_nric", re.compile(r"\b[STFGM]\d{7}[A-Z]\b")),
    ("ie_pps", re.compile(r"\b\d{7}[A-W][ABWTXZ]?\b")),
    ("cl_rut", re.compile(r"\b\d{1,2}\.?\d{3}\.?\d{3}-[\dkK]\b")),
    ("in_pan", re.compile(r"\b[A-Z]{3}[ABCFGHJLPT][A-Z]\d{4}[A-Z]\b")),
)
_HAS_UPPER_DIGIT = re.compile(r"[A-Z] ?\d|\d-?[A-Z]|\d{6}[-+]\d{3}")


def find_alnum_ids(text: str, schemes: frozenset[str]) -> Iterator[Span]:
    """IDs with letters; the scheme regexes run only on short windows around letter-digit contacts.
    A scheme without a check (the Indian PAN) counts only after a word that names it."""
    lower: str | None = None
    for lo, hi in windows_around(text, _HAS_UPPER_DIGIT, 24):
        part = text[lo:hi]
        for key, rx in _ALNUM_IDS:
            if key not in schemes:
                continue
            scheme = SCHEMES[key]
            for m in rx.finditer(part):
                s = m.group() if key == "fi_hetu" else m.group().replace(" ", "").replace("-", "").replace(".", "")
                if key == "cl_rut" and "-" not in m.group():
                    continue  # a bare RUT is read as a number; only the printed "12.345.678-K" form here
                if not scheme.validate(s.upper()):
                    continue
                if scheme.needs_context:
                    lower = text.lower() if lower is None else lower
                    if not context_before(lower, m.start() + lo, scheme.context):
                        continue
                yield Span(m.start() + lo, m.end() + lo, "national_id", scheme.label, s.upper())


def windows_around(text: str, rx: re.Pattern[str], margin: int) -> list[tuple[int, int]]:
    """Merged ``[lo, hi)`` ranges reaching ``margin`` characters either side of every match of
    ``rx``, widened to whitespace so that no window starts or ends inside a word."""
    return windows_around_spans(text, ((m.start(), m.end()) for m in rx.finditer(text)), margin)


def windows_around_spans(text: str, spans: Iterable[tuple[int, int]], margin: int) -> list[tuple[int, int]]:
    """``windows_around`` for ``(start, end)`` spans given in text order."""
    out: list[tuple[int, int]] = []
    n = len(text)
    for start, end in spans:
        lo, hi = max(0, start - margin), min(n, end + margin)
        while lo > 0 and not text[lo - 1].isspace():
            lo -= 1
        while hi < n and not text[hi].isspace():
            hi += 1
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out


_FIRST_NON_ASCII_DIGIT = 0x660  # ARABIC-INDIC DIGIT ZERO: no decimal digit lies between it and "9"


def digit_runs(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of every run of decimal digits: the matches of ``\\d+``.

    Found over the text's code points in NumPy: the regex scan costs ~8 ns per character, a
    vectorised compare ~1. Non-ASCII digits (``str.isdecimal``, what ``\\d`` matches) are looked up
    among the text's distinct code points from U+0660 on.
    """
    if text.isascii():
        cp = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        digit = (cp - np.uint8(48)) < 10
    else:
        cp = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        digit = (cp - np.uint32(48)) < 10
        high = cp >= _FIRST_NON_ASCII_DIGIT
        if high.any():
            decimal = [u for u in np.unique(cp[high]).tolist() if chr(u).isdecimal()]
            if decimal:
                digit |= np.isin(cp, np.array(decimal, dtype=np.uint32))
    pad = np.zeros(1, dtype=np.int8)
    edges = np.diff(np.concatenate((pad, digit.view(np.int8), pad)))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


# -- numbers: credit cards, numeric national IDs and phones in one pass ---------------------------

# A run of digit groups joined by single separators, optionally led by + or ( and ended by an extension.
_NUMBER_RUN = re.compile(
    r"(?<![\w.,/+-])(?P<core>(?:\+|\(\+?)?\d+(?:(?:[ .\-/]|\)[ .-]?| ?\()\d+)*)"
    r"(?P<ext>(?: ?(?:x|ext\.?|#) ?)\d{1,5})?(?!\w)"
)
_CHUNK = re.compile(r"\S+")
# Shapes only phone numbers take: a trunk 0 or a bracketed area code followed by more groups, the
# NANP's "(415) 555-0123" / "415 555 0123", and groups of two or more digits (read in the document's regions).
_TRUNK_OR_AREA = re.compile(r"(?:0\d{1,4}|\(0?\d{1,4}\)|8 ?\(\d{3,5}\))(?:[ .\-/]|\) ?)?\d")
_NANP_ANY = re.compile(r"(?:1[ .-])?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}")
_GROUPED = re.compile(r"\d{2,}(?:[ .-]\d{2,})+")
_DATE_LIKE = re.compile(r"\d{1,4}([./-])\d{1,2}\1\d{1,4}|\d{4}-\d{4}|\d{1,2}[:.]\d{2}")
_DECIMAL = re.compile(r"\d+\.\d+")
_DATE_START = re.compile(r"(?:1[6-9]|20|00)\d\d-[01]\d-[0-3]\d |[01]?\d-[0-3]?\d-(?:19|20)\d\d ")  # "2019-11-19 05"
_MARKUP_BEFORE = frozenset("=?&:#\"'")
_MARKUP_AFTER = frozenset("\"'&")


def machine_number(digits: str) -> bool:
    """Digits no person's number has: binary literals, one digit over and over ("99999999999"),
    mostly zeros ("(425) 000-0000"; test cards like 2200 0000 0000 0004 are longer), and values next to a power of two (2147483647, 1073741824)."""
    if set(digits) <= {"0", "1"} or len(set(digits)) == 1 or (len(digits) <= 12 and digits.count("0") >= 0.7 * len(digits)):
        return True
    v = int(digits)
    b = v.bit_length()
    return b >= 20 and (abs(v - (1 << b)) <= 16 or abs(v - (1 << (b - 1))) <= 16)
_NANP = re.compile(r"(?:1[-.])?\d{3}([-.])\d{3}\1\d{4}")  # 415-555-2671, 1.415.555.2671
_DOTTED_QUAD = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_SHAPE_DIGITS = re.compile(r"\d+")
# Printed forms that belong to given schemes (digit-group lengths and separators). A scheme marked
# True counts in this form without a context word; False still needs one (DK CPR has no checksum).
_SHAPES: dict[str, tuple[tuple[str, bool], ...]] = {
    "3.3.3-2": (("br_cpf", True),), "3-2-4": (("us_ssn", True), ("us_itin", True)), "6-7": (("kr_rrn", True),),
    "2.2.2-3.2": (("be_national_number", True),), "8-4": (("se_personnummer", True),),
    "6+4": (("se_personnummer", True),), "6-4": (("se_personnummer", True), ("dk_cpr", True)),
    "6-5": (("lv_personas_kods", True),), "6/4": (("cz_rodne_cislo", True), ("sk_rodne_cislo", True)),
    "6/3": (("cz_rodne_cislo", False), ("sk_rodne_cislo", False)), "2-8-1": (("ar_cuit", True),),
    "1-4-5-2-1": (("th_id", True),), "3.4.4.2": (("ch_ahv", True),), "2.3.3-1": (("cl_rut", True),),
    "1.3.3-1": (("cl_rut", True),), "6-4-2": (("at_svnr", False),),
    "2-7": (),  # NN-NNNNNNN is a US employer number (EIN): an organisation's, not a person's
}
# Printed forms that count alone when the checksum passes, and otherwise are read like any other
# number (a Steuer-ID's "12 345 678 901" shape is also a phone's): BSN 1234.56.782, Steuer-ID,
# Aadhaar 2341 2341 2346, Austrian SVNR 1237 010180. A True flag would let a valid phone number of
# the document's regions win first; the SIN's "046 454 286", also a Spanish or Polish mobile's
# shape, is not here at all: with one Luhn digit it needs its word.
_SOFT_SHAPES: dict[str, tuple[tuple[str, bool], ...]] = {
    "4.2.3": (("nl_bsn", False),), "2 3 3 3": (("de_steuer_id", False),), "4 4 4": (("in_aadhaar", False),),
    "4-4-4": (("in_aadhaar", False),), "4 6": (("at_svnr", False),),
}
_CARD_SHAPE = re.compile(r"\d{4} \d{4} \d{4} \d{4}")
_CARD_DOTTED = re.compile(r"\d{4}(?:\.\d{4}){3}")  # dots elsewhere are decimals ("36.0545025 48.2833917")
_PHONE_TRIPLETS = re.compile(r"\d{3}(?: \d{3}){2}(?<!000 000)")  # "665 675 714", not "250 000 000"
_THOUSANDS = re.compile(r"\d{1,3}(?:([ ,.\u202f])\d{3})(?:\1\d{3})*")
_PHONE_CONTEXT = ("tel", "phone", "call", "mobile", "cell", "fax", "ring", "contact", "whatsapp", "sms", "reach",
                  "my number", "his number", "her number", "your number", "our number", "their number",
                  "téléphone", "portable", "telefon", "handy", "teléfono", "telefone", "telefono", "móvil",
                  "celular", "cellulare", "电话", "手机")
# Words that say what a number is when it is not personal: it is left alone after one of them.
_NOT_PII_BEFORE = re.compile(
    r"(?<![a-z])(?:isbn(?:-1[03])?|issn|doi|arxiv|patent|order|invoice|ticket|ean|upc|gtin|barcode|serial|s/n|sku|"
    r"item|part|model|batch|lot|tracking|shipment|parcel|awb|receipt|booking|reservation|confirmation|"
    r"rechnung|bestellung|auftrag|factura|facture|commande|pedido|fattura|ordine|timestamp|epoch|unix|"
    r"created_at|updated_at|build|version|release|checksum|hash|crc|isrc|imei|vin|asin|acn|abn|ein|siren|siret|kvk)"
    r"[\s:#=\"'.-]*(?:(?:no|nr|number|num|n°|nº|id|code)\.?[\s:#=\"'-]*)?(?:(?:is|was|of)\s+)?$")


# Words that name a payment card: with one nearby, the issuer ranges outside the published ones that
# real and test cards use (all of 35xx, JCB's old 15-digit 1800/2131, 12-digit Maestro) count too.
_CARD_CONTEXT = ("card", "credit", "debit", "visa", "mastercard", "amex", "jcb", "maestro", "diners", "discover",
                 "unionpay", "cc", "carte", "karte", "kreditkarte", "tarjeta", "cartão", "carta", "kaart", "kort",
                 "karta", "kortti", "kártya", "kart", "карта", "карты", "カード", "卡", "카드")


def card_brand_ok(d: str, loose: bool = False) -> bool:
    """Issuer (IIN) range and length of the major card networks (ISO/IEC 7812 ranges the networks
    publish); ``loose`` (a card word nearby) also takes all of 35xx, old JCB and 12-digit Maestro."""
    n, p2, p4 = len(d), int(d[:2]), int(d[:4])
    if loose and ((p2 == 35 and 16 <= n <= 19) or (p4 in (1800, 2131) and n == 15)
                  or (p2 in (50, 56, 57, 58, 60, 63, 67) and n == 12)):
        return True
    if d[0] == "4":
        return n in (13, 16, 19)  # Visa
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16  # Mastercard
    if p2 in (34, 37):
        return n == 15  # American Express
    if p4 == 6011 or p2 == 65 or 644 <= int(d[:3]) <= 649:
        return 16 <= n <= 19  # Discover
    if 3528 <= p4 <= 3589:
        return 16 <= n <= 19  # JCB
    if p2 == 35:
        return n == 16  # the rest of 35xx: test cards and generators (faker) use it
    if p2 in (36, 38, 39) or 300 <= int(d[:3]) <= 305:
        return 14 <= n <= 19  # Diners Club
    if p2 == 62 or 8100 <= p4 <= 8171:
        return 16 <= n <= 19  # UnionPay
    if 2200 <= p4 <= 2204:
        return 16 <= n <= 19  # Mir
    if p2 in (81, 82) or d[:3] == "508":
        return n == 16  # RuPay
    if p4 == 9792:
        return n == 16  # Troy
    if p2 in (50, 56, 57, 58, 60, 63, 67):
        return 13 <= n <= 19  # Maestro (12-digit cards exist but collide with too many other numbers)
    return False


_CONTEXT_RX: dict[tuple[str, ...], re.Pattern[str]] = {}


def _group_len(m: re.Match[str]) -> str:
    return str(len(m.group()))


def context_before(lower: str, start: int, words: tuple[str, ...]) -> bool:
    """Whether one of ``words`` (whole words, lower case) occurs in the ``CONTEXT_CHARS`` before ``start``."""
    if not words:
        return False
    rx = _CONTEXT_RX.get(words)
    if rx is None:
        rx = _CONTEXT_RX[words] = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, words)) + r")(?![a-z])")
    return rx.search(lower, max(0, start - CONTEXT_CHARS), start) is not None


class NumberMatcher:
    """Credit cards, numeric national IDs and phone numbers found in one scan over digit runs.

    A run is cut at spaces into chunks ("06 27 63 17 06" has five); the whole run is tried first,
    then each chunk alone, so "SSN 123-45-6789 2024" still finds the SSN while "8932 8792 1742" is
    never taken out of an IBAN. Chunks joined by dashes or dots stay whole, so "978-3-16-148410-0"
    is never read as a shorter phone number.
    """

    def __init__(self, categories: frozenset[str], schemes: frozenset[str], regions: tuple[str, ...]):
        self.cards = "credit_card" in categories
        self.phones = "phone" in categories
        self.ids = [SCHEMES[k] for k in NUMERIC if k in schemes] if "national_id" in categories else []
        self.id_keys = {s.key for s in self.ids}
        self.regions = regions
        self.regions_now = regions  # set by PIIDetector.find for one text (the document's language first)
        self.regions_doc: tuple[str | None, ...] = ()  # the document's own regions (its language), for one text
        self._bare_ok = True  # set by _classify for one candidate
        self._pn = None
        if self.phones:
            try:
                import phonenumbers
            except ImportError as exc:
                raise ImportError("the pii step needs phonenumbers: pip install 'corpusforge[privacy]'") from exc
            self._pn = phonenumbers

    def find(self, text: str) -> Iterator[Span]:
        lower: str | None = None
        for m in _NUMBER_RUN.finditer(text):
            core = m.group("core")
            if sum(c.isdigit() for c in core) < 7:
                continue
            if lower is None:
                lower = text.lower()
            if (core[0] not in "+(" and _NOT_PII_BEFORE.search(lower, max(0, m.start() - 28), m.start())
                    and _SHAPE_DIGITS.sub(_group_len, core) not in _SHAPES):
                continue  # "order 4410-2231-98"; a scheme's own printed form still counts ("take part 23-57602383-9")
            base = m.start()
            chunks = [(c.start() + base, c.end() + base) for c in _CHUNK.finditer(core)]
            ext_end = m.end() if m.group("ext") else None
            whole = self._classify(text, lower, chunks[0][0], chunks[-1][1], ext_end)
            if whole is not None:
                yield whole
            elif len(chunks) > 1:
                for k, (lo, hi) in enumerate(chunks):  # "SSN 123-45-6789 2024": each chunk alone
                    found = self._classify(text, lower, lo, hi, ext_end if k == len(chunks) - 1 else None)
                    if found is not None:
                        yield found

    def _context(self, lower: str, start: int, words: tuple[str, ...]) -> bool:
        return context_before(lower, start, words)

    def _classify(self, text: str, lower: str, start: int, end: int, ext_end: int | None) -> Span | None:
        if text[start] == "(" and ")" not in text[start:end]:
            start += 1  # "(+55 82 6486-1316)": the bracket belongs to the sentence
        raw = text[start:end]
        digits = "".join(c for c in raw if c.isdigit())
        n = len(digits)
        if n < 7 or n > 19:
            return None
        if _DOTTED_QUAD.fullmatch(raw):
            return None  # an IPv4 address (left to the IP detector, which may skip private ones)
        if machine_number(digits):
            return None
        # A bare digit string glued to markup or code ('id="1013170743"', "?ver=201606013") is an
        # identifier of the page, not of a person: it counts only after a word naming what it is.
        self._bare_ok = not (raw.isdigit() and (text[start - 1:start] in _MARKUP_BEFORE or text[end:end + 1] in _MARKUP_AFTER))
        if _DECIMAL.fullmatch(raw):  # "3.14159265": at most a phone, after a phone word
            return self._phone_span(text, lower, start, end, ext_end, raw, digits)
        if ext_end is not None or raw[0] in "+(" or "(" in raw or _NANP.fullmatch(raw):
            return self._phone_span(text, lower, start, end, ext_end, raw, digits)  # written as a phone
        shape = _SHAPE_DIGITS.sub(lambda g: str(len(g.group())), raw)
        for key, phone_first in _SOFT_SHAPES.get(shape, ()):
            if key not in self.id_keys or not SCHEMES[key].validate(digits):
                continue
            if phone_first and self.phones and self.regions_doc and not self._context(lower, start, SCHEMES[key].context):
                phone = self._phone_span(text, lower, start, end, ext_end, raw, digits, strict=True)
                if phone is not None:
                    return phone
            return Span(start, end, "national_id", SCHEMES[key].label, digits)
        only = _SHAPES.get(shape)
        if only == () and raw[0] == "0":  # "06-2619345": an EIN's shape, and a Taiwanese phone's
            return self._phone_span(text, lower, start, end, ext_end, raw, digits)
        if only is not None:  # a scheme's own printed form: that scheme or nothing
            named = own = None
            failed_named = False  # "My SSN is 989-88-6425": a failed SSN, not somebody's ITIN
            for key, alone in only:
                scheme = SCHEMES[key]
                if key not in self.id_keys:
                    continue
                said = bool(scheme.context) and self._context(lower, start, scheme.context)
                if not scheme.validate(digits):
                    failed_named = failed_named or said
                    continue
                if named is None and said:
                    named = scheme
                if own is None and alone:
                    own = scheme
            pick = named or (None if failed_named else own)
            return None if pick is None else Span(start, end, "national_id", pick.label, digits)
        # Order: an ID named nearby; then, unless a named scheme failed its check, a phone after a
        # phone word, a card after a card word, an ID in its own right, a card, and last a phone.
        fallback = None
        named_other = False  # "PESEL: <digits failing PESEL>" is not some other country's ID
        # An ID counts without its name only written bare or in its own printed form (_SHAPES): grouped
        # some other way ("234 719 742 693 mm") it is a table row, and a bare Unix time is a timestamp.
        alone_ok = raw.isdigit() and not epoch_like(digits) and self._bare_ok
        for scheme in self.ids if "." not in raw and "/" not in raw else ():  # dotted IDs are in _SHAPES
            if n not in scheme.lengths:
                continue
            named = bool(scheme.context) and self._context(lower, start, scheme.context)
            if not scheme.validate(digits):
                named_other = named_other or named
                continue
            if named:
                return Span(start, end, "national_id", scheme.label, digits)
            if fallback is None and alone_ok and not scheme.needs_context:
                fallback = scheme
        if named_other:
            return None
        card_named = self._context(lower, start, _CARD_CONTEXT)
        if fallback is not None and self.phones and self._context(lower, start, _PHONE_CONTEXT):
            phone = self._phone_span(text, lower, start, end, ext_end, raw, digits)
            if phone is not None:
                return phone
        card = self.cards and n >= 12 and ("." not in raw or _CARD_DOTTED.fullmatch(raw)) and luhn(digits) and (
            card_brand_ok(digits) or card_brand_ok(digits, card_named))
        # A valid ID of a length cards rarely have (13, 18) wins over a card number, unless a card word is near.
        if card and (card_named or fallback is None or n in (15, 16)):
            return Span(start, end, "credit_card", "CREDIT_CARD", digits)
        if fallback is not None:
            return Span(start, end, "national_id", fallback.label, digits)
        return self._phone_span(text, lower, start, end, ext_end, raw, digits)

    def _phone_span(self, text: str, lower: str, start: int, end: int, ext_end: int | None, raw: str,
                    digits: str, strict: bool = False) -> Span | None:
        if not self.phones or not self._phone_shape(raw, lower, start):
            return None
        value = "+" + digits if raw[0] == "+" else digits
        # A valid number counts anywhere. A merely possible one (a length the country's plan allows:
        # fictional and unassigned ranges) counts written internationally, after a phone word, with
        # a trunk 0, a bracketed area code or the NANP grouping, or grouped like a phone in the
        # document's own regions. A bare digit string without a phone word must be valid in the
        # document's own regions or, with none known, valid in the default ones and either dialled
        # with a trunk 0 or in a mobile range ("18987789328"); ``strict`` asks for the document's regions.
        named = self._context(lower, start, _PHONE_CONTEXT)
        loose: tuple[str | None, ...] = ()
        regions: tuple[str | None, ...] | None = None
        mobile = False
        if raw.isdigit() and not named and not self._bare_ok:
            return None
        if strict or (raw.isdigit() and not named):
            regions = self.regions_doc
            if not regions and not strict:
                regions, mobile = self.regions_now, raw[0] != "0"
        elif raw[0] == "+" or raw.startswith("(+"):
            loose = (None,)
        elif named or _TRUNK_OR_AREA.match(raw) or _NANP_ANY.fullmatch(raw):
            loose = self.regions_now
        elif _GROUPED.fullmatch(raw):
            loose = self.regions_doc
        elif len(digits) < 9 and raw.lstrip("(")[0] != "0":
            regions = self.regions_doc  # short and grouped: valid where the document is from
        if ext_end is not None and self._is_phone(text[start:ext_end], loose, regions, mobile):
            return Span(start, ext_end, "phone", "PHONE", value)
        if self._is_phone(raw, loose, regions, mobile):
            return Span(start, end, "phone", "PHONE", value)
        return None

    def _phone_shape(self, raw: str, lower: str, start: int) -> bool:
        """Cheap rules before phonenumbers: dots mixed with dashes (a CPF) or four groups of four (a
        card that failed Luhn) are never phones; a bare digit string, a decimal, thousands grouping,
        a single-digit group after the first, or fewer than 9 digits without a leading trunk 0
        count only after a phone word."""
        if raw[0] == "+" or raw.startswith("(+"):
            return True
        dots = raw.count(".")
        if (dots and "-" in raw) or _CARD_SHAPE.fullmatch(raw):
            return False
        if raw.isdigit() and 9 <= len(raw) <= 12:
            # a bare digit string: _phone_span asks for a valid number (see there); a Unix time is not one
            return not epoch_like(raw, since=1_300_000_000)
        if raw[0] != "0" and ("/" in raw or (dots and not _SHAPE_DIGITS.search(raw).group()[1:])):
            # "145636/145636" (a progress counter), "1.1046.89543" (path data): phones with a slash
            # or dots start with a trunk 0 ("0221/12345", "06.12.34.56.78")
            return self._context(lower, start, _PHONE_CONTEXT)
        if raw.isdigit() or dots == 1 or (_THOUSANDS.fullmatch(raw) and not _PHONE_TRIPLETS.fullmatch(raw)):
            return self._context(lower, start, _PHONE_CONTEXT)
        if any(len(g) == 1 for g in _SHAPE_DIGITS.findall(raw)[1:]):
            return self._context(lower, start, _PHONE_CONTEXT)  # "5040 5 1 17 27" is a table row
        if sum(c.isdigit() for c in raw) < 9 and raw.lstrip("(")[0] != "0":
            # short, no trunk 0: a part or order number, unless grouped like a phone of the document's
            # regions ("17 46 81 45" in a Danish text), where it must then be a valid number
            return self._context(lower, start, _PHONE_CONTEXT) or bool(self.regions_doc and _GROUPED.fullmatch(raw))
        return True

    def _is_phone(self, raw: str, loose: tuple[str | None, ...] = (),
                  regions: tuple[str | None, ...] | None = None, mobile: bool = False) -> bool:
        """Valid in one of ``regions`` (default: the text's regions; a mobile number only, with
        ``mobile``), or possible in one of ``loose``."""
        if _DATE_LIKE.fullmatch(raw) or _DATE_START.match(raw) or raw.count("/") > 1 or raw.count(".") > 3:
            return False
        pn = self._pn
        if raw[0] == "+" or raw.startswith("(+"):
            regions = (None,)
        elif regions is None:
            regions = self.regions_now
        for region in regions:
            try:
                num = pn.parse(raw, region)
            except pn.NumberParseException:
                continue
            if mobile:
                if pn.number_type(num) == pn.PhoneNumberType.MOBILE and pn.is_valid_number(num):
                    return True
            elif pn.is_valid_number(num) or (region in loose and pn.is_possible_number(num)):
                return True
        return False
