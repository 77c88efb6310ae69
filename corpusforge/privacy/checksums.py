"""Check-digit algorithms shared by the PII validators (pure functions over digit strings)."""

from __future__ import annotations

_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 0, 6, 7, 8, 9, 5), (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7), (4, 0, 1, 2, 3, 9, 5, 6, 7, 8), (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2), (7, 6, 5, 9, 8, 2, 1, 0, 4, 3), (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 5, 7, 6, 2, 8, 3, 0, 9, 4), (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7), (9, 4, 5, 3, 1, 2, 6, 8, 7, 0), (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5), (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def luhn(digits: str) -> bool:
    """Luhn (mod 10) check over a digit string, check digit last."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def verhoeff(digits: str) -> bool:
    """Verhoeff check (dihedral group D5), check digit last; used by Aadhaar."""
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _VERHOEFF_D[c][_VERHOEFF_P[i % 8][ord(ch) - 48]]
    return c == 0


def weighted_mod(digits: str, weights: tuple[int, ...], mod: int) -> int:
    """Sum of digit*weight over the leading ``len(weights)`` digits, modulo ``mod``."""
    return sum((ord(ch) - 48) * w for ch, w in zip(digits, weights, strict=False)) % mod


def iso7064_mod11_2(body: str) -> str:
    """ISO 7064 MOD 11-2 check character ('0'-'9' or 'X'); used by the Chinese resident ID."""
    total = 0
    for ch in body:
        total = (total + ord(ch) - 48) * 2
    check = (12 - total % 11) % 11
    return "X" if check == 10 else str(check)


def iso7064_mod11_10(body: str) -> int:
    """ISO 7064 MOD 11,10 check digit; used by the German Steuer-ID."""
    product = 10
    for ch in body:
        s = (ord(ch) - 48 + product) % 10 or 10
        product = (2 * s) % 11
    return (11 - product) % 10


def mod97_alnum(s: str) -> int:
    """The value of an alphanumeric string mod 97 with letters A=10..Z=35 (IBAN, ISO 7064 MOD 97-10)."""
    n = 0
    for ch in s:
        if "0" <= ch <= "9":
            n = (n * 10 + ord(ch) - 48) % 97
        else:
            n = (n * 100 + ord(ch) - 55) % 97
    return n


def valid_date(yy: int, mm: int, dd: int, century: int | None = None) -> bool:
    """Whether day ``dd`` of month ``mm`` exists (leap years judged with the century when known)."""
    if not 1 <= mm <= 12 or dd < 1:
        return False
    days = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[mm - 1]
    if mm == 2 and century is not None:
        year = century + yy
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        days = 29 if leap else 28
    return dd <= days
