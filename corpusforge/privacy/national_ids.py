"""National identifiers: one validator per scheme, with the checksum the scheme defines.

Validators take the identifier normalised to its digits and letters (separators removed, upper
case). Schemes whose checksum is weak (one check digit over nine digits or fewer, or none) are
marked ``needs_context``: they count only when a word naming them ("SSN", "BSN", "TFN"...) occurs
within ``CONTEXT_CHARS`` before the number, or when written in the scheme's own printed form
(US SSN as AAA-GG-SSSS, Aadhaar as NNNN NNNN NNNN, Swedish personnummer as YYMMDD-NNNN, Danish
CPR as DDMMYY-NNNN, Dutch BSN as NNNN.NN.NNN, German Steuer-ID as NN NNN NNN NNN). SIN and TFN
("NNN NNN NNN") and My Number stay context-only: that shape is also a phone's or a large number's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from corpusforge.privacy.checksums import (
    iso7064_mod11_2,
    iso7064_mod11_10,
    luhn,
    valid_date,
    verhoeff,
    weighted_mod,
)

CONTEXT_CHARS = 48


@dataclass(frozen=True)
class Scheme:
    key: str  # jurisdiction_scheme, e.g. "us_ssn"
    label: str  # fine placeholder label, e.g. "US_SSN"
    lengths: tuple[int, ...]  # lengths of the normalised identifier
    validate: Callable[[str], bool]
    needs_context: bool = False
    context: tuple[str, ...] = ()


def _digits(s: str) -> bool:
    return s.isascii() and s.isdigit()


def us_ssn(s: str) -> bool:
    """Area 001-899 except 666, group 01-99, serial 0001-9999 (SSA rules since 2011)."""
    if not _digits(s):
        return False
    area, group, serial = int(s[:3]), int(s[3:5]), int(s[5:])
    return 0 < area < 900 and area != 666 and group > 0 and serial > 0


def ca_sin(s: str) -> bool:
    return _digits(s) and s[0] not in "08" and luhn(s)


def br_cpf(s: str) -> bool:
    """Two mod-11 check digits (weights 10..2 then 11..2); all-equal digits are invalid."""
    if not _digits(s) or len(set(s)) == 1:
        return False
    for n in (9, 10):
        total = sum(int(s[i]) * (n + 1 - i) for i in range(n))
        check = total * 10 % 11 % 10
        if check != int(s[n]):
            return False
    return True


def in_aadhaar(s: str) -> bool:
    return _digits(s) and s[0] not in "01" and verhoeff(s)


def fr_nir(s: str) -> bool:
    """Sex 1/2, month 01-12 (or 20+ for unknown), key = 97 - (number mod 97); Corsica 2A/2B."""
    if s[0] not in "12" or not _digits(s[7:]):
        return False
    body = s[:13].replace("2A", "19").replace("2B", "18")
    if not _digits(body):
        return False
    month = int(s[3:5])
    if not (1 <= month <= 12 or 20 <= month <= 42 or 50 <= month <= 99):
        return False
    return 97 - int(body) % 97 == int(s[13:])


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def es_dni(s: str) -> bool:
    """Spanish DNI (8 digits + letter) or NIE (X/Y/Z + 7 digits + letter); letter = n mod 23."""
    if s[0] in "XYZ":
        s = str("XYZ".index(s[0])) + s[1:]
    return _digits(s[:8]) and s[8] == _DNI_LETTERS[int(s[:8]) % 23]


_CF_ODD = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]
_CF_OMOCODE = "LMNPQRSTUV"  # letters that replace digits 0-9 in homonym codes


def it_codice_fiscale(s: str) -> bool:
    """16 characters, check letter from the odd/even position tables (DM 23/12/1976)."""
    if not s.isalnum() or not s.isascii():
        return False
    total = 0
    for i, ch in enumerate(s[:15]):
        v = int(ch) if ch.isdigit() else ord(ch) - 65
        total += _CF_ODD[v] if i % 2 == 0 else v
    return s[15] == chr(65 + total % 26)


def nl_bsn(s: str) -> bool:
    """11-proef: sum(d_i * (9..2)) - d_9 divisible by 11."""
    if not _digits(s) or s == "000000000":
        return False
    total = sum(int(s[i]) * (9 - i) for i in range(8)) - int(s[8])
    return total % 11 == 0


def se_personnummer(s: str) -> bool:
    """YYMMDDNNNC (or YYYYMMDDNNNC): a real date (day+60 for coordination numbers) and Luhn."""
    if not _digits(s):
        return False
    if len(s) == 12:
        s = s[2:]
    day = int(s[4:6])
    if day > 60:
        day -= 60
    return valid_date(int(s[:2]), int(s[2:4]), day) and luhn(s)


def pl_pesel(s: str) -> bool:
    """Weights 1,3,7,9 repeated; the month encodes the century (+20 for 2000s, +80 for 1800s...)."""
    if not _digits(s):
        return False
    month = int(s[2:4])
    century = {0: 1900, 1: 2000, 2: 2100, 3: 2200, 4: 1800}.get(month // 20)
    if century is None or not valid_date(int(s[:2]), month % 20, int(s[4:6]), century):
        return False
    return (10 - weighted_mod(s, (1, 3, 7, 9, 1, 3, 7, 9, 1, 3), 10)) % 10 == int(s[10])


def cn_resident_id(s: str) -> bool:
    """18 characters: region, YYYYMMDD birth date, sequence, ISO 7064 MOD 11-2 check (0-9 or X)."""
    if not _digits(s[:17]) or s[0] == "0":
        return False
    year = int(s[6:10])
    if not 1900 <= year <= 2099 or not valid_date(year % 100, int(s[10:12]), int(s[12:14]), year - year % 100):
        return False
    return iso7064_mod11_2(s[:17]) == s[17]


_CURP_CHARS = "0123456789ABCDEFGHIJKLMNÑOPQRSTUVWXYZ"
# Positions 14-16 should be consonants, but issued codes and generators are not strict about it.
_CURP_SHAPE = re.compile(r"[A-Z][AEIOUX][A-Z]{2}\d{6}[HMX][A-Z]{2}[A-Z]{3}[A-Z\d]\d")


def mx_curp(s: str) -> bool:
    """18 characters; birth date; check digit = (10 - sum(value * (18 - i)) mod 10) mod 10."""
    if not _CURP_SHAPE.fullmatch(s) or not valid_date(int(s[4:6]), int(s[6:8]), int(s[8:10])):
        return False
    total = sum(_CURP_CHARS.index(ch) * (18 - i) for i, ch in enumerate(s[:17]))
    return (10 - total % 10) % 10 == int(s[17])


def de_steuer_id(s: str) -> bool:
    """11 digits, no leading 0, one digit repeated 2-3 times in the first ten, ISO 7064 MOD 11,10."""
    if not _digits(s) or s[0] == "0":
        return False
    counts = sorted((s[:10].count(d) for d in set(s[:10])), reverse=True)
    if counts[0] not in (2, 3) or (len(counts) > 1 and counts[1] > 1):
        return False
    return iso7064_mod11_10(s[:10]) == int(s[10])


def au_tfn(s: str) -> bool:
    """8 or 9 digits with ATO weights, weighted sum divisible by 11."""
    if not _digits(s):
        return False
    weights = (1, 4, 3, 7, 5, 8, 6, 9, 10) if len(s) == 9 else (10, 7, 8, 4, 6, 3, 5, 1)
    return weighted_mod(s, weights, 11) == 0


def uk_nino(s: str) -> bool:
    """Two prefix letters (D, F, I, Q, U, V never; O not second; BG, GB, NK, KN, TN, NT, ZZ barred),
    six digits, suffix A-D. There is no check digit."""
    if len(s) != 9 or not _digits(s[2:8]) or s[8] not in "ABCD":
        return False
    a, b = s[0], s[1]
    if a in "DFIQUV" or b in "DFIQUVO" or not (a.isalpha() and b.isalpha()):
        return False
    return s[:2] not in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ")


def be_national_number(s: str) -> bool:
    """YYMMDD + sequence + 97 - (n mod 97), with a leading 2 for people born from 2000."""
    if not _digits(s):
        return False
    check = int(s[9:])
    return 97 - int(s[:9]) % 97 == check or 97 - int("2" + s[:9]) % 97 == check


def dk_cpr(s: str) -> bool:
    """DDMMYY + 4 digits; the mod-11 rule was dropped in 2007, so only the date is checked."""
    return _digits(s) and valid_date(int(s[4:6]), int(s[2:4]), int(s[:2]))


_HETU_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def fi_hetu(s: str) -> bool:
    """DDMMYY, century sign (+ - A-F Y-U), ZZZ, check = "0-9A-Y"[DDMMYYZZZ mod 31]."""
    if not _digits(s[:6]) or not _digits(s[7:10]) or s[6] not in "+-ABCDEFYXWVU":
        return False
    if not valid_date(int(s[4:6]), int(s[2:4]), int(s[:2])):
        return False
    return _HETU_CHECK[int(s[:6] + s[7:10]) % 31] == s[10]


def no_fodselsnummer(s: str) -> bool:
    """DDMMYY (day+40 for D-numbers) + 3 digits + two mod-11 check digits."""
    if not _digits(s):
        return False
    day = int(s[:2])
    if day > 40:
        day -= 40
    if not valid_date(int(s[4:6]), int(s[2:4]), day):
        return False
    k1 = 11 - weighted_mod(s, (3, 7, 6, 1, 8, 9, 4, 5, 2), 11)
    k2 = 11 - weighted_mod(s, (5, 4, 3, 2, 7, 6, 5, 4, 3, 2), 11)
    return (k1 % 11) == int(s[9]) and (k2 % 11) == int(s[10]) and k1 != 10 and k2 != 10


def kr_rrn(s: str) -> bool:
    """YYMMDD + gender/century digit + 6 digits; check = (11 - weighted sum mod 11) mod 10."""
    if not _digits(s) or s[6] not in "1234567890":
        return False
    if not valid_date(int(s[:2]), int(s[2:4]), int(s[4:6])):
        return False
    return (11 - weighted_mod(s, (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5), 11)) % 10 == int(s[12])


def jp_my_number(s: str) -> bool:
    """12 digits; check digit from weights 6..2,7..2 over the first 11 (Cabinet Office ordinance)."""
    if not _digits(s):
        return False
    rem = weighted_mod(s, (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2), 11)
    return (0 if rem <= 1 else 11 - rem) == int(s[11])


def sg_nric(s: str) -> bool:
    """S/T/F/G/M + 7 digits + check letter from weights 2,7,6,5,4,3,2."""
    if s[0] not in "STFGM" or not _digits(s[1:8]):
        return False
    total = weighted_mod(s[1:8], (2, 7, 6, 5, 4, 3, 2), 1 << 30) + {"T": 4, "G": 4, "M": 3}.get(s[0], 0)
    if s[0] in "ST":
        table = "JZIHGFEDCBA"
    elif s[0] in "FG":
        table = "XWUTRQPNMLK"
    else:
        table = "KLJNPQRTUWX"
        return table[10 - total % 11] == s[8]
    return table[total % 11] == s[8]


SCHEMES: dict[str, Scheme] = {
    s.key: s
    for s in (
        Scheme("us_ssn", "US_SSN", (9,), us_ssn, True, ("ssn", "ss#", "social security", "soc. sec.")),
        Scheme("uk_nino", "UK_NINO", (9,), uk_nino, False),
        Scheme("ca_sin", "CA_SIN", (9,), ca_sin, True, ("sin", "social insurance", "nas", "n.a.s.", "assurance sociale",
                                                           "assurance-sociale")),
        Scheme("br_cpf", "BR_CPF", (11,), br_cpf, False, ("cpf",)),
        Scheme("in_aadhaar", "IN_AADHAAR", (12,), in_aadhaar, True, ("aadhaar", "aadhar", "uidai", "uid", "आधार")),
        Scheme("fr_nir", "FR_NIR", (15,), fr_nir, False, ("sécurité sociale", "securite sociale", "nir", "insee", "carte vitale",
                                                         "numéro de sécu")),
        Scheme("es_dni", "ES_DNI", (9,), es_dni),
        Scheme("it_codice_fiscale", "IT_CODICE_FISCALE", (16,), it_codice_fiscale),
        Scheme("nl_bsn", "NL_BSN", (9,), nl_bsn, True, ("bsn", "burgerservicenummer", "burgerservice", "sofi",
                                                           "sofinummer", "sofi-nummer")),
        Scheme("se_personnummer", "SE_PERSONNUMMER", (10, 12), se_personnummer, True, ("personnummer", "personnr",
                                                                                     "samordningsnummer")),
        Scheme("pl_pesel", "PL_PESEL", (11,), pl_pesel, False, ("pesel",)),
        Scheme("cn_resident_id", "CN_RESIDENT_ID", (18,), cn_resident_id, False, ("身份证", "身份号码", "居民身份")),
        Scheme("mx_curp", "MX_CURP", (18,), mx_curp),
        Scheme("de_steuer_id", "DE_STEUER_ID", (11,), de_steuer_id, True,
               ("steuer-id", "steuerid", "steuer-identifikationsnummer", "steueridentifikationsnummer",
                "identifikationsnummer", "steuer-idnr", "steueridentnummer", "identnummer", "idnr", "tax id", "tin",
                "tax identification number")),
        Scheme("au_tfn", "AU_TFN", (8, 9), au_tfn, True, ("tfn", "tax file number", "tax file no", "tax file")),
        Scheme("be_national_number", "BE_NATIONAL_NUMBER", (11,), be_national_number, False, ("rijksregisternummer", "rijksregister", "numéro national", "national number", "insz")),
        Scheme("dk_cpr", "DK_CPR", (10,), dk_cpr, True, ("cpr", "cpr-nummer", "cpr-nr", "personnummer", "personnr")),
        Scheme("fi_hetu", "FI_HETU", (11,), fi_hetu),
        Scheme("no_fodselsnummer", "NO_FODSELSNUMMER", (11,), no_fodselsnummer, False, ("fødselsnummer", "fodselsnummer", "fnr", "fødselsnr", "personnummer")),
        Scheme("kr_rrn", "KR_RRN", (13,), kr_rrn, False, ("주민등록", "rrn", "resident registration")),
        Scheme("jp_my_number", "JP_MY_NUMBER", (12,), jp_my_number, True,
               ("my number", "individual number", "マイナンバー", "個人番号", "個人番号カード", "mynumber")),
        Scheme("sg_nric", "SG_NRIC", (9,), sg_nric),
    )
}

# Schemes whose normalised form is all digits, tried on digit runs by length (stronger checks first).
NUMERIC = ("fr_nir", "be_national_number", "br_cpf", "no_fodselsnummer", "pl_pesel", "cn_resident_id", "kr_rrn",
           "se_personnummer", "us_ssn", "ca_sin", "nl_bsn", "au_tfn", "in_aadhaar", "jp_my_number",
           "de_steuer_id", "dk_cpr")
