#!/usr/bin/env python3
"""Writes the differential test vectors: what libphonenumber makes of numbers.

Every region's example number of every number type, plus (for the featured
regions) random valid numbers derived from them, each written in the E164,
INTERNATIONAL, RFC3966 and NATIONAL formats, with the E.164 libphonenumber
parses each one to (the NATIONAL form parsed with the number's region as the
default region) and whether that number is valid. Then hand-picked edge
inputs with what libphonenumber says of them.

Deterministic: the same phonenumbers version and seed give the same file.

    pip install phonenumbers==9.0.33
    python3 scripts/differential/generate.py > ibiki-core/tests/vectors/libphonenumber.tsv
"""

import random
import sys

import phonenumbers as pn
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

# The metadata version of the Rust `phonenumber` crate ibiki reads.
EXPECTED_VERSION = "9.0.33"
SEED = 20250933
# Random numbers derived from each example, for the featured regions.
VARIANTS = 2

FEATURED = """
    US CA MX BR AR CO CL PE VE
    GB IE DE FR IT ES PT NL BE CH AT SE NO FI DK PL CZ HU RO GR RU LT UA
    JP CN KR IN ID TH VN PH MY SG HK TW PK BD KZ IR
    AU NZ FJ
    ZA NG EG KE MA GH
    SA AE IL TR
""".split()

