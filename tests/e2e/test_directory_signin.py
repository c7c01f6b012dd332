"""Directory sign-on through the real console: a collector over HTTPS and a real slapd.

One slapd (StartTLS on one port, ldaps on another, a test CA) and one
collector (SQLite) serve the whole module; ``[console.ldap]`` is in the
collector.toml the collector reads. Each test signs in over HTTPS the way a
browser does (form, double-submit token, cookie) and reads the store and the
audit trail. The module's tests change the directory (group membership), and
the last one stops slapd, so they run in order.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.console.directory import Directory
from collector.console.directory_settings import OPENLDAP_LOCKED, DirectorySettings
from tests.e2e.harness import BIN, Collector, wait_until
from tests.e2e.test_console_browser import browser as chromium
from tests.e2e.test_console_browser import shot, text_of
from tests.ldap_server import (
    ADMINS,
    AUDITORS,
    GROUPS,
    LOCKED,
    PEOPLE,
    PEOPLE_ENTRIES,
    REVIEWERS,
    SERVICE_DN,
    SERVICE_PASSWORD,
    Slapd,
    require_slapd,
)

pytestmark = pytest.mark.e2e
browser = chromium  # the console browser test's Chromium fixture, under the name tests ask for

LOCAL_ADMIN = "breakglass"
LOCAL_PASSWORD = "local break-glass password"  # noqa: S105 (test data)
UNAVAILABLE = "目录服务暂不可用，请稍后再试或联系管理员。"
NO_ROLE = "您的目录账号不属于任何已授权的控制台角色组，请联系管理员开通。"
WRONG = "用户名或密码错误，或账号已停用。"


def password_of(uid: str) -> str:
    return PEOPLE_ENTRIES[uid][1]


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    require_slapd()
    server = Slapd(tmp_path_factory.mktemp("slapd"))
    server.configure()
    server.start()
    try:
        server.load()
        yield server
    finally:
        server.stop()


def directory_toml(slapd: Slapd, service_password_file: Path) -> str:
    return f"""
[console.ldap]
url = "{slapd.url}"
starttls = true
ca_file = "{slapd.ca_file}"
service_bind_dn = "{SERVICE_DN}"
service_password_file = "{service_password_file}"
user_search_base = "{PEOPLE}"
user_search_filter = "(uid={{username}})"
group_search_base = "{GROUPS}"
group_search_filter = "(member={{user_dn}})"
disabled_filter = "{OPENLDAP_LOCKED}"
connect_timeout_s = 2
timeout_s = 3

[console.ldap.group_roles]
"{ADMINS}" = "admin"
"{REVIEWERS}" = "reviewer"
"{AUDITORS}" = "auditor"
"""


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory, slapd: Slapd) -> Iterator[Collector]:
    home = tmp_path_factory.mktemp("collector")
    secret = home / "ldap-service.password"
    secret.write_text(SERVICE_PASSWORD + "\n", encoding="utf-8")
    secret.chmod(0o600)
    config = home / "collector.toml"
    config.write_text(directory_toml(slapd, secret), encoding="utf-8")
    instance = Collector(home=home, database_url=f"sqlite:///{home / 'collector.db'}")
    instance.extra_env["COURTGUARD_COLLECTOR_CONFIG"] = str(config)
    # every sign-in here comes from 127.0.0.1; the per-address throttle is not under test
    instance.extra_env["COURTGUARD_COLLECTOR_CONSOLE_LOGIN_RATE_PER_MIN"] = "1000"
    instance.init()
    made = subprocess.run(
        [str(BIN / "courtguard-collector"), "user", "create", LOCAL_ADMIN, "--role", "admin",
         "--password-stdin"],
        env=instance.env(), input=LOCAL_PASSWORD + "\n", capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert made.returncode == 0, made.stderr
    instance.start()
    yield instance
    instance.stop()


@contextlib.contextmanager
def sign_in(collector: Collector, username: str,
            password: str) -> Iterator[tuple[httpx.Response, httpx.Client]]:
    """Sign in as a browser does; the answer, and the client holding the session cookie."""
    with collector.http() as client:
        form = client.get("/console/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None, form.text
        answer = client.post("/console/login", data={
            "username": username, "password": password, "csrf": token.group(1),
        }, follow_redirects=False)
        yield answer, client


def refused(collector: Collector, username: str, password: str) -> httpx.Response:
    with sign_in(collector, username, password) as (answer, _client):
        return answer


def user_row(collector: Collector, username: str) -> Any:
    rows = collector.query("SELECT username, display_name, role, source, directory_dn, "
                           "password_hash FROM users WHERE username = :u", u=username)
    return rows[0] if rows else None


def audit_reasons(collector: Collector, username: str) -> list[tuple[str, str | None]]:
    rows = collector.query("SELECT action, reason FROM audit_log WHERE object_id = :u "
                           "ORDER BY id", u=username)
    return [(row.action, row.reason) for row in rows]


def signed_in_as(client: Any) -> str:
    page = client.get("/console/alerts")
    assert page.status_code == 200, page.text[:500]
    return page.text


def test_directory_user_signs_in_with_role_from_groups(collector: Collector) -> None:
    """A reviewer-group member signs in; a ldap row holds the directory's name, DN and role."""
    with sign_in(collector, "wangfang", password_of("wangfang")) as (answer, client):
        assert answer.status_code == 303, answer.text[:500]
        assert "wangfang" in signed_in_as(client)
    row = user_row(collector, "wangfang")
    assert (row.role, row.source, row.display_name) == ("reviewer", "ldap", "王芳")
    assert row.directory_dn == f"uid=wangfang,{PEOPLE}"
    assert not row.password_hash.startswith("$argon2")  # no local password to guess
    assert ("user.login", "ldap") in audit_reasons(collector, "wangfang")


