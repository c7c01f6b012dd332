"""``courtguard-collector apikey ...``, run through main(argv)."""

from __future__ import annotations

from typing import Any


def test_apikey_create(cli: Any) -> None:
    """apikey create prints a new key."""
    cli("migrate")
    assert "cgk_" in cli("apikey", "create", "--name", "siem")[1]
