"""Check-digit algorithms shared by the PII detectors, from python-stdnum (pure functions over strings)."""

from __future__ import annotations

from stdnum import luhn as _luhn
from stdnum import verhoeff as _verhoeff
from stdnum.iso7064 import mod_11_2, mod_11_10, mod_97_10


def luhn(digits: str) -> bool:
    """Luhn (mod 10) check over a digit string, check digit last (payment cards, SIN)."""
    return _luhn.checksum(digits) == 0


def verhoeff(digits: str) -> bool:
    """Verhoeff check (dihedral group D5), check digit last; used by Aadhaar."""
    return _verhoeff.checksum(digits) == 0


def iso7064_mod11_2(body: str) -> str:
    """ISO 7064 MOD 11-2 check character ('0'-'9' or 'X'); used by the Chinese resident ID."""
    return mod_11_2.calc_check_digit(body)


def iso7064_mod11_10(body: str) -> int:
    """ISO 7064 MOD 11,10 check digit; used by the German Steuer-ID."""
    return int(mod_11_10.calc_check_digit(body))


def mod97_alnum(s: str) -> int:
    """The value of an alphanumeric string mod 97 with letters A=10..Z=35 (IBAN, ISO 7064 MOD 97-10)."""
    return mod_97_10.checksum(s)
