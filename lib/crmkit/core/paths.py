"""Where the workbook's own files live: workbooks, templates, reference data, demo clients.

The workbooks, templates and reference catalogues are part of the product and live beside the
library at the top of the repository. They are found, in this order:

1. ``CRMKIT_HOME``, when set: a folder with ``workbooks/``, ``templates/`` and ``data/`` (an
   unusual installation, or a test that brings its own workbooks);
2. the repository that this module lies in, when crmkit is installed editable from it
   (``make demo`` / ``make test``), so that an edited workbook or template is used at once;
3. the copy installed with the package (``crmkit/_share/``, see pyproject.toml), when crmkit was
   installed from a wheel (``pip install .``).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

#: The repository's top folder, when this module lies in one (lib/crmkit/core/paths.py).
REPOSITORY = Path(__file__).resolve().parents[3]


def _is_home(folder: Path) -> bool:
    return (folder / "workbooks").is_dir() and (folder / "data").is_dir()


def _installed() -> Path:
    """The copy of workbooks/, templates/ and data/ installed with the package."""
    return Path(str(resources.files("crmkit") / "_share"))


def _root() -> Path:
    home = os.environ.get("CRMKIT_HOME")
    if home:
        return Path(home)
    if (REPOSITORY / "pyproject.toml").is_file() and _is_home(REPOSITORY):
        return REPOSITORY
    installed = _installed()
    return installed if _is_home(installed) else REPOSITORY


ROOT = _root()
WORKBOOKS = ROOT / "workbooks"
TEMPLATES = ROOT / "templates"
DATA = ROOT / "data"
DEMO_CLIENTS = DATA / "demo"
