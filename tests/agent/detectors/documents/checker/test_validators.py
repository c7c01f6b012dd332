from __future__ import annotations

from datetime import date

from agent.detectors.documents.checker.normalize import normalize
from agent.detectors.documents.checker.validators import (
    bank_card,
    id18_check_char,
    luhn,
    mask,
    organisation_code,
    resident_id15,
    resident_id18,
    uscc,
    uscc_check_char,
    vin_check,
)


def test_resident_id_official_example_and_each_condition() -> None:
    assert resident_id18("11010519491231002X")
    assert resident_id18("11010519491231002x")
    assert not resident_id18("110105194912310021")  # checksum
    body = "19010519491231002"  # province 19 does not exist
    assert not resident_id18(body + id18_check_char(body))
    body = "11010519490231002"  # 31 February... is 0231
    assert not resident_id18(body + id18_check_char(body))
    body = "11010520990101002"  # born in the future
    assert not resident_id18(body + id18_check_char(body), today=date(2026, 1, 1))
    body = "81000019900101002"  # Hong Kong residence permit
    assert resident_id18(body + id18_check_char(body))


def test_legacy_id_needs_a_real_date() -> None:
    assert resident_id15("110105491231002")
    assert not resident_id15("110105491331002")


def test_uscc_official_example_and_tampering() -> None:
    assert uscc("91350100M000100Y43")
    assert not uscc("91350100M000100Y44")
    assert uscc_check_char("92110105MA01ABCD1") == "0"
    assert uscc("92110105MA01ABCD10")


def test_luhn_cards_and_org_codes_and_vin() -> None:
    assert luhn("4111111111111111") and not luhn("4111111111111112")
    assert bank_card("6222021234567890123")  # UnionPay: not all are Luhn-valid
    assert not bank_card("1234567890123456")
    assert organisation_code("D2143569-X") is True
    assert vin_check("1M8GDM9AXKP042788")
    assert not vin_check("1M8GDM9A1KP042788")


def test_normalize_keeps_offsets_into_the_original() -> None:
    original = "手机：１３８１２３４５６７８，"
    folded = normalize(original)
    assert folded.text == "手机:13812345678,"
    start = folded.text.index("138")
    assert folded.original_span(start, start + 11) == (3, 14)
    assert original[3:14] == "１３８１２３４５６７８"


def test_mask_never_shows_the_content() -> None:
    assert mask("张三丰") == "张某某"
    assert mask("11010519491231002X") == "11××××××××××××××2X"
    assert "文化" not in mask("文化路88号3栋2单元501室")
