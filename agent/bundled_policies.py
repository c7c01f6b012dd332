"""Where the project's own policies are when no policy directory is configured.

A wheel carries a copy of the repository's ``policies/`` as package data
(``agent/policies_default``, written by ``setup.py`` at build time); a
checkout or an editable install reads ``policies/`` beside the packages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

#: The copy a built package ships.
PACKAGED: Final = Path(__file__).resolve().parent / "policies_default"
#: The repository's own directory, when running from a checkout.
CHECKOUT: Final = Path(__file__).resolve().parents[1] / "policies"


def bundled_policy_dir() -> Path | None:
    """The shipped copy, else the checkout's ``policies/``; None when neither exists."""
    for candidate in (PACKAGED, CHECKOUT):
        if candidate.is_dir():
            return candidate
    return None
