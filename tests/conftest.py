"""Shared test helpers: building client workspaces in a temporary folder."""

from __future__ import annotations

import copy
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
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

# tests/ is laid out like lib/crmkit/ (one folder per stage, plus runs/, browser/ and house/). A few
# test modules share a hand-built case with a test in another folder (the invoice lines, the
# report's results, Chromium's helpers), so every folder is importable from any test; the file
# names are unique across folders, which keeps that unambiguous.
TESTS = Path(__file__).parent
for _folder in sorted(p for p in TESTS.iterdir() if p.is_dir() and any(p.glob("test_*.py"))):
    sys.path.insert(0, str(_folder))
BROWSER_TESTS = TESTS / "browser"


def pytest_collection_modifyitems(items):
    """Everything under ``tests/browser/`` is a browser test (``make test-browser`` runs them);
    the modules with the most ``slow`` tests (full runs, kernels, a wheel) come first.

    ``make test`` hands whole modules to two processes (``--dist loadscope
    --no-loadscope-reorder``), each taking the next module when it is free: the long modules
    started first leave the short ones to even out the end, instead of one process running a
    long module alone while the other has finished.
    """
    for item in items:
        if BROWSER_TESTS in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)
    slow: dict[Path, int] = {}
    for item in items:
        slow[Path(item.path)] = slow.get(Path(item.path), 0) + bool(item.get_closest_marker("slow"))
    order = {item: index for index, item in enumerate(items)}
    items.sort(key=lambda item: (-slow[Path(item.path)], order[item]))


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


# --- runs of `crmkit run`, shared by the whole session ------------------------------------------
#
# A run executes the five workbooks (papermill) and prints the PDF: about fifteen seconds on this
# machine class. The end-to-end and workbook tests only read run folders, so each demo client is
# run once per language for the whole session, on the first test that asks for it. Under
# pytest-xdist (`make test` runs two processes) the runs are shared by the processes too: the
# first to ask runs it, under a file lock, and the others read its folder. Tests that need a
# changed workspace or other workbooks start runs of their own, on the smallest workspace that
# shows what they check.
#
# The bank demo and the hostile retail copy are not run alone: they are the two good clients of
# the session's one batch (`crmkit batch` on a LocalCluster of two workers, beside a client whose
# first workbook fails and an invalid one), which the batch tests read too. The two runs a batch
# test needs anyway are then the runs the other tests read, not two more.

