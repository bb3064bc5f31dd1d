"""crmkit works when installed from a wheel, not only editable from the repository.

The wheel carries the workbooks, templates and reference data (mapped into ``crmkit/_share/`` by
pyproject.toml) and the message catalogues. The slow tests build a wheel from a copy of the
sources, install it into a fresh virtual environment that sees the third-party packages of this
one but not its crmkit, and run ``crmkit demo`` there from a folder outside the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: What a build needs from the repository (nothing else is copied, so nothing else can leak in).
SOURCES = ("pyproject.toml", "README.md", "MANIFEST.in", "lib", "workbooks", "templates", "data")
#: The repository's folders that the wheel carries, and where.
SHARED = {"workbooks": "crmkit/_share/workbooks", "templates": "crmkit/_share/templates",
          "data": "crmkit/_share/data"}
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".ipynb_checkpoints")


def _setuptools() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["setuptools"]


def _tracked(folder: str) -> list[str]:
    """The files of a repository folder, as paths relative to the repository (caches left out)."""
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / folder).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts
                  and ".ipynb_checkpoints" not in p.parts and p.suffix != ".pyc")


def test_every_package_under_lib_is_listed_in_pyproject():
    """The package list is written out by hand (see pyproject.toml): a new stage must be added."""
    found = {".".join(p.parent.relative_to(ROOT / "lib").parts)
             for p in (ROOT / "lib" / "crmkit").rglob("__init__.py")
             if "__pycache__" not in p.parts}
    listed = set(_setuptools()["packages"])
    assert found - listed == set(), "add these packages to [tool.setuptools] packages"
    shared = {f"crmkit._share.{name}" for name in SHARED}
    assert listed - found == shared


def test_the_mapped_folders_exist():
    package_dir = _setuptools()["package-dir"]
    assert package_dir[""] == "lib"
    for name in SHARED:
        assert package_dir[f"crmkit._share.{name}"] == name
        assert (ROOT / name).is_dir()


# --- a wheel, installed elsewhere ------------------------------------------------------------


def _can_build_without_isolation() -> bool:
    """Whether this environment's setuptools meets [build-system] (then nothing is downloaded)."""
    try:
        from importlib.metadata import version

        major, minor = (int(x) for x in version("setuptools").split(".")[:2])
    except Exception:  # noqa: BLE001 - no setuptools, or an odd version string
        return False
    return (major, minor) >= (77, 0)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (the build writes build/ and egg-info in-tree)."""
    base = tmp_path_factory.mktemp("packaging")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=IGNORED)
        elif path.exists():
            shutil.copy2(path, src / name)
    command = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--quiet",
               "-w", str(base / "dist")]
    if _can_build_without_isolation():
        command.append("--no-build-isolation")
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = (base / "dist").glob("crmkit-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv with crmkit from the wheel, and this environment's other packages."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    # install first: with this environment's packages visible, pip would try to uninstall the
    # editable crmkit it found there
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                           "--no-deps", "--no-index", "--quiet", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"], check=True,
                               capture_output=True, text=True).stdout.strip())
    # a path in a .pth is added to sys.path after the venv's own site-packages, and the .pth
    # files inside it (this environment's editable crmkit) are not read
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "_crmkit_test_dependencies.pth").write_text("\n".join(ours) + "\n", encoding="utf-8")
    return venv


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CRMKIT_HOME", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return env


@pytest.mark.slow
def test_the_wheel_carries_the_workbooks_templates_data_and_messages(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, inside in SHARED.items():
        files = _tracked(folder)
        assert files, folder
        missing = [f for f in files if f"{inside}/{Path(f).relative_to(folder)}" not in names]
        assert missing == [], f"not in the wheel: {missing}"
    messages = sorted(p.name for p in (ROOT / "lib/crmkit/core/messages").glob("*.yaml"))
    assert messages
    assert {f"crmkit/core/messages/{m}" for m in messages} <= names
    assert "crmkit/_share/data/demo/retail/client.yaml" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert any(n.endswith(".dist-info/entry_points.txt") for n in names)


@pytest.mark.slow
def test_the_installed_package_finds_its_files_in_itself(installed, tmp_path):
    python = installed / "bin" / "python"
    script = (
        "import json, crmkit\n"
        "from crmkit.core import paths, i18n, catalogue\n"
        "from crmkit.delivery import dashboard, report\n"
        "from crmkit.settings import segment_maps\n"
        "print(json.dumps({'crmkit': crmkit.__file__, 'root': str(paths.ROOT),\n"
        "  'exists': {str(p): p.exists() for p in [paths.WORKBOOKS / '01_context.ipynb',\n"
        "    dashboard.NOTEBOOK, dashboard.TEMPLATE_DIR / 'index.html.j2',\n"
        "    paths.TEMPLATES / 'report' / 'report.html.j2', paths.TEMPLATES / 'client' / 'en',\n"
        "    catalogue.CATALOGUE_FILE, segment_maps.MAPS_DIR, i18n.MESSAGES_DIR / 'common.yaml',\n"
        "    paths.DEMO_CLIENTS / 'retail' / 'client.yaml']}}))\n"
    )
    done = subprocess.run([str(python), "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, env=_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert Path(found["crmkit"]).is_relative_to(installed), found["crmkit"]
    assert Path(found["root"]).is_relative_to(installed), found["root"]
    assert all(found["exists"].values()), found["exists"]

    new = subprocess.run([str(installed / "bin" / "crmkit"), "new", "acme"], capture_output=True,
                         text=True, cwd=tmp_path, env=_env(), timeout=120)
    assert new.returncode == 0, new.stderr
    assert (tmp_path / "acme" / "client.yaml").is_file()


@pytest.mark.slow
def test_crmkit_demo_runs_from_the_installed_wheel(installed, tmp_path):
    """``pip install .`` then ``crmkit demo``, outside the repository, without CRMKIT_HOME."""
    from crmkit.delivery.pdf import BROWSER_ENV

    work = tmp_path / "elsewhere"
    work.mkdir()
    # without the PDF: printing is Chromium's, the same from a wheel (tests/delivery/test_pdf.py)
    done = subprocess.run([str(installed / "bin" / "crmkit"), "demo", "--out", "reports",
                           "--quiet"], capture_output=True, text=True, cwd=work,
                          env=_env() | {BROWSER_ENV: "none"}, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    report = Path(done.stdout.strip().splitlines()[-1])
    if not report.is_absolute():
        report = work / report
    assert report.name == "report.html" and report.is_file()
    assert report.resolve().parent.parent.parent == (work / "reports").resolve()
    results = json.loads((report.parent / "results.json").read_text(encoding="utf-8"))
    assert results
    run = json.loads((report.parent / "run.json").read_text(encoding="utf-8"))
    assert Path(run["client_dir"]).is_relative_to(installed)