def test_a_name_typed_in_other_case_is_the_same_user(collector: Collector) -> None:
    with sign_in(collector, "WangFang", password_of("wangfang")) as (answer, _client):
        assert answer.status_code == 303
    rows = collector.query("SELECT username FROM users WHERE lower(username) = 'wangfang'")
    assert [row.username for row in rows] == ["wangfang"]


def test_wrong_password_is_refused_and_audited(collector: Collector) -> None:
    answer = refused(collector, "zhaolei", "not-the-password")
    assert answer.status_code == 401
    assert WRONG in answer.text
    assert ("user.login_failed", "invalid") in audit_reasons(collector, "zhaolei")
    assert user_row(collector, "zhaolei") is None  # no row for a failed first attempt


def test_empty_password_is_not_an_anonymous_bind(collector: Collector) -> None:
    answer = refused(collector, "zhaolei", "")
    assert answer.status_code == 401


def test_disabled_directory_account_is_refused(collector: Collector) -> None:
    """An entry locked by ppolicy (pwdAccountLockedTime) is refused even with its password."""
    answer = refused(collector, LOCKED, password_of(LOCKED))
    assert answer.status_code == 401
    assert ("user.login_failed", "disabled") in audit_reasons(collector, LOCKED)


def test_directory_user_without_a_mapped_group_gets_a_clear_message(
    collector: Collector,
) -> None:
    answer = refused(collector, "qianjun", password_of("qianjun"))
    assert answer.status_code == 403
    assert NO_ROLE in answer.text
    assert ("user.login_failed", "no_role") in audit_reasons(collector, "qianjun")


def test_group_change_takes_effect_at_next_sign_in(collector: Collector, slapd: Slapd) -> None:
    """Moved from auditors to admins in the directory: the next sign-in is an admin's."""
    with sign_in(collector, "liqiang", password_of("liqiang")) as (first, client):
        assert first.status_code == 303
        assert client.get("/console/users").status_code == 403  # an auditor's session
    slapd.move_member("liqiang", AUDITORS, ADMINS)
    with sign_in(collector, "liqiang", password_of("liqiang")) as (second, client):
        assert second.status_code == 303
        assert client.get("/console/users").status_code == 200
    assert user_row(collector, "liqiang").role == "admin"
    assert ("user.role", "ldap groups") in audit_reasons(collector, "liqiang")
    # and out of every mapped group: refused, with the message
    slapd.modify(f"dn: {ADMINS}\nchangetype: modify\ndelete: member\n"
                 f"member: uid=liqiang,{PEOPLE}\n")
    third = refused(collector, "liqiang", password_of("liqiang"))
    assert third.status_code == 403 and NO_ROLE in third.text