def crmkit_cli(*args: str, env: dict | None = None,
               timeout: float = 900) -> subprocess.CompletedProcess:
    """``python -m crmkit ARGS`` as a consultant types it: (returncode, stdout, stderr)."""
    return subprocess.run([sys.executable, "-m", "crmkit", *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=timeout)


@dataclass(frozen=True)
class SharedRun:
    """A finished run: its folder (``<out>/<slug>/<timestamp>``) and what it said on stderr."""

    folder: Path
    stderr: str


@dataclass(frozen=True)
class SharedBatch:
    """The session's ``crmkit batch``: its folders, exit code and what it printed."""

    clients: Path
    reports: Path
    returncode: int
    stdout: str
    stderr: str

    def outcome(self, slug: str) -> dict:
        """A client's row of ``portfolio.json``."""
        document = json.loads((self.reports / "portfolio.json").read_text(encoding="utf-8"))
        return next(c for c in document["clients"] if c["slug"] == slug)


#: The session's batch: slug -> what the workspace is. Its good clients are shared runs too.
BATCH_CLIENTS = {"bank": "the bank demo", "hostile": "the hostile retail copy",
                 "failing": "the retail demo, whose first workbook fails (FAIL_ENV)",
                 "broken": "a client.yaml that is not YAML, and no data"}


def write_batch_clients(clients: Path) -> Path:
    """The four workspaces of :data:`BATCH_CLIENTS` under ``clients``."""
    from crmkit.core import paths

    clients.mkdir(parents=True)
    shutil.copytree(paths.DEMO_CLIENTS / "bank", clients / "bank")
    hostile_retail_copy(clients)
    shutil.copytree(paths.DEMO_CLIENTS / "retail", clients / "failing")
    invalid_workspace(clients / "broken")
    return clients


def invalid_workspace(folder: Path) -> Path:
    """A workspace whose client.yaml is not YAML and whose files are missing."""
    folder.mkdir(parents=True)
    (folder / "client.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    return folder


def _fingerprint(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


class SharedRuns:
    """``crmkit run`` once per (client, language) for the whole session, on first request.

    The run folders are the session's: a test reads them and never writes to them (copy one
    with :func:`shutil.copytree` to change it). :meth:`check_untouched` proves it at the end.
    ``root`` is shared by the session's test processes; a run is made by one of them, under the
    lock ``<name>.lock``, and recorded in ``<name>.json`` for the others.
    """

    def __init__(self, root: Path):
        self.root = root
        self._runs: dict[tuple[str, str | None], SharedRun] = {}
        self._prints: dict[tuple[str, str | None], dict] = {}
        self._batch: SharedBatch | None = None
        self.started = 0

    def demo(self, demo: str, language: str | None = None) -> SharedRun:
        """The bundled demo client ``demo`` run in ``language`` (default: its own)."""
        from crmkit.core import paths

        client = paths.DEMO_CLIENTS / demo
        own = yaml.safe_load((client / "client.yaml").read_text(encoding="utf-8"))["language"]
        return self.client(demo, client, None if language in (None, own) else language)

    def client(self, key: str, client: Path, language: str | None = None) -> SharedRun:
        """The workspace ``client`` run in ``language`` (default: its own), cached as ``key``."""
        ident = (key, language)
        if ident not in self._runs and language is None and key in BATCH_CLIENTS:
            outcome = self.batch().outcome(key)
            assert outcome["status"] == "done", outcome
            self._runs[ident] = SharedRun(self._batch.reports / outcome["run"],
                                          outcome["message"])
            self._prints[ident] = _fingerprint(self._runs[ident].folder)
        if ident not in self._runs:
            name = key if language is None else f"{key}-{language}"
            record = self.root / f"{name}.json"
            with (self.root / f"{name}.lock").open("w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
                if not record.is_file():
                    extra = ["--language", language] if language else []
                    self.started += 1
                    done = crmkit_cli("run", client, "--out", self.root / name, "--quiet",
                                      *extra)
                    assert done.returncode == 0, done.stderr
                    folder = done.stdout.strip().splitlines()[-1]
                    record.write_text(json.dumps({"folder": str(Path(folder).parent),
                                                  "stderr": done.stderr}), encoding="utf-8")
            made = json.loads(record.read_text(encoding="utf-8"))
            self._runs[ident] = SharedRun(Path(made["folder"]), made["stderr"])
            self._prints[ident] = _fingerprint(self._runs[ident].folder)
        return self._runs[ident]

    def batch(self) -> SharedBatch:
        """``crmkit batch`` over :func:`write_batch_clients` on two workers, once a session."""
        if self._batch is None:
            record = self.root / "batch.json"
            with (self.root / "batch.lock").open("w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
                if not record.is_file():
                    from crmkit.delivery.runner import FAIL_ENV

                    clients = write_batch_clients(self.root / "batch-clients")
                    reports = self.root / "batch-reports"
                    self.started += 2
                    done = crmkit_cli("batch", clients, "--out", reports, "--workers", "2",
                                      env={FAIL_ENV: "failing"})
                    record.write_text(json.dumps({
                        "clients": str(clients), "reports": str(reports),
                        "returncode": done.returncode, "stdout": done.stdout,
                        "stderr": done.stderr}), encoding="utf-8")
            made = json.loads(record.read_text(encoding="utf-8"))
            self._batch = SharedBatch(Path(made["clients"]), Path(made["reports"]),
                                      made["returncode"], made["stdout"], made["stderr"])
        return self._batch

    def check_untouched(self) -> None:
        changed = [key for key, run in self._runs.items()
                   if _fingerprint(run.folder) != self._prints[key]]
        assert not changed, f"a test changed the shared run folders of {changed}: copy them"


@pytest.fixture(scope="session")
def shared_runs(tmp_path_factory, request):
    """The session's :class:`SharedRuns` (runs start only when a test asks for them)."""
    if not hasattr(request.config, "workerinput"):  # one test process
        root = tmp_path_factory.mktemp("shared-reports")
    else:  # a pytest-xdist worker: the workers' temporary folders share a parent
        root = tmp_path_factory.getbasetemp().parent / "shared-reports"
        root.mkdir(exist_ok=True)
    runs = SharedRuns(root)
    yield runs
    runs.check_untouched()


#: The retail demo's customer renamed to a spreadsheet formula in every file of the hostile copy.
HOSTILE_ID = '=HYPERLINK("http://x","y")'
HOSTILE_RENAMED = "NW010001"
#: The hostile copy's client name and a note of its context, as written in its client.yaml.
HOSTILE_NAME = "<script>alert(1)</script> Evil"
HOSTILE_NOTE = "<img src=x onerror=alert(2)> [x](javascript:alert(3))"


def hostile_retail_copy(root: Path) -> Path:
    """The retail demo with hostile client text (a script in its name, markup and a javascript:
    link in a note) and customer NW010001 renamed to a spreadsheet formula everywhere."""
    from crmkit.core import paths

    client = Path(root) / "hostile"
    shutil.copytree(paths.DEMO_CLIENTS / "retail", client)
    text = (client / "client.yaml").read_text(encoding="utf-8")
    text = text.replace("name: Northwind Living", f"name: '{HOSTILE_NAME}'")
    text, notes = re.subn(r"(people:\n\s+score: \d\n\s+note: ).*", rf"\g<1>'{HOSTILE_NOTE}'", text)
    assert notes == 1 and HOSTILE_NAME in text, "the retail demo's client.yaml has changed"
    (client / "client.yaml").write_text(text, encoding="utf-8")
    for name in ("customers.csv", "transactions.csv", "interactions.csv", "survey.csv"):
        path = client / name
        if path.exists():
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            frame.loc[frame["customer_id"] == HOSTILE_RENAMED, "customer_id"] = HOSTILE_ID
            frame.to_csv(path, index=False)
    return client


@pytest.fixture(scope="session")
def hostile_run(shared_runs, tmp_path_factory) -> SharedRun:
    """One run of :func:`hostile_retail_copy` for the whole session (escaping and formulas):
    a good client of the session's batch (:meth:`SharedRuns.batch`)."""
    return shared_runs.client("hostile", shared_runs.batch().clients / "hostile")
