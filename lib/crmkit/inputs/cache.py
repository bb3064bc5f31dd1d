"""The validated inputs of a run, kept in the run folder so that every workbook reads them once.

``crmkit run`` loads and validates the client's files once (:func:`crmkit.inputs.workspace.
load_workspace`), then :func:`save` writes the canonical frames as Parquet under
``RUN_DIR/inputs/`` with a manifest of the raw files' checksums. Each workbook's kernel then
:func:`load`\\ s them from there instead of parsing and validating the CSV exports again (0.3 s
a workbook on a demo client, seconds on a million lines).

The cache is used only while it is the truth: every raw file's checksum must still equal the
manifest's (a file whose size and modification time, to the nanosecond, are those recorded when
the run read it is taken as unchanged without hashing it again), else the workspace is loaded
from the raw files as usual. ``client.yaml`` is always parsed anew (it is small, and the
settings object is not stored).

Each table is read from its Parquet file the first time a workbook asks for it
(:class:`RunWorkspace`): workbooks 03 and 04 never look at the transactions, which are most of
a big client's memory (1.1 GiB more in a kernel for 11.7M lines, with their customer numbering),
so their kernel never holds them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from crmkit.inputs import occasions
from crmkit.inputs.tabular import Dialect
from crmkit.inputs.workspace import Workspace, _sha256_file
from crmkit.settings.client import load_config

__all__ = ["INPUTS_DIR", "RunWorkspace", "Tables", "forget", "load", "same_tables", "save"]

#: Folder of the run that holds the validated inputs.
INPUTS_DIR = "inputs"
MANIFEST = "manifest.json"
#: The sorted distinct customer ids of the transactions, beside ``transactions.parquet``, whose
#: :data:`~crmkit.inputs.occasions.CUSTOMER_CODES` column holds each line's position among them
#: (:attr:`~crmkit.inputs.workspace.Workspace.customer_numbering`, made by ``crmkit run``).
CUSTOMER_IDS = "transactions-customer_ids.parquet"
TABLES = ("customers", "transactions", "interactions", "survey")

#: The frames this process last read from a run's ``inputs/``, with the folder and manifest they
#: came from: two workbooks run one after the other in one kernel (``crmkit run``'s shared
#: kernels) share them instead of reading, and holding, a second copy. :func:`forget` drops them.
_kept: tuple[tuple[str, str], Tables] | None = None


class Tables:
    """A run's input tables, each read from ``RUN_DIR/inputs/<name>.parquet`` on first use.

    Parameters
    ----------
    folder : Path
        ``RUN_DIR/inputs``.
    names : iterable of str
        The tables the manifest lists (the others are None: the client gave no such file).
    """

    def __init__(self, folder: Path, names):
        self.folder = Path(folder)
        self.names = frozenset(names)
        self.read: dict[str, pd.DataFrame] = {}
        self.lines: pd.DataFrame | None = None

    def get(self, name: str) -> pd.DataFrame | None:
        """The table ``name`` (read now if it was not yet), or None when the run has none."""
        if name not in self.names:
            return None
        if name not in self.read:
            frame = pd.read_parquet(self.folder / f"{name}.parquet")
            if name == "transactions":
                self._numbered(frame)
                self.lines = None  # the whole table holds them
            self.read[name] = frame
        return self.read[name]

    def occasion_lines(self) -> pd.DataFrame:
        """The transactions' :data:`~crmkit.inputs.occasions.LINE_COLUMNS` alone, read now if
        neither they nor the whole table were: at ten million lines that is 0.7 GiB of a
        kernel's memory instead of 1.5 (workbook 01 reads nothing else of the lines)."""
        if "transactions" in self.read:
            frame = self.read["transactions"]
        else:
            if self.lines is None:
                path = self.folder / "transactions.parquet"
                present = set(pq.read_schema(path).names)
                self.lines = pd.read_parquet(path, columns=[
                    c for c in occasions.LINE_COLUMNS if c in present])
                self._numbered(self.lines)
            frame = self.lines
        return frame[[c for c in occasions.LINE_COLUMNS if c in frame.columns]]


    def _numbered(self, lines: pd.DataFrame) -> None:
        """Give the lines their customer numbering (:func:`occasions.with_customer_codes`): the
        one ``crmkit run`` saved with them, or made now (a few seconds on ten million lines)."""
        codes = lines.get(occasions.CUSTOMER_CODES)
        if codes is not None and pd.api.types.is_integer_dtype(codes.dtype):
            ids = pd.read_parquet(self.folder / CUSTOMER_IDS)["customer_id"]
            lines[occasions.CUSTOMER_CODES] = pd.Categorical.from_codes(
                codes.to_numpy(), categories=pd.Index(ids.array), validate=False)
        else:
            occasions.with_customer_codes(lines)


class _Table:
    """A table of :class:`RunWorkspace`: read from its :class:`Tables` on first access."""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, ws, owner=None):
        if ws is None:
            return self
        value = ws.__dict__[self.name]
        if value is _UNREAD:
            value = ws.__dict__[self.name] = ws.__dict__["tables"].get(self.name)
        return value

    def __set__(self, ws, value) -> None:
        ws.__dict__[self.name] = value


_UNREAD = object()


