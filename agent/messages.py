"""The agent's gettext catalogue: ``_`` marks a string a person reads on the command line.

``N_`` marks a constant kept as its English msgid and translated where it is printed.
"""

from __future__ import annotations

from pathlib import Path

from agent.i18n import N_ as N_
from agent.i18n import Catalogue

CATALOGUE = Catalogue("courtguard-agent", Path(__file__).parent)
_ = CATALOGUE.gettext
