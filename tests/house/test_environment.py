"""pyproject.toml is the single source of dependencies; environment.yml must say the same."""

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    parsed = (Requirement(r) for r in requirements)
    return {r.name.lower(): str(r.specifier) for r in parsed}


def _environment() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    packages = {}
    for entry in env["dependencies"]:
        if not isinstance(entry, str) or entry.split("=")[0] in ("python", "pip"):
            continue
        name, spec = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", entry).groups()
        packages[name.lower()] = str(Requirement(f"{name}{spec}").specifier)
    return packages


def test_environment_yml_lists_the_same_packages_and_versions_as_pyproject():
    assert _environment() == _pyproject()


def test_environment_yml_uses_python_311_from_conda_forge():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    assert "python=3.11" in env["dependencies"]
