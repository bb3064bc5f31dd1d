"""``crmkit new``: a fresh client workspace from ``templates/client/<language>/``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from crmkit.core import paths
from crmkit.core.problems import ProblemList, WorkspaceError


def new_workspace(client_dir: str | Path, *, name: str | None = None,
                  language: str = "en") -> Path:
    """Create a client workspace with a commented ``client.yaml`` and a README of the files.

    Parameters
    ----------
    client_dir : path
        Must not exist yet, or be an empty folder: nothing of a client's is ever overwritten.
    name : str, optional
        The client's name; default: the folder name, title-cased.
    language : {"en", "es"}
        Language of the template, the comments and the report.

    Raises
    ------
    WorkspaceError
        When the folder already holds files.
    """
    client_dir = Path(client_dir)
    if client_dir.exists() and (not client_dir.is_dir() or any(client_dir.iterdir())):
        problems = ProblemList()
        problems.add(str(client_dir), "exists",
                     "already exists and is not empty; expected a new or empty folder "
                     "(nothing of a client's is overwritten)")
        raise WorkspaceError(problems)
    template = paths.TEMPLATES / "client" / language
    client_dir.mkdir(parents=True, exist_ok=True)
    name = name or client_dir.resolve().name.replace("-", " ").replace("_", " ").title()
    text = (template / "client.yaml").read_text(encoding="utf-8")
    # A JSON string is a valid YAML double-quoted scalar: quotes or colons in a name are safe.
    (client_dir / "client.yaml").write_text(text.replace('"{name}"', json.dumps(name)),
                                            encoding="utf-8")
    shutil.copy(template / "README.md", client_dir / "README.md")
    return client_dir
