"""Signing console users in against the court's LDAP / Active Directory (ldap3).

ldap3 rather than python-ldap: it is pure Python (no libldap headers or C
build on the collector's servers, a plain wheel in the venv), and it has the
connect and receive timeouts that keep a dead directory from hanging the
sign-in page. See docs/console.md, "Directory sign-on".

``Directory.authenticate`` answers with one of ``ok``, ``invalid`` (no such
entry, several, or the password refused), ``disabled`` (the entry matches
``disabled_filter``), ``no_role`` (no group of the entry is mapped to a role)
or ``unavailable`` (the directory cannot be reached or refuses the service
account). It never raises for the directory's behaviour and never logs a
password.
"""

from __future__ import annotations

import contextlib
import ssl
import warnings
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import structlog

with warnings.catch_warnings():
    # ldap3 2.9.1 imports pyasn1's old names (tagMap, typeMap), which pyasn1 0.6 still
    # serves but warns about; the warning says nothing a court's operator can act on.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="pyasn1")
    warnings.filterwarnings("ignore", message=".* is deprecated. Please use .* instead")
    from ldap3 import BASE, NONE, SUBTREE, Connection, Server, Tls
    from ldap3.core.exceptions import LDAPException
    from ldap3.utils.conv import escape_filter_chars
    from ldap3.utils.dn import escape_rdn, parse_dn

from collector.console.directory_settings import DirectorySettings

log = structlog.get_logger("collector.console.directory")

Outcome = Literal["ok", "invalid", "disabled", "no_role", "unavailable"]
#: LDAP result codes that mean the server, not the credentials, is the problem.
_SERVER_TROUBLE: Final = frozenset({51, 52, 80})  # busy, unavailable, other
_INVALID_CREDENTIALS: Final = 49


@dataclass(frozen=True)
class DirectoryAnswer:
    outcome: Outcome
    dn: str = ""
    display_name: str = ""
    role: str | None = None
    groups: tuple[str, ...] = field(default_factory=tuple)
    #: Why, for the log and the audit trail (never a password).
    detail: str = ""


class _Unavailable(Exception):
    """The directory could not be asked (connection, TLS, service account, timeout)."""


def normalize_dn(dn: str) -> str:
    """A DN compared the way the directory does: attribute names and values case-folded."""
    try:
        parts = parse_dn(dn, escape=False, strip=True)
    except LDAPException:
        return dn.strip().lower()
    return ",".join(f"{name.lower()}={value.lower()}" for name, value, _sep in parts)


def _values(attributes: dict[str, Any], name: str) -> list[str]:
    for key, value in attributes.items():
        if key.lower() == name.lower():
            if isinstance(value, list | tuple):
                return [str(v) for v in value]
            return [str(value)] if value not in (None, "") else []
    return []


