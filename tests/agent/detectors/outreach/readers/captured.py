"""The bytes ``fixtures/capture.py`` recorded in a network namespace (see its docstring)."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def datagrams(name: str) -> list[bytes]:
    """The datagrams of one ``.bin`` capture (each framed by its 4-byte little-endian length)."""
    data = (FIXTURES / name).read_bytes()
    out, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack_from("<I", data, offset)
        out.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return out


#: rtnetlink headers are in the host's byte order; the captures come from x86_64.
little_endian_only = pytest.mark.skipif(
    sys.byteorder != "little", reason="rtnetlink captures are little-endian"
)
