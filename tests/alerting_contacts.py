"""The personal data in the shipped ``policies/alerting.yaml``: what agents must never receive."""

from __future__ import annotations

import re
from pathlib import Path

ALERTING_FILE = Path(__file__).resolve().parents[1] / "policies" / "alerting.yaml"


def alerting_contacts(path: Path = ALERTING_FILE) -> list[str]:
    """Every mobile number and e-mail address written in the file (the roster and receivers)."""
    text = path.read_text(encoding="utf-8")
    mobiles = re.findall(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])", text)
    emails = re.findall(r"[A-Za-z0-9._+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", text)
    # Not vacuous: the shipped roster has five people, each with a number and an address.
    assert len(set(mobiles)) >= 5 and len(set(emails)) >= 5, (mobiles, emails)
    return sorted(set(mobiles) | set(emails))
