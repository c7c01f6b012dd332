"""Capabilities: CapEff parsing and what counts as missing."""

from __future__ import annotations

from pathlib import Path

from agent.capabilities import CAPABILITY_BITS, effective, missing, parse_capeff

STATUS = (
    "Name:\tcourtguard\nCapInh:\t0000000000000000\nCapEff:\t{mask}\nCapBnd:\t000001ffffffffff\n"
)


def test_capeff_bits_become_names() -> None:
    """NET_ADMIN (12), NET_RAW (13) and AUDIT_READ (37) are read from their bits."""
    mask = (1 << 12) | (1 << 13) | (1 << 37)
    assert parse_capeff(STATUS.format(mask=f"{mask:016x}")) == {
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_AUDIT_READ",
    }


def test_no_capeff_line_means_no_capabilities() -> None:
    """A status text without CapEff yields the empty set."""
    assert parse_capeff("Name:\tx\n") == frozenset()


def test_full_mask_holds_every_known_capability() -> None:
    """A root process with every bit set holds every name in the table."""
    assert parse_capeff(STATUS.format(mask="000001ffffffffff")) == set(CAPABILITY_BITS)


def test_unreadable_status_means_no_capabilities(tmp_path: Path) -> None:
    """When /proc cannot be read the process is treated as holding nothing."""
    assert effective(tmp_path / "missing") == frozenset()


def test_effective_reads_the_given_file(tmp_path: Path) -> None:
    """effective() parses the status file it is pointed at."""
    status = tmp_path / "status"
    status.write_text(STATUS.format(mask=f"{1 << 2:016x}"))
    assert effective(status) == {"CAP_DAC_READ_SEARCH"}


def test_missing_lists_unheld_and_unknown_names_sorted() -> None:
    """missing() returns required names not held, unknown ones included, sorted."""
    held = frozenset({"CAP_NET_RAW"})
    assert missing(["CAP_SYS_PTRACE", "CAP_NET_RAW", "CAP_MADE_UP"], held) == [
        "CAP_MADE_UP",
        "CAP_SYS_PTRACE",
    ]
