"""Each national-ID validator accepts a published example and rejects it with one digit changed.

The examples after the first 22 are the ones python-stdnum's own documentation validates."""

import pytest

from corpusforge.privacy.checksums import iso7064_mod11_2, luhn, verhoeff
from corpusforge.privacy.national_ids import SCHEMES

# Published or widely cited examples (tax-authority samples, Wikipedia) of valid identifiers.
VALID = {
    "us_ssn": "123456789",
    "uk_nino": "AB123456C",
    "ca_sin": "130692544",
    "br_cpf": "52998224725",
    "in_aadhaar": "234123412346",
    "fr_nir": "255081416802538",
    "es_dni": "12345678Z",
    "it_codice_fiscale": "RSSMRA85T10A562S",
    "nl_bsn": "111222333",
    "se_personnummer": "8112289874",
    "pl_pesel": "44051401359",
    "cn_resident_id": "11010519491231002X",
    "mx_curp": "HEGG560427MVZRRL04",
    "de_steuer_id": "86095742719",
    "au_tfn": "123456782",
    "be_national_number": "85073003328",
    "dk_cpr": "0707614285",
    "fi_hetu": "131052-308T",
    "no_fodselsnummer": "01010750160",
    "kr_rrn": "8001011234560",
    "jp_my_number": "123456789018",
    "sg_nric": "S1234567D",
    "us_itin": "912903456",
    "ar_cuit": "20055361682",
    "cl_rut": "760864285",
    "ee_isikukood": "36805280109",
    "lt_asmens_kodas": "33309240064",
    "lv_personas_kods": "16117519997",
    "gr_amka": "01013099997",
    "ro_cnp": "1630615123457",
    "bg_egn": "7523169263",
    "cz_rodne_cislo": "7103192745",
    "sk_rodne_cislo": "7103192745",
    "si_emso": "0101006500006",
    "hr_oib": "33392005961",
    "tr_tc_kimlik": "17291716060",
    "ch_ahv": "7569217076985",
    "at_svnr": "1237010180",
    "ie_pps": "1234567T",
    "is_kennitala": "1201743399",
    "pt_nif": "123456789",
    "in_pan": "ACUPA7085R",
    "th_id": "1234545678781",
    "il_teudat_zehut": "039337423",
    "za_id": "7503305044089",
    "nz_ird": "49091850",
}

# One check character changed (schemes without a check digit get an impossible field instead).
INVALID = {
    "us_ssn": "666456789",  # area 666 is never issued
    "uk_nino": "GB123456C",  # GB prefix is barred
    "ca_sin": "130692545",
    "br_cpf": "52998224724",
    "in_aadhaar": "234123412347",
    "fr_nir": "255081416802539",
    "es_dni": "12345678A",
    "it_codice_fiscale": "RSSMRA85T10A562T",
    "nl_bsn": "111222334",
    "se_personnummer": "8112289875",
    "pl_pesel": "44051401358",
    "cn_resident_id": "110105194912310021",
    "mx_curp": "HEGG560427MVZRRL05",
    "de_steuer_id": "86095742718",
    "au_tfn": "123456783",
    "be_national_number": "85073003329",
    "dk_cpr": "3202614285",  # 32 February
    "fi_hetu": "131052-308U",
    "no_fodselsnummer": "01010750161",
    "kr_rrn": "8001011234561",
    "jp_my_number": "123456789019",
    "sg_nric": "S1234567E",
    "us_itin": "912933456",  # group 93 is never issued
    "ar_cuit": "20055361680",
    "cl_rut": "760864280",
    "ee_isikukood": "36805280100",
    "lt_asmens_kodas": "33309240060",
    "lv_personas_kods": "16117519990",
    "gr_amka": "01013099990",
    "ro_cnp": "1630615123450",
    "bg_egn": "7523169260",
    "cz_rodne_cislo": "7103192740",
    "sk_rodne_cislo": "7103192740",
    "si_emso": "0101006500000",
    "hr_oib": "33392005960",
    "tr_tc_kimlik": "17291716061",
    "ch_ahv": "7569217076980",
    "at_svnr": "1237010181",
    "ie_pps": "1234567W",
    "is_kennitala": "1201743499",
    "pt_nif": "123456780",
    "in_pan": "ACUXA7085R",
    "th_id": "1234545678780",
    "il_teudat_zehut": "039337420",
    "za_id": "7503305044080",
    "nz_ird": "49091851",
}


def test_every_scheme_has_a_valid_and_an_invalid_case():
    assert set(VALID) == set(SCHEMES) == set(INVALID)
    assert len(SCHEMES) >= 45


@pytest.mark.parametrize("key", sorted(VALID))
def test_validator_accepts_published_example(key):
    assert SCHEMES[key].validate(VALID[key])


@pytest.mark.parametrize("key", sorted(INVALID))
def test_validator_rejects_changed_check_character(key):
    assert not SCHEMES[key].validate(INVALID[key])


def test_luhn_verhoeff_and_iso7064_on_textbook_values():
    assert luhn("79927398713") and not luhn("79927398710")
    assert verhoeff("2363") and not verhoeff("2364")
    assert iso7064_mod11_2("11010519491231002") == "X"


def test_nie_letter_uses_the_prefix_as_a_digit():
    assert SCHEMES["es_dni"].validate("X1234567L")
    assert not SCHEMES["es_dni"].validate("X1234567A")
