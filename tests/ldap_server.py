"""A real OpenLDAP ``slapd`` for directory sign-on tests, on loopback ports of its own.

``Slapd`` writes a ``slapd.conf`` (mdb database ``dc=court,dc=test``, the
ppolicy and memberof overlays, TLS with a test CA made by ``collector.tls``), starts slapd in
the foreground in its own process group, waits until it answers a StartTLS
search (polling, no fixed sleep), and loads people, groups and a service
account with ``ldapadd`` over StartTLS. ``ldapmodify`` changes them while the
test runs. Without slapd or ldap-utils the tests skip, except on CI
(``CI=true``), where they fail: scripts/test.sh installs the Debian packages
``slapd`` and ``ldap-utils``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from collector.tls import ensure_tls
from tests.e2e.harness import free_port

SUFFIX = "dc=court,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret-for-tests"  # noqa: S105 (test data)
SERVICE_DN = f"cn=courtguard,ou=services,{SUFFIX}"
SERVICE_PASSWORD = "service-secret-for-tests"  # noqa: S105 (test data)
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
ADMINS = f"cn=courtguard-admins,{GROUPS}"
REVIEWERS = f"cn=courtguard-reviewers,{GROUPS}"
AUDITORS = f"cn=courtguard-auditors,{GROUPS}"
OTHERS = f"cn=canteen,{GROUPS}"
#: A ceiling only a hung start reaches, however loaded the machine.
START_CEILING_S = 120.0

#: uid → (display name, password, groups). ``sun`` is locked with ppolicy's attribute.
PEOPLE_ENTRIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "wangfang": ("王芳", "wang-directory-pass", (REVIEWERS,)),
    "zhaolei": ("赵磊", "zhao-directory-pass", (ADMINS,)),
    "sunli": ("孙丽", "sun-directory-pass", (REVIEWERS,)),
    "qianjun": ("钱军", "qian-directory-pass", (OTHERS,)),
    "liqiang": ("李强", "li-directory-pass", (AUDITORS,)),
}
LOCKED = "sunli"


def dn_of(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def require_slapd() -> None:
    """Skip without slapd and the ldap-utils tools, except on CI, where that fails."""
    missing = [name for name, path in (("slapd", "/usr/sbin/slapd"),
                                       ("ldapadd", shutil.which("ldapadd")),
                                       ("ldapmodify", shutil.which("ldapmodify")))
               if not path or not Path(path).exists()]
    if missing:
        reason = (f"needs {', '.join(missing)} (Debian packages slapd and ldap-utils; "
                  "scripts/test.sh installs them)")
        if os.environ.get("CI") == "true":
            pytest.fail(f"on CI: {reason}")
        pytest.skip(reason)


def _base_ldif() -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: court\no: court",
        f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people",
        f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups",
        f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services",
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: courtguard\nuserPassword: {SERVICE_PASSWORD}",
    ]
    for uid, (name, password, _groups) in PEOPLE_ENTRIES.items():
        entries.append(
            f"dn: {dn_of(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\n"
            f"sn: {uid}\ndisplayName: {name}\nuserPassword: {password}"
        )
    for group in (ADMINS, REVIEWERS, AUDITORS, OTHERS):
        # groupOfNames needs a member even when a test moves every person out
        members = [SERVICE_DN, *(dn_of(uid) for uid, (_n, _p, groups) in PEOPLE_ENTRIES.items()
                                 if group in groups)]
        cn = group.split(",")[0].split("=")[1]
        lines = "\n".join(f"member: {member}" for member in members)
        entries.append(f"dn: {group}\nobjectClass: groupOfNames\ncn: {cn}\n{lines}")
    return "\n\n".join(entries) + "\n"


@dataclass
class Slapd:
    home: Path
    port: int = field(default_factory=free_port)  # ldap:// with StartTLS
    tls_port: int = field(default_factory=free_port)  # ldaps://
    process: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> Path:
        return self.home / "tls" / "ca.pem"

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def log_file(self) -> Path:
        return self.home / "slapd.log"

    def configure(self) -> None:
        (self.home / "db").mkdir(parents=True, exist_ok=True)
        ensure_tls(self.home / "tls")
        tls = self.home / "tls"
        (self.home / "slapd.conf").write_text(f"""\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
moduleload memberof
pidfile {self.home}/slapd.pid
TLSCACertificateFile {tls}/ca.pem
TLSCertificateFile {tls}/server.pem
TLSCertificateKeyFile {tls}/server.key
database mdb
maxsize 67108864
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PASSWORD}
directory {self.home}/db
overlay ppolicy
overlay memberof
access to attrs=userPassword
  by self write
  by anonymous auth
  by * none
access to dn.subtree="{GROUPS}"
  by users read
  by * none
access to *
  by dn.exact="{SERVICE_DN}" read
  by self read
  by * none
""", encoding="utf-8")

    def env(self) -> dict[str, str]:
        return {**os.environ, "LDAPTLS_CACERT": str(self.ca_file), "LDAPTLS_REQCERT": "demand"}

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                ["/usr/sbin/slapd", "-d", "0", "-f", str(self.home / "slapd.conf"),
                 "-h", f"{self.url}/ {self.ldaps_url}/"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + START_CEILING_S
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"slapd exited with {self.process.returncode}:\n"
                                     f"{self.log_file.read_text(errors='replace')[-3000:]}")
            probe = subprocess.run(
                ["ldapsearch", "-x", "-ZZ", "-H", self.url, "-D", ROOT_DN, "-w",
                 ROOT_PASSWORD, "-b", "", "-s", "base", "-o", "nettimeout=2", "1.1"],
                env=self.env(), capture_output=True, check=False, timeout=30,
            )
            if probe.returncode == 0:
                return
            assert time.monotonic() < deadline, f"slapd did not answer: {probe.stderr!r}"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def _tool(self, tool: str, ldif: str) -> None:
        result = subprocess.run(
            [tool, "-x", "-ZZ", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
            input=ldif.encode(), env=self.env(), capture_output=True, check=False, timeout=60,
        )
        assert result.returncode == 0, f"{tool} failed: {result.stderr.decode(errors='replace')}"

    def load(self) -> None:
        self._tool("ldapadd", _base_ldif())
        self.modify(f"dn: {dn_of(LOCKED)}\nchangetype: modify\n"
                    "add: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n")

    def modify(self, ldif: str) -> None:
        self._tool("ldapmodify", ldif)

    def move_member(self, uid: str, old_group: str, new_group: str) -> None:
        self.modify(
            f"dn: {old_group}\nchangetype: modify\ndelete: member\nmember: {dn_of(uid)}\n\n"
            f"dn: {new_group}\nchangetype: modify\nadd: member\nmember: {dn_of(uid)}\n"
        )
