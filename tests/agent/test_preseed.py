"""The preseed file: its keys, its permissions, and the clear errors when either is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.preseed import read_preseed

TOKEN = "cgt_preseed-token-0123456789"  # noqa: S105 (a made-up test token)
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_reads_every_key(tmp_path: Path) -> None:
    """collector_url, ca_file, token, group and note are read as written."""
    preseed = read_preseed(write(tmp_path / "enroll.toml", f'''
collector_url = "https://collector.test:8443"
ca_file = "/etc/courtguard/collector-ca.pem"
token = "{TOKEN}"
group = "civil"
note = "building B"
'''))
    assert (preseed.collector_url, preseed.group, preseed.note) == (
        "https://collector.test:8443", "civil", "building B")
    assert preseed.ca_file == Path("/etc/courtguard/collector-ca.pem")


def test_token_not_in_repr(tmp_path: Path) -> None:
    """The token never reaches a log line through the model's text."""
    preseed = read_preseed(write(tmp_path / "enroll.toml",
                                 f'collector_url = "https://c.test"\ntoken = "{TOKEN}"\n'))
    assert TOKEN not in repr(preseed) and TOKEN not in str(preseed)


def test_readable_by_others_is_refused(tmp_path: Path) -> None:
    """A token file others can read is refused with the chmod that fixes it."""
    path = write(tmp_path / "enroll.toml", f'collector_url = "https://c.test"\ntoken = "{TOKEN}"\n',
                 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_preseed(path)


def test_both_ca_keys_refused(tmp_path: Path) -> None:
    """ca_file and ca_pem together are ambiguous."""
    path = write(tmp_path / "enroll.toml", f'collector_url = "https://c.test"\ntoken = "{TOKEN}"\n'
                 f'ca_file = "/x.pem"\nca_pem = """{PEM}"""\n')
    with pytest.raises(ConfigError, match="ca_file or ca_pem, not both"):
        read_preseed(path)


def test_unknown_key_named(tmp_path: Path) -> None:
    """A misspelt key is named, with the keys allowed."""
    path = write(tmp_path / "enroll.toml", f'collector = "https://c.test"\ntoken = "{TOKEN}"\n')
    with pytest.raises(ConfigError, match=r"collector.*Allowed keys: collector_url"):
        read_preseed(path)


def test_not_toml(tmp_path: Path) -> None:
    """A broken file says it is not TOML."""
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_preseed(write(tmp_path / "enroll.toml", "collector_url = \n"))


def test_a_chinese_locale_reads_the_refusals_in_chinese(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The preseed refusals reach a person through `run`'s stderr, in the locale's language."""
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    path = write(tmp_path / "enroll.toml", f'collector_url = "https://c.test"\ntoken = "{TOKEN}"\n',
                 0o644)
    with pytest.raises(ConfigError, match=r"可被其他用户读取（权限 0644）；请运行：chmod 600 "):
        read_preseed(path)
    path.chmod(0o600)
    path.write_text(f'collector = "https://c.test"\ntoken = "{TOKEN}"\n')
    with pytest.raises(ConfigError, match=r"无效：.*允许的配置项：collector_url"):
        read_preseed(path)
    with pytest.raises(ConfigError, match="不是有效的 TOML"):
        read_preseed(write(path, "collector_url = \n"))
