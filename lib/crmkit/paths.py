"""Where the workbook's own files live: workbooks, templates, reference data, demo clients.

crmkit is installed editable from its repository (``make demo`` / ``make test``), because the
workbooks, templates and reference catalogues are part of the product and live beside the
library, as DESIGN.md lays out. ``CRMKIT_HOME`` points elsewhere for an unusual installation.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("CRMKIT_HOME", Path(__file__).resolve().parents[2]))
WORKBOOKS = ROOT / "workbooks"
TEMPLATES = ROOT / "templates"
DATA = ROOT / "data"
DEMO_CLIENTS = DATA / "demo"
