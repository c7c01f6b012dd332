"""The checks a document rule can name (``DocumentMatch.check``), and what is learnt first.

``prepare`` reads what every check needs to know about the document (criminal
or not, the cause, the people named); ``CHECKS`` maps each check a rule can
name to its function in ``names``, ``withheld``, ``identifiers`` or
``address``. Every check reads the normalised parts of a ``Context`` and
yields ``Hit``s in normalised offsets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Final

from agent.detectors.documents.checker.address import address
from agent.detectors.documents.checker.context import CJK, Context, Hit
from agent.detectors.documents.checker.identifiers import (
    bank_account,
    email,
    individual_business_code,
    landline_phone,
    legacy_id,
    licence_plate,
    messaging_account,
    mobile_phone,
    organisation_code,
    property_certificate,
    residence_permit,
    resident_id,
    travel_document,
    vehicle_identifier,
)
from agent.detectors.documents.checker.names import (
    BODY_ROLES,
    body_people,
    caption_people,
    company_trade_name,
    hidden_name_leak,
    party_name,
    party_people,
    protected_person_name,
    pseudonym_collision,
)
from agent.detectors.documents.checker.withheld import (
    family_cause,
    family_related_cause,
    health,
    mediation,
    minor_defendant,
    non_public_hearing,
    private_matters,
    state_secret,
    technical_investigation,
    trade_secret,
)
from agent.detectors.documents.policy import DocumentMatch

Check = Callable[[Context, DocumentMatch], Iterator[Hit]]


def prepare(ctx: Context) -> None:
    """What every check needs to know about the document: case type, cause, the people."""
    head = ctx.head()
    ctx.criminal = bool(re.search(r"刑事|\(\d{4}\)[^)\n]{0,12}刑", head))
    cause = re.search(rf"(?P<cause>[{CJK}、]{{2,30}}?纠纷)(?:一案|案)", head)
    if cause:
        ctx.cause = cause.group("cause")
    else:
        named = re.search(rf"案由[:为]?(?P<cause>[{CJK}、]{{2,30}})", head)
        ctx.cause = named.group("cause") if named else ""
    parties = list(party_people(ctx))
    ctx.people = [p for p in parties if p.line_text or not p.natural]
    ctx.people += body_people(ctx, BODY_ROLES)
    ctx.mentions = [p for p in parties if p.natural and not p.line_text]
    ctx.mentions += caption_people(ctx)


CHECKS: Final[dict[str, Check]] = {
    "minor_defendant": minor_defendant,
    "mediation": mediation,
    "family_cause": family_cause,
    "family_related_cause": family_related_cause,
    "state_secret": state_secret,
    "non_public_hearing": non_public_hearing,
    "protected_person_name": protected_person_name,
    "party_name": party_name,
    "company_trade_name": company_trade_name,
    "hidden_name_leak": hidden_name_leak,
    "pseudonym_collision": pseudonym_collision,
    "resident_id": resident_id,
    "legacy_id": legacy_id,
    "residence_permit": residence_permit,
    "travel_document": travel_document,
    "mobile_phone": mobile_phone,
    "landline_phone": landline_phone,
    "bank_account": bank_account,
    "licence_plate": licence_plate,
    "property_certificate": property_certificate,
    "vehicle_identifier": vehicle_identifier,
    "email": email,
    "messaging_account": messaging_account,
    "individual_business_code": individual_business_code,
    "organisation_code": organisation_code,
    "address": address,
    "health": health,
    "technical_investigation": technical_investigation,
    "private_matters": private_matters,
    "trade_secret": trade_secret,
}