class Directory:
    """One configured directory; each call opens its own connections (no shared state)."""

    def __init__(self, settings: DirectorySettings) -> None:
        self.settings = settings
        self.role_of_group = [(normalize_dn(g), role) for g, role in settings.group_roles.items()]
        tls = Tls(
            ca_certs_file=str(settings.ca_file) if settings.ca_file else None,
            validate=ssl.CERT_REQUIRED,
            version=ssl.PROTOCOL_TLS_CLIENT,
        )
        self.server = Server(settings.url, use_ssl=settings.use_ssl, tls=tls, get_info=NONE,
                             connect_timeout=settings.connect_timeout_s)

    # -- connections --------------------------------------------------------------------

    def _connect(self, dn: str, password: str) -> tuple[Connection, bool]:
        """A connection bound as ``dn`` (or refused: False), over TLS; _Unavailable if none."""
        conn = Connection(self.server, user=dn, password=password, read_only=True,
                          receive_timeout=self.settings.timeout_s, auto_referrals=False,
                          raise_exceptions=False)
        try:
            conn.open()
            if self.settings.starttls and not conn.start_tls():
                raise _Unavailable(f"StartTLS refused: {conn.result.get('description')}")
            if conn.bind():
                return conn, True
        except LDAPException as exc:
            self._close(conn)
            raise _Unavailable(f"{type(exc).__name__}: {exc}") from exc
        code = (conn.result or {}).get("result")
        self._close(conn)
        if code in _SERVER_TROUBLE or code is None:
            raise _Unavailable(f"bind answered {code} {(conn.result or {}).get('description')}")
        if code != _INVALID_CREDENTIALS:
            log.warning("directory refused a bind", dn=dn, result=code,
                        description=(conn.result or {}).get("description"))
        return conn, False

    @staticmethod
    def _close(conn: Connection) -> None:
        with contextlib.suppress(LDAPException, OSError):
            conn.unbind()

    def _search(self, conn: Connection, base: str, query: str, scope: Any,
                attributes: list[str], limit: int = 0) -> list[dict[str, Any]]:
        try:
            conn.search(base, query, search_scope=scope, attributes=attributes,
                        size_limit=limit, time_limit=self.settings.timeout_s)
        except LDAPException as exc:
            raise _Unavailable(f"search failed: {type(exc).__name__}: {exc}") from exc
        code = (conn.result or {}).get("result")
        if code not in (0, 4, 32):  # success, sizeLimitExceeded, noSuchObject
            raise _Unavailable(f"search of {base} answered {code} "
                               f"{(conn.result or {}).get('description')}")
        return [item for item in conn.response or [] if item.get("type") == "searchResEntry"]

    # -- sign-in ------------------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> DirectoryAnswer:
        if not password:  # an empty password is an anonymous bind, which LDAP lets through
            return DirectoryAnswer("invalid", detail="empty password")
        try:
            return self._authenticate(username, password)
        except _Unavailable as exc:
            log.warning("directory unavailable", url=self.settings.url, reason=str(exc))
            return DirectoryAnswer("unavailable", detail=str(exc)[:200])

    def _attributes(self) -> list[str]:
        wanted = list(self.settings.display_name_attributes)
        if self.settings.group_search_base is None:
            wanted.append("memberOf")
        return wanted

    def _authenticate(self, username: str, password: str) -> DirectoryAnswer:
        s = self.settings
        if s.bind_dn_template is not None:
            dn = s.bind_dn_template.format(username=escape_rdn(username))
            conn, bound = self._connect(dn, password)
            if not bound:
                return DirectoryAnswer("invalid", dn=dn, detail="password refused")
            lookup = conn
        else:
            service_password = self._service_password()
            lookup, bound = self._connect(s.service_bind_dn or "", service_password)
            if not bound:
                raise _Unavailable("the service account's bind was refused")
        try:
            return self._check(lookup, username, password,
                               s.bind_dn_template is not None)
        finally:
            self._close(lookup)

    def _check(self, lookup: Connection, username: str, password: str,
               bound_as_user: bool) -> DirectoryAnswer:
        s = self.settings
        if bound_as_user:
            dn = str(lookup.user)
            found = self._search(lookup, dn, "(objectClass=*)", BASE, self._attributes())
        else:
            query = s.user_search_filter.format(username=escape_filter_chars(username))
            found = self._search(lookup, s.user_search_base or "", query, SUBTREE,
                                 self._attributes(), limit=2)
            if len(found) != 1:
                return DirectoryAnswer("invalid", detail=f"{len(found)} entries match")
        dn = str(found[0]["dn"]) if found else str(lookup.user)
        attributes: dict[str, Any] = dict(found[0].get("attributes") or {}) if found else {}
        if s.disabled_filter and self._search(lookup, dn, s.disabled_filter, BASE, []):
            return DirectoryAnswer("disabled", dn=dn, detail=f"matches {s.disabled_filter}")
        if not bound_as_user:
            user_conn, bound = self._connect(dn, password)
            if not bound:
                return DirectoryAnswer("invalid", dn=dn, detail="password refused")
            self._close(user_conn)
        display = next((v for a in s.display_name_attributes for v in _values(attributes, a)),
                       "")
        groups = self._groups(lookup, dn, username, attributes)
        normalized = {normalize_dn(g) for g in groups}
        role = next((r for group, r in self.role_of_group if group in normalized), None)
        if role is None:
            return DirectoryAnswer("no_role", dn=dn, display_name=display, groups=tuple(groups),
                                   detail="no group of the entry is in group_roles")
        return DirectoryAnswer("ok", dn=dn, display_name=display, role=role,
                               groups=tuple(groups))

    def _groups(self, conn: Connection, dn: str, username: str,
                attributes: dict[str, Any]) -> list[str]:
        s = self.settings
        if s.group_search_base is None:
            return _values(attributes, "memberOf")
        query = s.group_search_filter.format(user_dn=escape_filter_chars(dn),
                                             username=escape_filter_chars(username))
        return [str(item["dn"]) for item in
                self._search(conn, s.group_search_base, query, SUBTREE, [])]

    def _service_password(self) -> str:
        path = self.settings.service_password_file
        try:
            return path.read_text(encoding="utf-8").strip() if path else ""
        except (OSError, UnicodeDecodeError) as exc:
            raise _Unavailable(f"service_password_file {path} cannot be read: {exc}") from exc
