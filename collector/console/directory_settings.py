"""``[console.ldap]`` in collector.toml: how the console reaches the court's directory.

Kept apart from ``directory.py`` so reading settings never imports the LDAP
client. See docs/console.md, "Directory sign-on".
"""

from __future__ import annotations

from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: OpenLDAP's ppolicy lock and Active Directory's ACCOUNTDISABLE bit, for the docs and tests.
OPENLDAP_LOCKED = "(pwdAccountLockedTime=*)"
AD_DISABLED = "(userAccountControl:1.2.840.113556.1.4.803:=2)"


class DirectorySettings(BaseModel):
    """One LDAP / Active Directory server (or a DNS name several answer to)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: ``ldaps://host:636`` or ``ldap://host:389`` with ``starttls = true``; never plain text.
    url: str
    starttls: bool = False
    #: The court CA's certificate (PEM) the directory's certificate must chain to; empty:
    #: the system's trust store.
    ca_file: Path | None = None

    #: Direct bind: the user's DN made from the name typed, e.g.
    #: ``uid={username},ou=people,dc=court,dc=cn``. Or search (below), which AD needs.
    bind_dn_template: str | None = None
    #: Search: a service account finds the user's entry, then the user binds as it.
    service_bind_dn: str | None = None
    #: File holding the service account's password (one line; mode 0600, owner courtguard).
    service_password_file: Path | None = None
    user_search_base: str | None = None
    #: ``{username}`` is the name typed, escaped; AD: ``(sAMAccountName={username})``.
    user_search_filter: str = "(uid={username})"

    #: Groups: searched under this base with ``group_search_filter`` (``{user_dn}`` and
    #: ``{username}`` escaped), or, when empty, the user entry's ``memberOf`` values.
    group_search_base: str | None = None
    group_search_filter: str = "(member={user_dn})"
    #: Group DN → console role; the first group in this table the user belongs to decides.
    group_roles: dict[str, str] = Field(min_length=1)

    #: An entry matching this filter is refused as disabled. OpenLDAP with ppolicy:
    #: ``(pwdAccountLockedTime=*)``; Active Directory:
    #: ``(userAccountControl:1.2.840.113556.1.4.803:=2)``. Empty: only the bind decides.
    disabled_filter: str | None = None
    #: Attributes tried in turn for the name the console shows.
    display_name_attributes: list[str] = Field(default_factory=lambda: ["displayName", "cn"])

    #: Seconds to open the connection (TCP and TLS), and whole seconds to wait for each
    #: answer (ldap3 sets the socket's receive timeout in whole seconds).
    connect_timeout_s: float = Field(default=3.0, gt=0, le=60)
    timeout_s: int = Field(default=5, ge=1, le=60)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        parts = urlsplit(self.url)
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise ValueError("url must be ldaps://host[:port] or ldap://host[:port]")
        if parts.scheme == "ldaps" and self.starttls:
            raise ValueError("starttls is for ldap:// URLs; ldaps:// is TLS already")
        if parts.scheme == "ldap" and not self.starttls:
            raise ValueError("passwords never cross the network in clear: use ldaps:// "
                             "or set starttls = true")
        search = (self.service_bind_dn, self.service_password_file, self.user_search_base)
        if self.bind_dn_template is not None:
            if any(value is not None for value in search):
                raise ValueError("give either bind_dn_template or the service account and "
                                 "user_search_base, not both")
            if "{username}" not in self.bind_dn_template:
                raise ValueError("bind_dn_template must contain {username}")
        elif any(value is None for value in search):
            raise ValueError("give bind_dn_template, or service_bind_dn, "
                             "service_password_file and user_search_base")
        if "{username}" not in self.user_search_filter:
            raise ValueError("user_search_filter must contain {username}")
        from collector.console.users import ROLES

        for group, role in self.group_roles.items():
            if role not in ROLES:
                raise ValueError(f"group_roles: {group!r} maps to {role!r}, which is not one "
                                 f"of {', '.join(ROLES)}")
        return self

    @property
    def use_ssl(self) -> bool:
        return urlsplit(self.url).scheme == "ldaps"


class ConsoleSettings(BaseModel):
    """``[console]``: settings of the console that are tables rather than single values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The directory users sign in with; None: local accounts only.
    ldap: DirectorySettings | None = None
