"""The language ``courtguard-agent`` and ``courtguard-collector`` speak, from gettext catalogues.

A command line follows the locale: Simplified Chinese where ``LC_ALL``, else
``LC_MESSAGES``, else ``LANG`` (the POSIX order) starts with ``zh``, English
otherwise. English is the msgid, so English needs no catalogue. The console
and alerts keep their own default (Chinese) and do not come through here.

Sources are ``<package>/locale/zh_CN/LC_MESSAGES/<domain>.po``; the ``.mo``
beside each is committed (no build step, no gettext tools on a build machine)
and ``tests/test_i18n.py`` checks it is what ``compile_po`` makes of the
``.po``. ``python -m agent.i18n`` rebuilds them after a ``.po`` changes.
"""

from __future__ import annotations

import argparse
import ast
import gettext
import os
import struct
import sys
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Final

LOCALE_VARIABLES: Final = ("LC_ALL", "LC_MESSAGES", "LANG")
CHINESE: Final = "zh_CN"


def cli_language(environ: Mapping[str, str] | None = None) -> str:
    """``zh_CN`` where the first set locale variable starts with ``zh``, else ``en``."""
    env = os.environ if environ is None else environ
    for name in LOCALE_VARIABLES:
        value = env.get(name, "")
        if value:
            return CHINESE if value.lower().startswith("zh") else "en"
    return "en"


@lru_cache(maxsize=8)
def _translations(domain: str, localedir: str, language: str) -> gettext.NullTranslations:
    if language == "en":
        return gettext.NullTranslations()
    return gettext.translation(domain, localedir, languages=[language], fallback=True)


class Catalogue:
    """One gettext domain: ``gettext`` looks the language up on every call, so it follows
    the environment of the moment (tests run both languages in one process)."""

    def __init__(self, domain: str, package_dir: Path) -> None:
        self.domain = domain
        self.localedir = package_dir / "locale"

    def po_path(self, language: str = CHINESE) -> Path:
        return self.localedir / language / "LC_MESSAGES" / f"{self.domain}.po"

    def translations(self) -> gettext.NullTranslations:
        return _translations(self.domain, str(self.localedir), cli_language())

    def gettext(self, message: str) -> str:
        return self.translations().gettext(message)

    def chinese(self, message: str) -> str:
        """``message`` in Chinese whatever the locale: for text that also goes into an event,
        which Chinese reviewers read wherever the agent runs."""
        return _translations(self.domain, str(self.localedir), CHINESE).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations().ngettext(singular, plural, n)

    def speak_for_argparse(self) -> None:
        """Route argparse's own words (usage, options, its errors) through this catalogue.

        argparse looks up its strings through its module-level ``_`` and ``ngettext``
        at the moment it formats them; a command line is one process with one
        catalogue, so pointing them here is the whole change.
        """
        setattr(argparse, "_", self.gettext)  # noqa: B010 (a module global, not an attribute)
        setattr(argparse, "ngettext", self.ngettext)  # noqa: B010 (the same: a module global)


# -- catalogue sources -----------------------------------------------------------------------


def _unquote(text: str) -> str:
    return str(ast.literal_eval(text))


def parse_po(text: str) -> dict[str, str]:
    """msgid -> msgstr of a .po file (header included as ``""``; fuzzy entries left out)."""
    entries: dict[str, str] = {}
    msgid: list[str] = []
    msgstr: list[str] = []
    current: list[str] | None = None
    fuzzy = False

    def flush() -> None:
        nonlocal fuzzy
        if current is not None and not fuzzy:
            entries["".join(msgid)] = "".join(msgstr)
        msgid.clear()
        msgstr.clear()
        fuzzy = False

    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#,") and "fuzzy" in line:
            if current is msgstr:
                flush()
                current = None
            fuzzy = True
        elif not line or line.startswith("#"):
            continue
        elif line.startswith("msgid "):
            if current is msgstr:
                flush()
            current = msgid
            msgid.append(_unquote(line[6:]))
        elif line.startswith("msgstr "):
            current = msgstr
            msgstr.append(_unquote(line[7:]))
        elif line.startswith('"') and current is not None:
            current.append(_unquote(line))
        else:
            raise ValueError(f"unexpected line in .po: {raw!r}")
    if current is msgstr:
        flush()
    return entries


def compile_po(text: str) -> bytes:
    """The GNU .mo bytes of a .po file's translated entries, keys sorted, as msgfmt writes."""
    entries = {k: v for k, v in parse_po(text).items() if v}
    keys = sorted(entries)
    ids = b""
    strs = b""
    offsets: list[tuple[int, int, int, int]] = []
    for key in keys:
        encoded_id, encoded_str = key.encode(), entries[key].encode()
        offsets.append((len(ids), len(encoded_id), len(strs), len(encoded_str)))
        ids += encoded_id + b"\0"
        strs += encoded_str + b"\0"
    count = len(keys)
    key_start = 7 * 4 + 16 * count
    value_start = key_start + len(ids)
    key_table: list[int] = []
    value_table: list[int] = []
    for id_offset, id_len, str_offset, str_len in offsets:
        key_table += [id_len, key_start + id_offset]
        value_table += [str_len, value_start + str_offset]
    header = struct.pack("Iiiiiii", 0x950412DE, 0, count, 7 * 4, 7 * 4 + count * 8, 0, 0)
    tables = struct.pack(f"{len(key_table)}i", *key_table)
    tables += struct.pack(f"{len(value_table)}i", *value_table)
    return header + tables + ids + strs


def N_(message: str) -> str:
    """Mark a constant for the catalogue without translating it yet.

    The constant stays its English msgid; the call site translates it when it prints,
    ``_(messages.X)``, so the language is the one of that moment.
    """
    return message


#: The markers ``marked_strings`` collects: ``_`` translates now, ``N_`` marks a constant.
MARKERS: Final = ("_", "N_")


def marked_strings(source: str, names: tuple[str, ...] = MARKERS) -> set[str]:
    """Literal first arguments of calls to ``_`` or ``N_`` (or ``names``) in Python source."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in names and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value)
    return found


#: argparse strings about a programmer's misuse of the argparse API, never shown to a person.
_ARGPARSE_PROGRAMMER_ERRORS: Final = (
    ".__call__", "conflicting", "cannot", "invalid option string", "dest=", "invalid conflict",
    "'required' is", "mutually exclusive", "%r is not callable", "argument \"-\"",
)


def argparse_strings() -> set[str]:
    """argparse's own translatable strings, as the running Python spells them."""
    # Its ngettext strings are left out: they are about nargs=N > 1, which neither CLI uses.
    found = marked_strings(Path(argparse.__file__).read_text(encoding="utf-8"))
    return {s for s in found if not s.startswith(_ARGPARSE_PROGRAMMER_ERRORS)}


def write_catalogues(catalogues: list[Catalogue], out: Callable[[str], object] = print) -> None:
    """Compile every catalogue's .po to the .mo beside it."""
    for catalogue in catalogues:
        po = catalogue.po_path()
        mo = po.with_suffix(".mo")
        mo.write_bytes(compile_po(po.read_text(encoding="utf-8")))
        out(f"{po} -> {mo}")


def all_catalogues() -> list[Catalogue]:
    from agent.messages import CATALOGUE as agent_catalogue

    catalogues = [agent_catalogue]
    try:
        from collector.messages import CATALOGUE as collector_catalogue
    except ImportError:  # an agent-only install has no collector package
        return catalogues
    return [*catalogues, collector_catalogue]


if __name__ == "__main__":
    write_catalogues(all_catalogues())
    sys.exit(0)
