"""National identifiers: one entry per scheme, validated by python-stdnum (its published checksums).

Validators take the identifier normalised to its digits and letters (separators removed, upper
case; the Finnish HETU keeps its century sign). A scheme whose check is strong (two check digits,
mod 97, a birth date plus a check digit, a check letter, or twelve digits and more with a check)
counts on its own. One that is weak (one check digit over ten digits or fewer with no date in it,
or no check at all) is marked ``needs_context``: it counts only when a word naming it ("SSN",
"TFN"...) occurs within ``CONTEXT_CHARS`` before it, or in the scheme's own printed form
(detectors.py ``_SHAPES``). The Dutch BSN (9 digits, 11-proof) and Aadhaar (12 digits, Verhoeff)
count alone: a bare nine- or twelve-digit number outside a phone, an order or a barcode is rare.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

CONTEXT_CHARS = 48


@dataclass(frozen=True)
class Scheme:
    key: str  # jurisdiction_scheme, e.g. "us_ssn"
    label: str  # fine placeholder label, e.g. "US_SSN"
    lengths: tuple[int, ...]  # lengths of the normalised identifier
    validate: Callable[[str], bool]
    needs_context: bool = False
    context: tuple[str, ...] = ()
    stdnum: str = ""  # the python-stdnum module that validates it ("" for the two it lacks)


def _stdnum(path: str) -> Callable[[str], bool]:
    """``stdnum.<path>.is_valid``, never raising: a few modules throw on odd input (cn.ric's table)."""
    module = importlib.import_module("stdnum." + path)

    def validate(s: str) -> bool:
        try:
            return bool(module.is_valid(s))
        except Exception:  # noqa: BLE001 - a validator's bug must read as "not this scheme"
            return False

    validate.__doc__ = f"python-stdnum ``{path}``: {(module.__doc__ or '').strip().splitlines()[0]}"
    return validate


_dni, _nie = _stdnum("es.dni"), _stdnum("es.nie")


def es_dni(s: str) -> bool:
    """Spanish DNI (8 digits + letter) or NIE (X/Y/Z + 7 digits + letter)."""
    return _nie(s) if s[:1] in ("X", "Y", "Z") else _dni(s)


def cn_resident_id(s: str) -> bool:
    """18 characters: birth date and ISO 7064 MOD 11-2 check. stdnum's ``is_valid`` also requires
    the region code in its own table, which lags the codes issued, so the region is not looked up."""
    from stdnum.cn import ric

    if len(s) != 18 or not s[:17].isdigit() or s[0] == "0":
        return False
    try:
        ric.get_birth_date(s)
    except Exception:  # noqa: BLE001 - an impossible date
        return False
    return ric.calc_check_digit(s) == s[17]


_pvn = _stdnum("lv.pvn")


def lv_personas_kods(s: str) -> bool:
    """Latvian personal code (DDMMYY + 5 digits; new codes start with 32); legal VAT numbers excluded."""
    return len(s) == 11 and s[0] in "0123" and _pvn(s)


def uk_nino(s: str) -> bool:
    """Two prefix letters (D, F, I, Q, U, V never; O not second; BG, GB, NK, KN, TN, NT, ZZ barred),
    six digits, suffix A-D (HMRC NIM39110). No check digit; stdnum has no module for it."""
    if len(s) != 9 or not s[2:8].isdigit() or not s[2:8].isascii() or s[8] not in "ABCD":
        return False
    a, b = s[0], s[1]
    if a in "DFIQUV" or b in "DFIQUVO" or not (a.isalpha() and b.isalpha()):
        return False
    return s[:2] not in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ")


def sg_nric(s: str) -> bool:
    """S/T/F/G/M + 7 digits + check letter from weights 2,7,6,5,4,3,2 (stdnum has only the UEN)."""
    if len(s) != 9 or s[0] not in "STFGM" or not s[1:8].isdigit() or not s[1:8].isascii():
        return False
    total = sum(int(c) * w for c, w in zip(s[1:8], (2, 7, 6, 5, 4, 3, 2), strict=True))
    total += {"T": 4, "G": 4, "M": 3}.get(s[0], 0)
    if s[0] == "M":
        return "KLJNPQRTUWX"[10 - total % 11] == s[8]
    return ("JZIHGFEDCBA" if s[0] in "ST" else "XWUTRQPNMLK")[total % 11] == s[8]


def _s(key: str, label: str, lengths: tuple[int, ...], path: str, needs_context: bool = False,
       context: tuple[str, ...] = ()) -> Scheme:
    return Scheme(key, label, lengths, _stdnum(path), needs_context, context, path)


SCHEMES: dict[str, Scheme] = {
    s.key: s
    for s in (
        # -- Americas
        _s("us_ssn", "US_SSN", (9,), "us.ssn", True, ("ssn", "ss#", "social security", "soc. sec.")),
        _s("us_itin", "US_ITIN", (9,), "us.itin", True, ("itin", "taxpayer identification")),
        _s("ca_sin", "CA_SIN", (9,), "ca.sin", True, ("sin", "social insurance", "nas", "n.a.s.", "assurance sociale",
                                                       "assurance-sociale")),
        _s("br_cpf", "BR_CPF", (11,), "br.cpf", False, ("cpf",)),
        _s("mx_curp", "MX_CURP", (18,), "mx.curp"),
        _s("ar_cuit", "AR_CUIT", (11,), "ar.cuit", False, ("cuit", "cuil")),
        _s("cl_rut", "CL_RUT", (8, 9), "cl.rut", False, ("rut", "run", "rol único")),
        # -- Europe
        Scheme("uk_nino", "UK_NINO", (9,), uk_nino),
        _s("fr_nir", "FR_NIR", (15,), "fr.nir", False, ("sécurité sociale", "securite sociale", "nir", "insee",
                                                         "carte vitale", "numéro de sécu")),
        Scheme("es_dni", "ES_DNI", (9,), es_dni, stdnum="es.dni, es.nie"),
        _s("it_codice_fiscale", "IT_CODICE_FISCALE", (16,), "it.codicefiscale"),
        _s("nl_bsn", "NL_BSN", (9,), "nl.bsn", False, ("bsn", "burgerservicenummer", "burgerservice", "sofi",
                                                       "sofinummer", "sofi-nummer")),
        _s("se_personnummer", "SE_PERSONNUMMER", (10, 12), "se.personnummer", True,
           ("personnummer", "personnr", "samordningsnummer")),
        _s("pl_pesel", "PL_PESEL", (11,), "pl.pesel", False, ("pesel",)),
        _s("de_steuer_id", "DE_STEUER_ID", (11,), "de.idnr", False,
           ("steuer-id", "steuerid", "steuer-identifikationsnummer", "steueridentifikationsnummer",
            "identifikationsnummer", "steuer-idnr", "steueridentnummer", "identnummer", "idnr", "tax id", "tin",
            "tax identification number")),
        _s("be_national_number", "BE_NATIONAL_NUMBER", (11,), "be.nn", False,
           ("rijksregisternummer", "rijksregister", "numéro national", "national number", "insz", "niss")),
        _s("dk_cpr", "DK_CPR", (10,), "dk.cpr", True, ("cpr", "cpr-nummer", "cpr-nr", "personnummer", "personnr")),
        _s("fi_hetu", "FI_HETU", (11,), "fi.hetu"),
        _s("no_fodselsnummer", "NO_FODSELSNUMMER", (11,), "no.fodselsnummer", False,
           ("fødselsnummer", "fodselsnummer", "fnr", "fødselsnr", "personnummer")),
        _s("ee_isikukood", "EE_ISIKUKOOD", (11,), "ee.ik", False, ("isikukood",)),
        _s("lt_asmens_kodas", "LT_ASMENS_KODAS", (11,), "lt.asmens", False, ("asmens kodas",)),
        Scheme("lv_personas_kods", "LV_PERSONAS_KODS", (11,), lv_personas_kods, False, ("personas kods",), "lv.pvn"),
        _s("gr_amka", "GR_AMKA", (11,), "gr.amka", False, ("amka", "αμκα")),
        _s("ro_cnp", "RO_CNP", (13,), "ro.cnp", False, ("cnp", "cod numeric personal")),
        _s("bg_egn", "BG_EGN", (10,), "bg.egn", False, ("egn", "егн")),
        _s("cz_rodne_cislo", "CZ_RODNE_CISLO", (10,), "cz.rc", False, ("rodné číslo", "rodne cislo", "r.č.")),
        _s("sk_rodne_cislo", "SK_RODNE_CISLO", (10,), "sk.rc", False, ("rodné číslo", "rodne cislo")),
        _s("si_emso", "SI_EMSO", (13,), "si.emso", False, ("emšo", "emso")),
        _s("hr_oib", "HR_OIB", (11,), "hr.oib", True, ("oib",)),
        _s("tr_tc_kimlik", "TR_TC_KIMLIK", (11,), "tr.tckimlik", False, ("kimlik", "t.c.", "tckn")),
        _s("ch_ahv", "CH_AHV", (13,), "ch.ssn", False, ("ahv", "avs", "sozialversicherungsnummer")),
        _s("at_svnr", "AT_SVNR", (10,), "at.vnr", False, ("svnr", "sozialversicherungsnummer", "versicherungsnummer")),
        _s("ie_pps", "IE_PPS", (8, 9), "ie.pps", False, ("pps", "ppsn")),
        _s("is_kennitala", "IS_KENNITALA", (10,), "is_.kennitala", False, ("kennitala", "kt.")),
        _s("pt_nif", "PT_NIF", (9,), "pt.nif", True, ("nif", "contribuinte")),
        # -- Asia, Oceania, Middle East, Africa
        _s("in_aadhaar", "IN_AADHAAR", (12,), "in_.aadhaar", False, ("aadhaar", "aadhar", "uidai", "uid", "आधार")),
        _s("in_pan", "IN_PAN", (10,), "in_.pan", True, ("pan", "permanent account number")),
        Scheme("cn_resident_id", "CN_RESIDENT_ID", (18,), cn_resident_id, False, ("身份证", "身份号码", "居民身份"), "cn.ric"),
        _s("kr_rrn", "KR_RRN", (13,), "kr.rrn", False, ("주민등록", "rrn", "resident registration")),
        _s("jp_my_number", "JP_MY_NUMBER", (12,), "jp.in_", True,
           ("my number", "individual number", "マイナンバー", "個人番号", "個人番号カード", "mynumber")),
        Scheme("sg_nric", "SG_NRIC", (9,), sg_nric),
        _s("th_id", "TH_ID", (13,), "th.pin", False, ("บัตรประชาชน", "เลขประจำตัวประชาชน")),
        _s("il_teudat_zehut", "IL_TEUDAT_ZEHUT", (9,), "il.idnr", True, ("teudat zehut", "תעודת זהות", "ת.ז")),
        _s("za_id", "ZA_ID", (13,), "za.idnr", False, ("identity number", "id number")),
        _s("au_tfn", "AU_TFN", (8, 9), "au.tfn", True, ("tfn", "tax file number", "tax file no", "tax file")),
        _s("nz_ird", "NZ_IRD", (8, 9), "nz.ird", True, ("ird",)),
    )
}

# Schemes whose normalised form is all digits, tried on digit runs by length (stronger checks first).
NUMERIC = ("fr_nir", "be_national_number", "br_cpf", "no_fodselsnummer", "pl_pesel", "ee_isikukood",
           "lt_asmens_kodas", "lv_personas_kods", "tr_tc_kimlik", "gr_amka", "ar_cuit", "de_steuer_id",
           "cn_resident_id", "kr_rrn", "ro_cnp", "si_emso", "za_id", "ch_ahv", "th_id", "in_aadhaar", "nl_bsn",
           "bg_egn", "cz_rodne_cislo", "sk_rodne_cislo", "at_svnr", "is_kennitala", "se_personnummer", "us_ssn",
           "us_itin", "ca_sin", "il_teudat_zehut", "pt_nif", "hr_oib", "au_tfn", "nz_ird", "jp_my_number",
           "dk_cpr")


def epoch_like(digits: str, since: int = 1_600_000_000) -> bool:
    """A ten-digit Unix time between 2020-09 and 2030-03: written bare, it is read as a timestamp, not
    an ID (the window is narrow because Austrian SVNRs and kennitala share the shape; millisecond
    times need no guard: the thirteen-digit schemes all carry a birth date and a check). Phones use
    a wider window (``since`` 2011): no phone plan needs it, and crawls are full of older times."""
    return len(digits) == 10 and since <= int(digits) < 1_900_000_000
