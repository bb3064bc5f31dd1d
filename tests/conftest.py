"""Shared test helpers: building client workspaces in a temporary folder."""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

import pytest
import yaml

# Jupyter and IPython write config, kernels' runtime files and history under HOME; the tests keep
# all of it in a throwaway folder, for this process and every kernel or CLI it starts.
_JUPYTER_HOME = Path(tempfile.mkdtemp(prefix="crmkit-tests-jupyter-"))
os.environ.update({
    "JUPYTER_CONFIG_DIR": str(_JUPYTER_HOME / "config"),
    "JUPYTER_DATA_DIR": str(_JUPYTER_HOME / "data"),
    "JUPYTER_RUNTIME_DIR": str(_JUPYTER_HOME / "runtime"),
    "IPYTHONDIR": str(_JUPYTER_HOME / "ipython"),
    "JUPYTER_PLATFORM_DIRS": "1",
})

#: The smallest valid ``client.yaml`` (as a mapping).
MINIMAL_CONFIG = {
    "name": "Acme Retail",
    "context": {
        "internal": {
            "financial": {"score": 3},
            "operational": {"score": 3},
            "technological": {"score": 2},
            "people": {"score": 4},
        },
        "external": {
            "competitors": {"impact": "high", "time_frame": "short", "direction": "threat"},
            "industry_maturity": {"impact": "medium", "time_frame": "medium",
                                  "direction": "threat", "stage": "maturity"},
            "regulation": {"impact": "low", "time_frame": "long", "direction": "threat"},
            "disruptive_technology": {"impact": "medium", "time_frame": "medium",
                                      "direction": "opportunity"},
        },
    },
}

#: A small valid set of CSV files (comma separated, decimal point, ISO dates).
VALID_FILES = {
    "customers.csv": "customer_id,region,age\nC1,North,34\nC2,South,51\nC3,North,28\n",
    "transactions.csv": ("customer_id,date,amount,product\n"
                         "C1,2024-01-05,120.50,shoes\n"
                         "C2,2024-02-10,80.00,shirt\n"
                         "C1,2024-03-01,-20.00,shoes\n"
                         "C3,2024-03-02,45.25,socks\n"),
}


def _merge(base: dict, overrides: dict) -> dict:
    """Deep-merge ``overrides`` into a copy of ``base``; a None value deletes the key."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def write_workspace(tmp_path: Path, files: dict[str, str | bytes] | None = None,
                    config_overrides: dict | None = None, slug: str = "acme") -> Path:
    """Write a client workspace ``tmp_path/slug`` and return its path.

    ``files`` maps file names to contents (str is written as UTF-8, bytes as is; None leaves
    the file out) and is laid over :data:`VALID_FILES`. ``client.yaml`` is
    :data:`MINIMAL_CONFIG` deep-merged with ``config_overrides``, unless ``files`` gives it.
    """
    root = Path(tmp_path) / slug
    root.mkdir(parents=True, exist_ok=True)
    contents: dict[str, str | bytes | None] = {**VALID_FILES, **(files or {})}
    if "client.yaml" not in contents:
        config = _merge(MINIMAL_CONFIG, config_overrides or {})
        contents["client.yaml"] = yaml.safe_dump(config, allow_unicode=True, sort_keys=False)
    for name, content in contents.items():
        if content is None:
            continue
        data = content.encode("utf-8") if isinstance(content, str) else content
        (root / name).write_bytes(data)
    return root


@pytest.fixture
def make_workspace(tmp_path):
    """``make_workspace(files=None, config_overrides=None, slug="acme")`` in ``tmp_path``."""

    def make(files=None, config_overrides=None, slug="acme"):
        return write_workspace(tmp_path, files, config_overrides, slug)

    return make


@pytest.fixture(scope="session")
def workspace_writer():
    """:func:`write_workspace` itself, for fixtures of wider scope than ``tmp_path``."""
    return write_workspace