def test_directory_user_cannot_use_a_local_password(collector: Collector) -> None:
    """``user passwd`` refuses a directory user: their password lives in the directory."""
    result = subprocess.run(
        [str(BIN / "courtguard-collector"), "user", "passwd", "wangfang", "--password-stdin"],
        env={**collector.env(), "LANG": "zh_CN.UTF-8", "LC_ALL": ""},
        input="a local password here\n", capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "通过目录服务登录" in result.stderr
    assert "Traceback" not in result.stderr


def test_wrong_ca_makes_the_directory_unavailable(slapd: Slapd, tmp_path: Path) -> None:
    """TLS is verified: a directory whose certificate is not from the configured CA is refused."""
    from collector.tls import ensure_tls

    ensure_tls(tmp_path / "other")
    secret = tmp_path / "pw"
    secret.write_text(SERVICE_PASSWORD, encoding="utf-8")
    directory = Directory(DirectorySettings(
        url=slapd.ldaps_url, ca_file=tmp_path / "other" / "ca.pem", service_bind_dn=SERVICE_DN,
        service_password_file=secret, user_search_base=PEOPLE,
        group_roles={REVIEWERS: "reviewer"},
    ))
    assert directory.authenticate("wangfang", password_of("wangfang")).outcome == "unavailable"


def test_direct_bind_over_ldaps_reads_groups_as_the_user(slapd: Slapd) -> None:
    """bind_dn_template over ldaps://: no service account; the user's bind reads the groups."""
    directory = Directory(DirectorySettings(
        url=slapd.ldaps_url, ca_file=slapd.ca_file, bind_dn_template=f"uid={{username}},{PEOPLE}",
        group_search_base=GROUPS, group_roles={ADMINS: "admin", REVIEWERS: "reviewer"},
        disabled_filter=OPENLDAP_LOCKED,
    ))
    good = directory.authenticate("wangfang", password_of("wangfang"))
    assert (good.outcome, good.role, good.display_name) == ("ok", "reviewer", "王芳")
    assert directory.authenticate("wangfang", "wrong").outcome == "invalid"
    assert directory.authenticate(LOCKED, password_of(LOCKED)).outcome == "disabled"
    assert directory.authenticate("nobody,ou=x", "whatever").outcome == "invalid"


def test_groups_from_member_of_as_active_directory_keeps_them(slapd: Slapd,
                                                               tmp_path: Path) -> None:
    """Without group_search_base the entry's memberOf decides (slapd's memberof overlay)."""
    secret = tmp_path / "pw"
    secret.write_text(SERVICE_PASSWORD, encoding="utf-8")
    directory = Directory(DirectorySettings(
        url=slapd.url, starttls=True, ca_file=slapd.ca_file, service_bind_dn=SERVICE_DN,
        service_password_file=secret, user_search_base=PEOPLE,
        group_roles={ADMINS.upper(): "admin", REVIEWERS: "reviewer"},
    ))
    answer = directory.authenticate("zhaolei", password_of("zhaolei"))
    assert (answer.outcome, answer.role) == ("ok", "admin")  # DNs compared case-insensitively
    assert directory.authenticate("qianjun", password_of("qianjun")).outcome == "no_role"


def test_directory_down_message_in_a_browser(
    collector: Collector, slapd: Slapd, browser: Any
) -> None:
    """Chromium shows the directory message on the sign-in page, in Chinese, as an alert."""
    from selenium.webdriver.common.by import By

    slapd.stop()
    try:
        browser.get(f"{collector.url}/console/login")
        browser.find_element(By.ID, "username").send_keys("wangfang")
        browser.find_element(By.ID, "password").send_keys(password_of("wangfang"))
        browser.find_element(By.ID, "login").click()
        message = wait_until(lambda: text_of(browser, "login-error"), 30,
                             "the sign-in page to show why")
        assert message == UNAVAILABLE
        assert "/console/login" in browser.current_url
        shot(browser, "directory-unavailable")
    finally:
        slapd.start()


def test_directory_down_local_admin_still_signs_in(collector: Collector, slapd: Slapd) -> None:
    """slapd stopped: the local break-glass admin signs in; a directory user gets the message."""
    slapd.stop()
    try:
        answer = refused(collector, "wangfang", password_of("wangfang"))
        assert answer.status_code == 503
        assert UNAVAILABLE in answer.text
        assert ("user.login_failed", "unavailable") in audit_reasons(collector, "wangfang")
        with sign_in(collector, LOCAL_ADMIN, LOCAL_PASSWORD) as (local, client):
            assert local.status_code == 303
            assert client.get("/console/users").status_code == 200
    finally:
        slapd.start()
