"""``crmkit lab``: the consultant's JupyterLab on one client's workbooks.

The committed workbooks run on the bundled demo client (their parameters cell says so) and are
never edited. ``crmkit lab CLIENT_DIR`` instead:

1. **makes working copies** of the numbered workbooks in a private folder of the consultant's
   own (:func:`lab_folder`: ``$XDG_DATA_HOME/crmkit/lab/<slug>-<hash>/``, not inside the client
   workspace, which holds only what the client gave and client.yaml — the workspace may sit on a
   shared drive, and JupyterLab's checkpoints, runtime files and kernels' history do not belong
   there). The copies are rebuilt from the committed workbooks at each start; the ones of the
   session before are kept in ``previous-session/``. Each copy (:func:`working_copy`):

   - keeps every cell of the committed workbook, and its parameters cell untouched;
   - after the cell that opens the workbook, binds the session to the copy
     (:meth:`~crmkit.delivery.workbook.Workbook.in_lab`);
   - keeps the prose cells of both languages as folded raw cells (``jupyter.source_hidden``;
     a click shows the Jinja template, which stays editable) and after each one of the chosen
     language adds a small code cell (``wb.story("c08")``) whose output is the paragraph
     rendered with this client's figures;
   - inserts the intake forms (:mod:`crmkit.delivery.intake`) before the cells that use the
     judgements (:data:`INTAKES`).

2. **binds the copies to the client** through the kernel's environment
   (:data:`~crmkit.delivery.workbook.ENV_CLIENT`, :data:`~crmkit.delivery.workbook.ENV_LANGUAGE`),
   which :func:`~crmkit.delivery.workbook.open_workbook` reads in place of the demo default.

3. **starts JupyterLab** (:func:`start_lab`) on 127.0.0.1 with a random token, its configuration,
   runtime files and settings in the private folder (nothing is read from or written to
   ``~/.jupyter``), no update checks and no news fetched, and prints one link — at workbook 01 —
   once the server answers HTTP. Ctrl+C stops it and its kernels.

A workshop pack (a folder holding ``exercises/`` and ``cases/``, from ``crmkit workshop new``)
is opened as it is, at its first exercise, without copies.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from crmkit.core.i18n import t
from crmkit.delivery.report import cell_language
from crmkit.delivery.serving import port_free, stops_on_interrupt, wait_until_answering
from crmkit.delivery.workbook import ENV_CLIENT, ENV_LANGUAGE

__all__ = ["INTAKES", "LabSetup", "is_workshop_pack", "lab_command", "lab_folder",
           "lab_setup", "start_lab", "working_copies", "working_copy"]

HOST = "127.0.0.1"
#: Seconds JupyterLab may take to answer before the command gives up.
START_TIMEOUT = 120.0
#: The workbook the link opens.
FIRST_WORKBOOK = "01_context.ipynb"
#: Tags of the cells a working copy adds (``report-skip``: never in a report, should a copy be
#: rendered).
STORY_TAGS = ["lab-story", "report-skip"]
INTAKE_TAGS = ["lab-intake", "report-skip"]

#: The intake forms of each workbook: (the cell it goes before, the call). ``rerun`` names the
#: cells the form recomputes after a save (see :mod:`crmkit.delivery.intake`).
INTAKES: dict[str, list[tuple[str, str]]] = {
    "01_context": [
        ("c16", 'intake.capabilities(wb, rerun=["c16", "c26", "c32"])'),
        ("c22", 'intake.external_factors(wb, rerun=["c22", "c26", "c32"])'),
    ],
    "03_relationships": [
        ("c06", 'intake.relationships(wb, names, rerun=["c06", "c12", "c17", "c35"])'),
    ],
    "04_cost_benefit": [
        ("c06", "intake.retention(wb, relationships.segment_names(customers), "
                'rerun=["c06", "c13"])'),
    ],
    "05_implementation": [
        ("c12", 'intake.project_costs(wb, project, rerun=["c03", "case03", "c12", "c28"])'),
        ("case06", 'intake.levers(wb, rerun=["case03", "case06", "c28"])'),
    ],
}
_INTAKE_WHY = {
    "en": "# Your judgements: change them here and save; the cells they feed are recomputed.",
    "es": "# Sus juicios: cámbielos aquí y guarde; se recalculan las celdas que dependen de ellos.",
}


def _code(source: str, cell_id: str, tags: list[str], hidden: bool = False):
    cell = nbformat.v4.new_code_cell(source)
    cell.id = cell_id
    cell.metadata["tags"] = list(tags)
    if hidden:
        cell.metadata["jupyter"] = {"source_hidden": True}
    return cell


def _template(cell):
    """A prose cell of the committed workbook as the copy keeps it: a folded raw cell.

    Raw, not markdown: JupyterLab would render a markdown cell's raw Jinja as prose (and unfold
    it on "Run All"), which is what the consultant must not have to read; a raw cell keeps the
    template as text, editable, and the story cell below shows it filled in.
    """
    raw = nbformat.v4.new_raw_cell(cell.source)
    raw.id = cell.id
    raw.metadata = cell.metadata
    raw.metadata["tags"] = [*cell.metadata.get("tags", []), "lab-template"]
    raw.metadata["jupyter"] = {"source_hidden": True}
    return raw


def working_copy(notebook: nbformat.NotebookNode, name: str, lang: str,
                 client_dir: Path | None = None) -> nbformat.NotebookNode:
    """The lab's working copy of a committed workbook (see the module's description).

    Parameters
    ----------
    notebook : NotebookNode
        The committed workbook, as read.
    name : str
        Its file name (``01_context.ipynb``): the copy reads its own prose from it.
    lang : {"en", "es"}
        The language whose prose is rendered.
    client_dir : Path, optional
        Named in a comment of the parameters cell, so the consultant sees whom the copy is for.

    Raises
    ------
    KeyError
        An intake's anchor cell is not in the workbook (it was renumbered): a bug to fix in
        :data:`INTAKES`, not something to skip silently.
    """
    copy = nbformat.from_dict(json.loads(json.dumps(notebook)))
    anchors = dict(INTAKES.get(Path(name).stem, []))
    ids = {cell.get("id") for cell in copy.cells}
    missing = [a for a in anchors if a not in ids]
    if missing:
        raise KeyError(f"{name} has no cell {', '.join(missing)} for its intake forms")
    cells, early, bound = [], [], False
    for cell in copy.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell_id = cell.get("id")
        if cell_id in anchors:
            source = (_INTAKE_WHY[lang] + "\nfrom crmkit.delivery import intake\n"
                      + anchors[cell_id])
            cells.append(_code(source, f"{cell_id}-intake", INTAKE_TAGS))
        tags = cell.get("metadata", {}).get("tags", [])
        if "parameters" in tags and client_dir is not None:
            cell.source = (cell.source.rstrip() + f"\n# crmkit lab: this copy is bound to "
                           f"{client_dir} ({lang}) through {ENV_CLIENT} and {ENV_LANGUAGE}.")
        language = cell_language(cell)
        if cell.cell_type == "markdown" and language is not None:
            cell = _template(cell)
        cells.append(cell)
        if cell.cell_type == "raw" and language is not None:
            if language == lang:
                story = _code(f'wb.story("{cell_id}")', f"{cell_id}-story", STORY_TAGS,
                              hidden=True)
                (cells if bound else early).append(story)
        if not bound and cell.cell_type == "code" and "open_workbook(" in cell.source:
            bound = True
            cells.append(_code(f'wb.in_lab("{name}")', "lab-binding", ["lab-binding"]))
            cells.extend(early)
            early = []
    copy.cells = cells + early
    return copy


def lab_folder(client_dir: Path) -> Path:
    """The consultant's private folder for one client's lab (outside the client workspace).

    ``$CRMKIT_LAB_HOME`` if set, else ``$XDG_DATA_HOME/crmkit/lab`` (``~/.local/share/…``),
    then ``<slug>-<first 8 hex of the workspace path's hash>``, so that two clients with the
    same folder name do not share one.
    """
    root = os.environ.get("CRMKIT_LAB_HOME")
    if not root:
        data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        root = str(Path(data) / "crmkit" / "lab")
    resolved = Path(client_dir).resolve()
    digest = hashlib.sha256(str(resolved).encode("utf-8")).hexdigest()[:8]
    return Path(root) / f"{resolved.name}-{digest}"


def working_copies(client_dir: Path, lang: str, folder: Path | None = None) -> Path:
    """Write the working copies of every numbered workbook; return the folder holding them.

    The copies of the session before (edits to the prose included) are moved to
    ``previous-session/`` beside it.
    """
    from crmkit.delivery.runner import workbooks

    folder = Path(folder or lab_folder(client_dir))
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    books = folder / "workbooks"
    if books.exists():
        previous = folder / "previous-session"
        shutil.rmtree(previous, ignore_errors=True)
        books.rename(previous)
    books.mkdir()
    for path in workbooks():
        notebook = nbformat.read(path, as_version=4)
        copy = working_copy(notebook, path.name, lang, Path(client_dir).resolve())
        nbformat.write(copy, books / path.name)
    return books


def is_workshop_pack(folder: Path) -> bool:
    """Whether ``folder`` is a workshop pack (``exercises/`` and ``cases/`` in it)."""
    return (Path(folder) / "exercises").is_dir() and (Path(folder) / "cases").is_dir()


@dataclass
class LabSetup:
    """What :func:`start_lab` runs.

    Attributes
    ----------
    argv : list of str
        The JupyterLab command (no secret in it: the token is in the config file).
    env : dict
    url : str
        The one link, token included, at ``open_path``.
    token : str
    state : Path
        The private folder of Jupyter's config, data, runtime files and settings.
    """

    argv: list[str]
    env: dict[str, str]
    url: str
    token: str
    state: Path


def lab_setup(root: Path, open_path: str, port: int, env: dict | None = None, *,
              state: Path | None = None, token: str | None = None) -> LabSetup:
    """Write JupyterLab's private configuration and build its command.

    Parameters
    ----------
    root : Path
        The folder JupyterLab serves (its file browser shows nothing above it).
    open_path : str
        The file or folder the link opens, relative to ``root``.
    port : int
    env : dict, optional
        Extra environment for the server and its kernels (e.g. the client binding).
    state : Path, optional
        Where Jupyter's own files go; default ``root/../jupyter``.
    token : str, optional
        Default a fresh random one.
    """
    import tempfile

    root = Path(root).resolve()
    token = token or secrets.token_urlsafe(32)
    state = Path(state) if state is not None else Path(tempfile.mkdtemp(prefix="crmkit-lab-"))
    config_dir, data_dir, runtime = state / "config", state / "data", state / "runtime"
    settings = config_dir / "lab" / "user-settings"
    for folder in (config_dir, data_dir, runtime, state / "ipython", state / "workspaces",
                   settings / "@jupyterlab" / "apputils-extension"):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    config = {
        "ServerApp": {"ip": HOST, "port": port, "port_retries": 0, "open_browser": False,
                      "root_dir": str(root), "log_level": "WARN",
                      # containers run as root; the server is on 127.0.0.1 behind a token
                      "allow_root": hasattr(os, "geteuid") and os.geteuid() == 0},
        "IdentityProvider": {"token": token},
        "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                   # no extension installed from PyPI (nor PyPI asked) from inside a client's lab
                   "extension_manager": "readonly", "log_level": "WARN",
                   "workspaces_dir": str(state / "workspaces")},
    }
    config_file = config_dir / "jupyter_server_config.json"
    config_file.touch(mode=0o600)
    config_file.chmod(0o600)
    config_file.write_text(json.dumps(config, indent=2), encoding="utf-8")
    # JupyterLab asks on first start whether to fetch news from the internet: it may not.
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
     ).write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}), encoding="utf-8")
    # Every cell drawn, not only those on screen: a workbook is read top to bottom, and the
    # browser's find-in-page (and a test) must find a paragraph that is scrolled out of view;
    # and the workbook's own kernel starts without a "Select Kernel" dialog first.
    notebook_settings = settings / "@jupyterlab" / "notebook-extension"
    notebook_settings.mkdir(parents=True, exist_ok=True)
    (notebook_settings / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none", "autoStartDefaultKernel": True}), encoding="utf-8")

    environment = {k: v for k, v in os.environ.items()
                   if k not in ("JUPYTER_CONFIG_PATH", "JUPYTER_TOKEN", "JUPYTER_TOKEN_FILE",
                                "PLOTLY_RENDERER", ENV_CLIENT, ENV_LANGUAGE)}
    environment.update({
        "JUPYTER_CONFIG_DIR": str(config_dir),
        "JUPYTER_DATA_DIR": str(data_dir),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
        "IPYTHONDIR": str(state / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",
        **{k: str(v) for k, v in (env or {}).items()},
    })
    # the config file is read from JUPYTER_CONFIG_DIR, like any jupyter_server_config.json
    argv = [sys.executable, "-m", "jupyterlab", "--no-browser"]
    url = f"http://{HOST}:{port}/lab/tree/{open_path.strip('/')}?token={token}"
    return LabSetup(argv=argv, env=environment, url=url, token=token, state=state)


def start_lab(root: Path, open_path: str, port: int, env: dict | None = None, *,
              lang: str = "en", state: Path | None = None) -> int:
    """Serve JupyterLab on ``root`` until Ctrl+C; print its one link once it answers.

    For ``crmkit lab`` and for a workshop pack (``crmkit workshop``): see :func:`lab_setup`
    for the parameters. Returns the exit code: 0 when stopped, 2 when the port is taken, 1 when
    the server did not start.
    """
    if not port_free(HOST, port):
        print(t("lab_port_in_use", lang, port=port), file=sys.stderr)
        return 2
    keep_state = state is not None
    setup = lab_setup(root, open_path, port, env, state=state)
    process = None
    with stops_on_interrupt():
        try:
            # its own session: Ctrl+C reaches crmkit only, which then stops the server cleanly
            # (Jupyter would otherwise stop to ask "Shutdown this Jupyter server (y/[n])?")
            process = subprocess.Popen(setup.argv, env=setup.env, cwd=root,
                                       start_new_session=True)
            if not wait_until_answering(process, HOST, port, timeout=START_TIMEOUT):
                exited = (f" (exit code {process.returncode})"
                          if process.poll() is not None else "")
                print(t("lab_no_answer", lang, port=port, seconds=f"{START_TIMEOUT:.0f}",
                        exited=exited), file=sys.stderr, flush=True)
                return 1
            print(t("lab_open_link", lang))
            print(setup.url)
            print(t("lab_stop_hint", lang), flush=True)
            process.wait()
            return 0
        except KeyboardInterrupt:
            return 0
        finally:
            if process is not None and process.poll() is None:
                process.terminate()  # SIGTERM: Jupyter shuts its kernels down and exits
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if not keep_state:
                shutil.rmtree(setup.state, ignore_errors=True)


def lab_command(args) -> int:
    """``crmkit lab [CLIENT_DIR] [--language en|es] [--port N]``; returns the exit code.

    Raises
    ------
    crmkit.core.problems.WorkspaceError
        The workspace is invalid (the command line prints the problems and exits 2).
    """
    from crmkit.delivery.runner import demo_client_dir
    from crmkit.inputs.workspace import load_workspace

    client = Path(args.client_dir) if args.client_dir is not None else demo_client_dir()
    if is_workshop_pack(client):
        lang = args.language or "en"
        exercises = sorted((client / "exercises").glob("*.ipynb"))
        open_path = (f"exercises/{exercises[0].name}" if exercises else "exercises")
        print(t("lab_workshop_opening", lang, folder=client), flush=True)
        return start_lab(client, open_path, args.port, lang=lang)
    ws = load_workspace(client)
    lang = args.language or ws.config.language
    if not port_free(HOST, args.port):  # before any copy is written
        print(t("lab_port_in_use", lang, port=args.port), file=sys.stderr)
        return 2
    folder = lab_folder(client)
    books = working_copies(client, lang, folder)
    print(t("lab_opening", lang, name=ws.config.name, slug=ws.slug, language=lang,
            folder=books),
          flush=True)
    code = start_lab(books, FIRST_WORKBOOK, args.port,
                     {ENV_CLIENT: str(Path(client).resolve()), ENV_LANGUAGE: lang},
                     lang=lang, state=folder / "jupyter")
    print(t("lab_stopped", lang, path=Path(client).resolve() / "client.yaml"), flush=True)
    return code
