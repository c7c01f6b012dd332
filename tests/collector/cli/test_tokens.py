"""``courtguard-collector token ...``, run through main(argv)."""

from __future__ import annotations

from typing import Any

import pytest


def test_token_create_list_revoke(cli: Any) -> None:
    """A token made with create shows in list and, once revoked, is listed as revoked."""
    cli("migrate")
    code, out, _ = cli("token", "create", "--group", "court-a", "--expires", "7d", "--uses", "2",
                       "--note", "third floor")
    assert code == 0 and "cgt_" in out and "expires" in out
    token_id = out.split()[2]
    code, out, _ = cli("token", "list")
    assert token_id in out and "active" in out and "0/2" in out
    assert cli("token", "revoke", token_id)[0] == 0
    assert "revoked" in cli("token", "list")[1]


def test_token_quiet(cli: Any) -> None:
    """token create --quiet prints only the token."""
    cli("migrate")
    assert cli("token", "create", "--quiet")[1].strip().startswith("cgt_")


def test_revoke_unknown_token(cli: Any) -> None:
    """Revoking an unknown token prints an error line and exits 1."""
    cli("migrate")
    code, _, err = cli("token", "revoke", "nope")
    assert code == 1 and err.startswith("error: no enrollment token")


def test_token_states_follow_the_locale(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """token list names each state in the locale's language."""
    cli("migrate")
    token_id = cli("token", "create", "--uses", "1")[1].split()[2]

    def states() -> dict[str, str]:
        lines = cli("token", "list")[1].splitlines()[1:]
        return {line.split()[0]: line.split()[3] for line in lines}

    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert states()[token_id] == "生效"
    assert cli("token", "revoke", token_id)[0] == 0
    assert states()[token_id] == "已吊销"
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert states()[token_id] == "revoked"
