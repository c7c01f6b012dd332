"""What an agent checks before it installs a release: signature first, then package, arch,
group and version; and the pure-Python .deb reader and Debian version order they rest on."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from agent.signing import Ed25519Signer, Signer, Sm2Signer
from agent.upgrade.deb import DebError, read_control
from agent.upgrade.release import ReleaseRefused, check_release
from agent.upgrade.versions import compare, debian_form, release_order, runs
from tests.agent.upgrade.debs import make_deb


@pytest.mark.parametrize(("a", "b", "order"), [
    ("0.13.0", "0.13.1", -1),
    ("0.13.1", "0.13.1", 0),
    ("0.13.10", "0.13.9", 1),
    ("0.13.1~rc1", "0.13.1", -1),
    ("0.13.1", "0.13.1-2", -1),
    ("1:0.1", "9.9", 1),
    ("0.13.1~dev3", "0.13.1~rc1", -1),   # dev before rc: ~dev < ~rc
    ("1.0a", "1.0", 1),                  # a letter after a number is a later Debian version
    ("2.0", "10.0", -1),
])
def test_versions_sort_as_dpkg_does(a: str, b: str, order: int) -> None:
    assert compare(a, b) == order
    assert compare(b, a) == -order


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed")
@pytest.mark.parametrize(("a", "b"), [("0.13.1~rc1", "0.13.1"), ("1.0-1", "1.0-10"),
                                      ("1:1.0", "2.0"), ("1.0a", "1.0+b"), ("1.0.0", "1.0")])
def test_order_agrees_with_dpkg(a: str, b: str) -> None:
    for op, expected in (("lt", compare(a, b) < 0), ("eq", compare(a, b) == 0),
                         ("gt", compare(a, b) > 0)):
        dpkg = subprocess.run(["dpkg", "--compare-versions", a, op, b], check=False)
        assert (dpkg.returncode == 0) == expected, (a, op, b)


def test_the_agents_pep440_version_meets_the_package_version() -> None:
    assert release_order("0.13.1~rc1", "0.13.1rc1") == 0
    assert release_order("0.13.1", "0.13.1rc1") == 1
    assert release_order("0.13.1~rc1", "0.13.1.dev3") == 1
    assert release_order("0.13.1", "0.13.1+unknown") == 0


def test_a_package_revision_is_the_same_agent() -> None:
    assert release_order("0.13.1-2", "0.13.1") == 0
    assert runs("0.13.1-1", "0.13.1") and not runs("0.13.2-1", "0.13.1")
    assert debian_form("0.14.0rc2") == "0.14.0~rc2"


@pytest.mark.parametrize("compression", ["gz", "xz", "none"])
def test_control_fields_are_read_without_dpkg(compression: str) -> None:
    control = read_control(make_deb("0.14.0-1", "arm64", compression=compression))
    assert (control.package, control.version, control.architecture) == (
        "courtguard-agent", "0.14.0-1", "arm64")


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")
def test_a_package_dpkg_deb_built_reads_the_same(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "opt").mkdir()
    (root / "opt" / "file").write_text("x")
    (root / "DEBIAN" / "control").write_text(
        "Package: courtguard-agent\nVersion: 2:0.14.0~rc1-3\nArchitecture: amd64\n"
        "Maintainer: t <t@example.invalid>\nDescription: t\n")
    out = tmp_path / "agent.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(out)],
                   check=True, capture_output=True)
    control = read_control(out.read_bytes())
    field = subprocess.run(["dpkg-deb", "-f", str(out), "Version"], check=True,
                           capture_output=True, text=True).stdout.strip()
    assert control.version == field == "2:0.14.0~rc1-3"


@pytest.mark.parametrize("data", [b"", b"not a deb", b"!<arch>\n", make_deb("1.0")[:200]])
def test_damaged_packages_are_refused_with_a_reason(data: bytes) -> None:
    with pytest.raises(DebError):
        read_control(data)


def test_a_deb_refusal_is_chinese_for_the_event_and_the_locale_s_for_a_command_line() -> None:
    """The tests' locale is English: the event's reason stays Chinese all the same."""
    with pytest.raises(DebError) as refused:
        read_control(b"not a deb")
    assert str(refused.value) == "不是 .deb 软件包（缺少 ar 归档头）"
    assert refused.value.localized() == "not a .deb package (no ar archive header)"


def _check(body: bytes, signature: str, public: str, *, running: str = "0.13.0",
           arch: str = "amd64", group: str = "court-a", target: str = "*",
           claimed: str | None = None) -> str:
    try:
        check_release(body, signature, public, running_version=running, architecture=arch,
                      group=group, target_group=target, claimed_algorithm=claimed)
    except ReleaseRefused as exc:
        assert exc.reason  # a reason a person can read
        return exc.code
    return "accepted"


@pytest.fixture(params=["ed25519", "sm2"])
def signer(request: pytest.FixtureRequest) -> Signer:
    return Ed25519Signer() if request.param == "ed25519" else Sm2Signer()


def test_a_good_release_is_accepted(signer: Signer) -> None:
    body = make_deb("0.14.0")
    assert _check(body, signer.sign(body), signer.public_key.text) == "accepted"
    assert _check(body, signer.sign(body), signer.public_key.text, target="court-a") == "accepted"


def test_tampered_bytes_are_refused_before_they_are_read(signer: Signer) -> None:
    body = make_deb("0.14.0")
    signature = signer.sign(body)
    tampered = body[:-10] + bytes(b ^ 0xFF for b in body[-10:])
    assert _check(tampered, signature, signer.public_key.text) == "bad_signature"
    # Garbage with the right length of signature is refused for the signature, not parsed.
    assert _check(b"garbage", signature, signer.public_key.text) == "bad_signature"


def test_another_key_is_refused(signer: Signer) -> None:
    body = make_deb("0.14.0")
    other = Ed25519Signer() if signer.public_key.algorithm == "ed25519" else Sm2Signer()
    assert _check(body, other.sign(body), signer.public_key.text) == "bad_signature"
    assert _check(body, "", signer.public_key.text) == "bad_signature"


def test_another_algorithm_claimed_is_refused() -> None:
    signer = Ed25519Signer()
    body = make_deb("0.14.0")
    assert _check(body, signer.sign(body), signer.public_key.text, claimed="sm2") == \
        "bad_signature"


@pytest.mark.parametrize(("body_args", "check_args", "code"), [
    ({"version": "0.12.9"}, {}, "older_version"),
    ({"version": "0.13.0"}, {}, "same_version"),
    ({"version": "0.13.0-7"}, {}, "same_version"),
    ({"version": "0.14.0", "architecture": "arm64"}, {}, "other_arch"),
    ({"version": "0.14.0", "package": "courtguard-collector"}, {}, "other_package"),
    ({"version": "0.14.0"}, {"target": "court-b"}, "other_group"),
    ({"version": "0.14.0", "architecture": "all"}, {}, "accepted"),
])
def test_version_arch_group_and_package_are_checked(
    body_args: dict[str, str], check_args: dict[str, str], code: str,
) -> None:
    signer = Ed25519Signer()
    body = make_deb(**body_args)
    assert _check(body, signer.sign(body), signer.public_key.text, **check_args) == code


def test_a_signed_file_that_is_not_a_package_is_malformed() -> None:
    signer = Ed25519Signer()
    body = b'{"version": 9}'  # a policy bundle's shape, signed with the same key
    assert _check(body, signer.sign(body), signer.public_key.text) == "malformed"