class RunWorkspace(Workspace):
    """A :class:`~crmkit.inputs.workspace.Workspace` whose tables come from a run's ``inputs/``
    when a workbook first uses them; ``tables`` is the :class:`Tables` they come from (shared by
    the workbooks a kernel runs one after the other)."""

    @property
    def occasion_lines(self) -> pd.DataFrame:
        if self.__dict__["transactions"] is not _UNREAD:  # read, or set by the caller
            return super().occasion_lines
        return self.__dict__["tables"].occasion_lines()

    customers = _Table()
    transactions = _Table()
    interactions = _Table()
    survey = _Table()

    def __init__(self, *, tables: Tables, **fields):
        self.__dict__["tables"] = tables
        super().__init__(**{name: _UNREAD for name in TABLES}, **fields)


def same_tables(a: Workspace, b: Workspace) -> bool:
    """Whether two workspaces hold the very same input frames (without reading any table)."""
    if isinstance(a, RunWorkspace) and isinstance(b, RunWorkspace):
        return a.tables is b.tables
    return a.customers is b.customers and a.transactions is b.transactions


def forget() -> None:
    """Drop the frames :func:`load` keeps for the next workbook of the same run."""
    global _kept
    _kept = None


def save(ws: Workspace, run_dir: str | Path) -> Path:
    """Write the workspace's canonical frames and a manifest under ``RUN_DIR/inputs/``."""
    folder = Path(run_dir) / INPUTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tables = [name for name in TABLES if getattr(ws, name) is not None]

    def write(name: str) -> None:
        frame = getattr(ws, name)
        numbering = ws.customer_numbering if name == "transactions" else None
        if numbering is not None and len(numbering) == len(frame):
            # the numbering as each line's position among the distinct ids, stored apart
            pd.DataFrame({"customer_id": numbering.categories}).to_parquet(
                folder / CUSTOMER_IDS, index=False)
            frame = frame.assign(**{occasions.CUSTOMER_CODES: np.asarray(
                numbering.codes, dtype=np.int32)})
        frame.to_parquet(folder / f"{name}.parquet", index=False)

    # side by side: Parquet's encoding runs outside the GIL (a million customers' transactions
    # and interactions: 5.2 s one after the other)
    with ThreadPoolExecutor(max_workers=min(2, len(tables)) or 1) as pool:
        list(pool.map(write, tables))
    sources = {file: {**dataclasses.asdict(d), "configured": sorted(d.configured)}
               for file, d in ws.sources.items()}
    manifest = {"workspace": str(ws.path.resolve()), "checksums": ws.checksums,
                "stats": {name: _settled_stat(ws.path / name) for name in ws.checksums},
                "as_of": ws.as_of.isoformat(), "tables": tables, "sources": sources}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return folder


def _stat(path: Path) -> list[int] | None:
    """``[size, mtime_ns]`` of a file (None when it cannot be read)."""
    try:
        info = path.stat()
    except OSError:
        return None
    return [info.st_size, info.st_mtime_ns]


#: A file modified less than this long before the run saved its inputs is always hashed again:
#: file systems stamp modification times from a coarse clock (milliseconds), so a file
#: rewritten right after it was read could keep the same stamp.
SETTLED_NS = 2_000_000_000


def _settled_stat(path: Path) -> list[int] | None:
    """:func:`_stat` of a file last modified a while ago (None for a fresh one: hash it)."""
    stat = _stat(path)
    if stat is None or time.time_ns() - stat[1] < SETTLED_NS:
        return None
    return stat


def load(client_dir: str | Path, run_dir: str | Path | None) -> Workspace | None:
    """The workspace from ``RUN_DIR/inputs/``, or None when there is no valid cache for it.

    Parameters
    ----------
    client_dir : path
        The client workspace the run was made from.
    run_dir : path or None
        The run folder (None: no cache).
    """
    if run_dir is None:
        return None
    folder = Path(run_dir) / INPUTS_DIR
    root = Path(client_dir)
    try:
        text = (folder / MANIFEST).read_text(encoding="utf-8")
        manifest = json.loads(text)
    except (OSError, ValueError):
        return None
    if manifest.get("workspace") != str(root.resolve()):
        return None
    checksums = manifest.get("checksums") or {}
    stats = manifest.get("stats") or {}
    for name, digest in checksums.items():
        path = root / name
        if not path.is_file():
            return None
        # Size and modification time to the nanosecond unchanged since the run read the file:
        # the file is the one hashed (what make and rsync rely on), and a second of hashing
        # per workbook kernel is saved on a gigabyte of exports. Anything else is hashed.
        if stats.get(name) is not None and stats[name] == _stat(path):
            continue
        if _sha256_file(path) != digest:
            return None
    global _kept
    key = (str(folder.resolve()), text)
    if _kept is not None and _kept[0] == key:
        tables = _kept[1]
    else:
        _kept = None  # the frames of another run go before this one's are read
        tables = Tables(folder, [n for n in TABLES if n in manifest["tables"]])
        _kept = (key, tables)
    sources = {file: Dialect(**{**d, "configured": frozenset(d["configured"]),
                                "decimals": tuple(tuple(pair) for pair in d.get("decimals", ()))})
               for file, d in manifest.get("sources", {}).items()}
    return RunWorkspace(tables=tables, path=root, slug=root.resolve().name,
                        config=load_config(root), as_of=dt.date.fromisoformat(manifest["as_of"]),
                        checksums=checksums, sources=sources)
