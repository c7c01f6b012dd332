"""Proxy settings read from environment, apt, wget, dconf keyfiles and KDE files."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from agent.detectors.outreach.readers.host_settings import (
    ProxyWatch,
    forwarding_interfaces,
    proxy_settings,
    signature,
)


def test_every_kind_of_proxy_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "environment").write_text(
        '# https_proxy=http://commented.out:1\nexport HTTPS_PROXY="http://203.0.113.8:3128"\n'
    )
    (tmp_path / "apt").write_text('Acquire::http::Proxy "http://198.51.100.9:3142";\n')
    (tmp_path / "dconf").write_text(
        "[org/gnome/desktop/interface]\nhost='not-a-proxy'\n"
        "[system/proxy/http]\nhost='proxy.example.net'\nport=8080\n"
    )
    (tmp_path / "kioslaverc").write_text("[Proxy Settings]\nhttpProxy=http://192.0.2.7 8080\n")
    found = {(Path(p.origin).name, p.variable, p.value) for p in proxy_settings([tmp_path])}
    assert found == {
        ("environment", "HTTPS_PROXY", "http://203.0.113.8:3128"),
        ("apt", "Acquire::http::Proxy", "http://198.51.100.9:3142"),
        ("dconf", "system/proxy/http/host", "proxy.example.net"),
        ("kioslaverc", "httpProxy", "http://192.0.2.7"),
    }


def test_signature_changes_when_a_file_does(tmp_path: Path) -> None:
    path = tmp_path / "environment"
    path.write_text("")
    before = signature([tmp_path])
    path.write_text("http_proxy=http://203.0.113.8:3128\n")
    assert signature([tmp_path]) != before


def test_interfaces_forwarding_on_their_own_are_listed(tmp_path: Path) -> None:
    """Per-interface forwarding is read; all, default and lo are not interfaces that share."""
    for name, value in {"all": "1", "default": "1", "lo": "1", "eth0": "1", "usb0": "1",
                        "wlan0": "0"}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "forwarding").write_text(value + "\n")
    assert forwarding_interfaces(tmp_path) == ["eth0", "usb0"]
    assert forwarding_interfaces(tmp_path / "missing") == []


def test_proxy_watch_wakes_on_a_write_to_a_watched_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """inotify: a write to a proxy file, or a new file in a proxy directory, calls ``changed``."""
    import agent.detectors.outreach.readers.host_settings as host_settings

    environment = tmp_path / "environment"
    environment.write_text("")
    profile_d = tmp_path / "profile.d"
    profile_d.mkdir()
    monkeypatch.setattr(host_settings, "PROXY_PATHS", (environment, profile_d))
    monkeypatch.setattr(host_settings, "PROXY_GLOBS", ())
    monkeypatch.setattr(host_settings, "PROXY_PARENT_GLOBS", ())
    woken = threading.Event()
    watch = ProxyWatch(woken.set)
    assert watch.start()
    try:
        environment.write_text("http_proxy=http://203.0.113.8:3128\n")
        assert woken.wait(20), "no inotify event for the write"
        woken.clear()
        (profile_d / "proxy.sh").write_text("export https_proxy=http://203.0.113.9:1\n")
        assert woken.wait(20), "no inotify event for the new file"
    finally:
        watch.stop()