TYPES = [
    ("fixed_line", PhoneNumberType.FIXED_LINE),
    ("mobile", PhoneNumberType.MOBILE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
]

FORMATS = [
    ("e164", PhoneNumberFormat.E164),
    ("international", PhoneNumberFormat.INTERNATIONAL),
    ("rfc3966", PhoneNumberFormat.RFC3966),
    ("national", PhoneNumberFormat.NATIONAL),
]

# (default region or "-", input, what the input is): libphonenumber's answer
# is recorded for each; ibiki's deliberate differences live in the Rust test.
EDGES = [
    # Vanity numbers: libphonenumber maps letters to digits.
    ("US", "1-800-FLOWERS", "vanity"),
    ("US", "INFO-4155550100", "vanity"),
    ("GB", "0800 REPAIR", "vanity"),
    # Short codes and emergency numbers.
    ("US", "911", "short_code"),
    ("US", "12345", "short_code"),
    ("US", "898211", "short_code"),
    ("GB", "999", "short_code"),
    ("GB", "61010", "short_code"),
    ("FR", "112", "short_code"),
    ("DE", "110", "short_code"),
    # A national trunk prefix written after the country code.
    ("US", "+44 020 7946 0958", "trunk_prefix"),
    ("-", "+44 020 7946 0958", "trunk_prefix"),
    ("-", "+49 030 123456", "trunk_prefix"),
    ("-", "+33 01 23 45 67 89", "trunk_prefix"),
    ("-", "+61 02 1234 5678", "trunk_prefix"),
    ("-", "+1 1 415 555 0100", "trunk_prefix"),
    ("-", "+7 8 800 555 35 35", "trunk_prefix"),
    # The "(0)" people write after a country code.
    ("-", "+44 (0)20 7946 0958", "bracketed_trunk"),
    ("-", "+49 (0)30 123456", "bracketed_trunk"),
    ("-", "+39 (0)6 1234 5678", "bracketed_trunk"),
    # National prefixes that must be stripped once, or not at all.
    ("RU", "8 800 555 35 35", "national_prefix"),
    ("-", "+7 800 555 35 35", "national_prefix"),
    ("LT", "8 800 12345", "national_prefix"),
    ("-", "+370 800 12345", "national_prefix"),
    ("LT", "+370 800 12345", "national_prefix"),
    ("US", "+33 1 23 45 67 89", "national_prefix"),
    ("RU", "+86 10 1234 5678", "national_prefix"),
    ("IT", "06 1234 5678", "national_prefix"),
    ("IT", "+39 06 1234 5678", "national_prefix"),
    ("AR", "011 15-2345-6789", "national_prefix"),
    ("AR", "+54 9 11 2345-6789", "national_prefix"),
    ("MX", "044 55 1234 5678", "national_prefix"),
    ("BR", "0 21 (11) 96123-4567", "national_prefix"),
    # International dialling prefixes of the default region.
    ("US", "011 44 20 7946 0958", "idd"),
    ("GB", "00 1 415 555 0100", "idd"),
    ("AU", "0011 44 20 7946 0958", "idd"),
    ("JP", "010 1 415 555 0100", "idd"),
    ("RU", "810 44 20 7946 0958", "idd"),
    ("BR", "0021 1 415 555 0100", "idd"),
    ("US", "011 0 20 7946 0958", "idd"),
    # Numbers that are not valid.
    ("-", "+1 200 555 0100", "invalid"),
    ("-", "+44 20 7946 095", "invalid"),
    ("-", "+999 1234 5678", "invalid"),
    ("-", "+0 415 555 0100", "invalid"),
    ("-", "+1 415 555 0100 1234 56", "invalid"),
    ("-", "+1", "invalid"),
    ("US", "(415) 555-010", "invalid"),
    ("-", "(415) 555-0100", "invalid"),
    # Syntax.
    ("-", "", "syntax"),
    ("-", "+", "syntax"),
    ("-", "()-", "syntax"),
    ("-", "+1 415+555 0100", "syntax"),
    ("-", "1+4155550100", "syntax"),
    ("-", "+1#4155550100", "syntax"),
    ("-", "'; DROP TABLE clients; --", "syntax"),
    ("-", "+1 415 555 0100 ext. 123", "extension"),
    ("-", "+1 415 555 0100 x123", "extension"),
    ("-", "tel:+1-415-555-0100;ext=123", "extension"),
    ("-", "tel:415-555-0100;phone-context=+1", "uri_parameters"),
    ("-", "+１ ４１５ ５５５ ０１００", "unicode_digits"),
    ("-", "+٤٤ ٢٠ ٧٩٤٦ ٠٩٥٨", "unicode_digits"),
    ("-", "\u200e+1 415 555 0100", "unicode_format"),
    ("-", "+1\u00a0415\u00a0555\u00a00100", "unicode_space"),
    ("-", "+1 415 555 0100" + " " * 60, "long"),
    ("-", "+" + "1" * 70, "long"),
    # Inputs of the `phonenumber` crate's panic advisories.
    ("-", ".;phone-context=", "advisory_cve_2023_42444"),
    ("-", "+dwPAA;phone-context=AA", "advisory_cve_2024_39697"),
]


def e164(number):
    return pn.format_number(number, PhoneNumberFormat.E164)


def variants(rng, number):
    """Valid numbers of the same region from `number` with its last digits
    changed: up to VARIANTS distinct ones."""
    national = str(number.national_number)
    lead = "0" * (number.number_of_leading_zeros or 0) if number.italian_leading_zero else ""
    digits = lead + national
    found = []
    for _ in range(30):
        if len(found) == VARIANTS or len(digits) < 4:
            break
        tail = rng.randint(2, min(4, len(digits) - 2))
        candidate = digits[:-tail] + "".join(rng.choice("0123456789") for _ in range(tail))
        try:
            parsed = pn.parse("+%d%s" % (number.country_code, candidate), None)
        except NumberParseException:
            continue
        if pn.is_valid_number(parsed) and e164(parsed) != e164(number) and parsed not in found:
            found.append(parsed)
    return found


def parse_result(text, region):
    """libphonenumber's E.164 and validity for `text`, or its error."""
    try:
        parsed = pn.parse(text, None if region == "-" else region)
    except NumberParseException as e:
        return "error:%s" % error_name(e), "0"
    return e164(parsed), "1" if pn.is_valid_number(parsed) else "0"


def error_name(error):
    names = {
        NumberParseException.INVALID_COUNTRY_CODE: "invalid_country_code",
        NumberParseException.NOT_A_NUMBER: "not_a_number",
        NumberParseException.TOO_SHORT_AFTER_IDD: "too_short_after_idd",
        NumberParseException.TOO_SHORT_NSN: "too_short_nsn",
        NumberParseException.TOO_LONG: "too_long",
    }
    return names.get(error.error_type, "unknown")


def escape(text):
    """Tabs, newlines and backslashes escaped; the Rust test unescapes."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def rows_for(region, kind, number):
    for name, fmt in FORMATS:
        if region == "001" and fmt == PhoneNumberFormat.NATIONAL:
            continue
        text = pn.format_number(number, fmt)
        default = "-" if region == "001" else region
        expected, valid = parse_result(text, default)
        yield (default, kind, name, escape(text), expected, valid)


def numbers_of(rng, region, featured):
    for kind, number_type in TYPES:
        example = pn.example_number_for_type(region, number_type)
        if example is None or pn.region_code_for_number(example) != region:
            continue
        yield kind, example
        if featured:
            for variant in variants(rng, example):
                yield kind, variant


def main():
    if pn.__version__ != EXPECTED_VERSION:
        sys.exit("phonenumbers %s needed, %s found" % (EXPECTED_VERSION, pn.__version__))
    missing = [r for r in FEATURED if r not in pn.SUPPORTED_REGIONS]
    if missing:
        sys.exit("unknown featured regions: %s" % missing)
    rng = random.Random(SEED)
    out = sys.stdout
    out.write("# Generated by scripts/differential/generate.py from phonenumbers %s.\n" % pn.__version__)
    out.write("region\tkind\tformat\tinput\texpected\tvalid\n")
    featured = set(FEATURED)
    for region in sorted(pn.SUPPORTED_REGIONS):
        for kind, number in numbers_of(rng, region, region in featured):
            for row in rows_for(region, kind, number):
                out.write("\t".join(row) + "\n")
    for code in sorted(pn.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        example = pn.example_number_for_non_geo_entity(code)
        if example is not None:
            for row in rows_for("001", "non_geographic", example):
                out.write("\t".join(row) + "\n")
    for region, text, kind in EDGES:
        expected, valid = parse_result(text, region)
        out.write("\t".join((region, "edge:" + kind, "raw", escape(text), expected, valid)) + "\n")


if __name__ == "__main__":
    main()
