"""Checksums and structure of Chinese identifiers: validate, don't just pattern-match.

Each function takes the candidate as found (separators already removed where
the caller says so) and answers whether it is a well-formed identifier of its
kind. Sources: GB 11643-1999 (resident ID, ISO 7064 MOD 11-2), GB 32100-2015
(unified social credit code), GB 11714-1997 (organisation code), ISO 3779
(VIN check digit), ISO/IEC 7812 (Luhn).
"""

from __future__ import annotations

from datetime import date
from typing import Final

_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK: Final = "10X98765432"
#: Province-level codes of GB/T 2260 plus 71 (Taiwan), 81/82 (HK, Macao), 83 (HMT permits).
PROVINCE_CODES: Final = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
    | {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83}
)


def id18_check_char(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def birth_date(yyyymmdd: str) -> date | None:
    try:
        return date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return None


def resident_id18(value: str, today: date | None = None) -> bool:
    """GB 11643 18-character ID: province, a real past birth date, MOD 11-2 check character.

    A leading 9 is the 2023 foreigner permanent-residence card, which shares the checksum.
    """
    if len(value) != 18 or not value[:17].isdigit():
        return False
    if int(value[:2]) not in PROVINCE_CODES and value[0] != "9":
        return False
    born = birth_date(value[6:14])
    if born is None or born.year < 1900 or born > (today or date.today()):
        return False
    return id18_check_char(value[:17]) == value[17].upper()


def resident_id15(value: str) -> bool:
    """Legacy 15-digit ID: province and a real 19yy birth date (no checksum exists)."""
    if len(value) != 15 or not value.isdigit() or int(value[:2]) not in PROVINCE_CODES:
        return False
    return birth_date("19" + value[6:12]) is not None


def luhn(digits: str) -> bool:
    if not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def bank_card(digits: str) -> bool:
    """A payment card number: 16-19 digits, an issuer prefix in use in China, Luhn.

    UnionPay (62) cards are not all Luhn-valid, so 62 cards pass on length alone.
    """
    if not digits.isdigit() or not 16 <= len(digits) <= 19:
        return False
    if digits.startswith("62"):
        return True
    if digits[0] in "3456":
        return luhn(digits)
    return False


_USCC_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
#: Registration authority + entity type pairs defined by GB 32100 (first two characters).
_USCC_TYPES: Final = frozenset(
    [
        "11",
        "12",
        "13",
        "19",
        "21",
        "29",
        "31",
        "32",
        "33",
        "34",
        "35",
        "39",
        "41",
        "49",
        "51",
        "52",
        "53",
        "59",
        "61",
        "62",
        "69",
        "71",
        "72",
        "79",
        "81",
        "89",
        "91",
        "92",
        "93",
        "A1",
        "A9",
        "N1",
        "N2",
        "N3",
        "N9",
        "Y1",
    ]
)


def uscc_check_char(first17: str) -> str | None:
    try:
        total = sum(
            _USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True)
        )
    except ValueError:
        return None
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def uscc(value: str) -> bool:
    """GB 32100 unified social credit code: type prefix, 6-digit region, mod-31 check."""
    value = value.upper()
    if len(value) != 18 or value[:2] not in _USCC_TYPES or not value[2:8].isdigit():
        return False
    if any(c not in _USCC_ALPHABET for c in value):
        return False
    return uscc_check_char(value[:17]) == value[17]


def organisation_code(value: str) -> bool:
    """GB 11714 organisation code ``XXXXXXXX-C`` (the dash optional)."""
    value = value.upper().replace("-", "")
    if len(value) != 9 or not value[:8].isalnum():
        return False
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = 0
    for char, weight in zip(value[:8], weights, strict=True):
        total += (int(char) if char.isdigit() else ord(char) - 55) * weight
    check = 11 - total % 11
    expected = "X" if check == 10 else "0" if check == 11 else str(check)
    return value[8] == expected


_VIN_VALUES: Final = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS: Final = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def vin_check(value: str) -> bool:
    """ISO 3779 check digit (position 9). Chinese VINs mostly carry it; callers also use context."""
    value = value.upper()
    if len(value) != 17 or any(c not in _VIN_VALUES for c in value):
        return False
    total = sum(_VIN_VALUES[c] * w for c, w in zip(value, _VIN_WEIGHTS, strict=True))
    check = total % 11
    return value[8] == ("X" if check == 10 else str(check))


#: Mobile prefixes (second and third digits) allocated by MIIT to carriers and MVNOs.
_MOBILE_SECOND: Final = frozenset("3456789")


def mobile(digits: str) -> bool:
    digits = digits.removeprefix("86") if len(digits) == 13 else digits
    return (
        len(digits) == 11 and digits[0] == "1" and digits[1] in _MOBILE_SECOND and digits.isdigit()
    )


def mask(fragment: str) -> str:
    """A masked excerpt of personal data: keeps the shape, never the content.

    Names keep the surname (as article 9 would show them); digit strings keep
    the first and last characters only when they are long enough that this
    identifies nothing (62××××××××××××73).
    """
    if not fragment:
        return fragment
    if len(fragment) <= 4 and all("\u4e00" <= c <= "\u9fff" for c in fragment):
        return fragment[0] + "某" * (len(fragment) - 1)
    if any("\u4e00" <= c <= "\u9fff" for c in fragment):
        return fragment[0] + "×" * (len(fragment) - 1)
    if len(fragment) >= 12:
        return fragment[:2] + "×" * (len(fragment) - 4) + fragment[-2:]
    return fragment[0] + "×" * (len(fragment) - 1)
