"""Directory sign-on without a directory: what ``[console.ldap]`` refuses, and a silent server.

The sign-in itself against a real slapd is in tests/e2e/test_directory_signin.py.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.console.directory import Directory, normalize_dn
from collector.console.directory_settings import DirectorySettings
from collector.errors import ConfigError
from collector.settings import CollectorSettings, load_settings

SEARCH = """
service_bind_dn = "cn=courtguard,ou=services,dc=court,dc=test"
service_password_file = "/etc/courtguard/ldap.password"
user_search_base = "ou=people,dc=court,dc=test"
"""


def load(tmp_path: Path, body: str) -> CollectorSettings:
    config = tmp_path / "collector.toml"
    config.write_text(body, encoding="utf-8")
    return load_settings(config, data_dir=tmp_path)


def test_a_search_configuration_loads(tmp_path: Path) -> None:
    settings = load(tmp_path, f"""
[console.ldap]
url = "ldaps://dc1.court.test"
{SEARCH}
[console.ldap.group_roles]
"CN=安全组,OU=Groups,DC=court,DC=test" = "admin"
""")
    ldap = settings.console.ldap
    assert ldap is not None and ldap.use_ssl
    assert ldap.timeout_s == 5 and ldap.connect_timeout_s == 3


@pytest.mark.parametrize(("body", "says"), [
    (f'url = "ldap://dc1.court.test"\n{SEARCH}', "in clear"),
    (f'url = "ldaps://dc1.court.test"\nstarttls = true\n{SEARCH}', "starttls is for ldap://"),
    (f'url = "http://dc1.court.test"\n{SEARCH}', "url must be"),
    ('url = "ldaps://dc1.court.test"\nbind_dn_template = "uid={username},dc=x"\n'
     'service_bind_dn = "cn=a"', "not both"),
    ('url = "ldaps://dc1.court.test"\nbind_dn_template = "uid=fixed,dc=x"', "{username}"),
    ('url = "ldaps://dc1.court.test"\nservice_bind_dn = "cn=a"', "give bind_dn_template"),
    (f'url = "ldaps://dc1.court.test"\n{SEARCH}\ntimeout_s = 0', "timeout_s"),
    (f'url = "ldaps://dc1.court.test"\n{SEARCH}\nsurprise = 1', "surprise"),
])
def test_bad_directory_settings_are_refused_with_the_field(
    tmp_path: Path, body: str, says: str
) -> None:
    roles = '\n[console.ldap.group_roles]\n"cn=g,dc=x" = "admin"\n'
    with pytest.raises(ConfigError, match=r"console\.ldap") as refused:
        load(tmp_path, f"[console.ldap]\n{body}\n{roles}")
    assert says in str(refused.value)


def test_unknown_role_and_empty_map_are_refused(tmp_path: Path) -> None:
    base = f'[console.ldap]\nurl = "ldaps://dc1.court.test"\n{SEARCH}\n'
    with pytest.raises(ConfigError, match="not one of admin, reviewer, auditor"):
        load(tmp_path, base + '[console.ldap.group_roles]\n"cn=g,dc=x" = "root"\n')
    with pytest.raises(ConfigError, match="group_roles"):
        load(tmp_path, base + "[console.ldap.group_roles]\n")


def test_group_dns_compare_as_the_directory_does() -> None:
    assert normalize_dn("CN=Admins, OU=Groups,DC=Court,DC=test") == \
        normalize_dn("cn=admins,ou=groups,dc=court,dc=test")
    assert normalize_dn("cn=a,dc=x") != normalize_dn("cn=b,dc=x")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that takes TCP connections and never answers: a hung directory."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.mark.parametrize("tls", ["ldaps", "starttls"])
def test_a_directory_that_never_answers_is_unavailable_not_a_hang(
    silent_server: int, tmp_path: Path, tls: str
) -> None:
    """TLS handshake (ldaps) or StartTLS answer never comes: the timeouts end the wait."""
    secret = tmp_path / "pw"
    secret.write_text("service password", encoding="utf-8")
    scheme = "ldaps" if tls == "ldaps" else "ldap"
    directory = Directory(DirectorySettings(
        url=f"{scheme}://127.0.0.1:{silent_server}", starttls=tls == "starttls",
        service_bind_dn="cn=courtguard,dc=test", service_password_file=secret,
        user_search_base="dc=test", group_roles={"cn=g,dc=test": "admin"},
        connect_timeout_s=1, timeout_s=1,
    ))
    answer = directory.authenticate("wangfang", "a password")
    assert answer.outcome == "unavailable"
    assert "a password" not in answer.detail


def test_missing_service_password_file_is_unavailable(tmp_path: Path) -> None:
    directory = Directory(DirectorySettings(
        url="ldaps://127.0.0.1:1", service_bind_dn="cn=a,dc=test",
        service_password_file=tmp_path / "absent", user_search_base="dc=test",
        group_roles={"cn=g,dc=test": "admin"},
    ))
    answer = directory.authenticate("wangfang", "a password")
    assert answer.outcome == "unavailable" and "cannot be read" in answer.detail
