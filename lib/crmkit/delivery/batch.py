"""``crmkit batch``: every client workspace under a folder, as Dask tasks, and the portfolio.

A consultancy reruns every client's strategy each quarter. ``crmkit batch CLIENTS_DIR`` finds
the workspaces (the subfolders holding a ``client.yaml``) and makes each one a task on Dask
distributed: a :class:`~distributed.LocalCluster` on this machine (``--workers N``, default one
per core, one thread each since a run is mostly its kernels), or an existing cluster
(``--scheduler ADDRESS``, see docs/cluster.md). Each task runs ``crmkit run`` for its client; the
run folders land in REPORTS_DIR as ``crmkit run`` writes them, and the batch ends with the
portfolio overview (:mod:`crmkit.delivery.portfolio`).

**A task runs** ``python -m crmkit run`` **in a child process**, not :func:`~crmkit.delivery.
runner.run_client` in the worker itself, because

- a run starts Jupyter kernels and Chromium. A worker process of a local cluster is a daemon
  process (``distributed.worker.daemon``), which may not start ``multiprocessing`` children;
  kernels are started with ``subprocess`` (allowed), but a run made in its own interpreter
  does not depend on that, nor on whatever an external cluster's workers were started with;
- a run that crashes (a kernel taking the memory, a segfault in a native library) kills that
  child only: the client is reported failed, the worker carries on with the next client;
- each run starts from a fresh interpreter (crmkit reads CRMKIT_HOME, the message catalogue and
  the papermill engine once per process), exactly as ``crmkit run`` by hand would;
- the run's own output (its check messages, the failed workbook's explanation) is captured for
  the summary and the overview instead of interleaving on the worker's log.

Failures are isolated: an invalid workspace (``crmkit run`` exits 2) or a failing workbook (exit
1) is reported and the other clients go on; a worker that dies while running a client fails
that client only (the local cluster does not retry it: a run that kills its worker would kill
the next one too). ``--resume`` skips a client whose latest run folder was made from its current
inputs (:func:`~crmkit.delivery.runner.unchanged_run`); the overview says "unchanged".

Exit codes: 0 every client done or unchanged; 1 any client failed or invalid; 2 the batch itself
cannot start (no CLIENTS_DIR, no workspace in it, a scheduler that does not answer).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from crmkit.core.i18n import t, tn

# crmkit.delivery.portfolio and .runner (pandas, pyarrow, papermill) are imported where they are
# used: a wrong CLIENTS_DIR or a scheduler that does not answer is said at once.

__all__ = ["BatchInputError", "batch_command", "find_workspaces", "run_one"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID_INPUT = 2
#: Seconds to wait for an existing scheduler (the whole command must give up within ten).
SCHEDULER_TIMEOUT = 5
#: Dask event topic on which a task says it has started (for the progress display).
TOPIC = "crmkit-batch"
#: Lines of a run's error output kept for the summary and the overview.
MESSAGE_LINES = 40
#: Environment variable naming clients (slugs, comma-separated) whose task kills its own Dask
#: worker process, as a crash would. For tests of the batch's failure isolation; never set it
#: otherwise (see also :data:`crmkit.delivery.runner.FAIL_ENV`, a failing workbook).
CRASH_ENV = "CRMKIT_TEST_CRASH_WORKER"
#: Files whose presence makes a subfolder a (possibly broken) client workspace even without its
#: client.yaml: it is then run, and reported invalid, rather than silently left out.
_DATA_STEMS = ("customers", "transactions")


class BatchInputError(Exception):
    """The batch cannot start; the message says what was found and what was expected."""


# ------------------------------------------------------------------------------------------
# finding the workspaces


def find_workspaces(clients_dir: str | Path, lang: str = "en") -> list[Path]:
    """The client workspaces under CLIENTS_DIR, by name.

    A workspace is a subfolder holding a ``client.yaml``; a subfolder holding a customers or
    transactions file but no client.yaml is one too (its run reports the missing file). Hidden
    folders, other folders (an archive, REPORTS_DIR) and plain files are left out.

    Parameters
    ----------
    clients_dir : path
    lang : {"en", "es"}
        The language of the error message.

    Raises
    ------
    BatchInputError
        CLIENTS_DIR is missing, is a file, is itself a workspace, or holds no workspace.
    """
    root = Path(clients_dir)
    if not root.exists():
        raise BatchInputError(t("batch_no_folder", lang, path=root))
    if not root.is_dir():
        raise BatchInputError(t("batch_not_folder", lang, path=root))
    if (root / "client.yaml").is_file():
        raise BatchInputError(t("batch_is_workspace", lang, path=root))
    found = []
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    for entry in entries:
        if not entry.is_dir():
            continue
        if (entry / "client.yaml").exists() or any(
                p.stem.lower() in _DATA_STEMS for p in entry.iterdir() if p.is_file()):
            found.append(entry.resolve())
    if not found:
        names = ", ".join(repr(p.name + ("/" if p.is_dir() else "")) for p in entries[:8])
        raise BatchInputError(t("batch_no_workspace", lang, path=root,
                                found=names or t("batch_found_nothing", lang)))
    return found


def _size(workspace: Path) -> int:
    """Bytes of a workspace's files: the biggest clients start first (the batch ends sooner)."""
    with contextlib.suppress(OSError):
        return sum(p.stat().st_size for p in workspace.iterdir() if p.is_file())
    return 0


# ------------------------------------------------------------------------------------------
# one client: the task a Dask worker runs


def _announce(slug: str) -> None:
    """Tell the batch that this client's run has started (the progress display counts it)."""
    try:
        from distributed import get_worker

        get_worker().log_event(TOPIC, {"slug": slug, "state": "running"})
    except ValueError:  # not in a Dask worker (called directly): nobody to tell
        pass


def _targets(variable: str) -> set[str]:
    return {slug.strip() for slug in os.environ.get(variable, "").split(",") if slug.strip()}


def _tail(text: str) -> str:
    """A run's error output, shortened: its first lines say what, its last where (a traceback)."""
    lines = text.strip().splitlines()
    if len(lines) > MESSAGE_LINES:
        half = MESSAGE_LINES // 2
        lines = [*lines[:half], "[…]", *lines[-half:]]
    return "\n".join(lines)


def _how(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-returncode).name}"
        return f"signal {-returncode}"
    return f"exit code {returncode}"


def run_one(client_dir: str, reports_dir: str, resume: bool = False, lang: str = "en") -> dict:
    """Run one client (the batch's task): ``crmkit run CLIENT_DIR --out REPORTS_DIR``.

    Parameters
    ----------
    client_dir, reports_dir : str
        Absolute paths, as the worker's machine sees them.
    resume : bool
        Do nothing when the client's latest run was made from its current inputs.
    lang : {"en", "es"}
        The language of the batch's own messages.

    Returns
    -------
    dict
        ``slug``, ``client_dir``, ``status`` (done, unchanged, failed or invalid), ``run`` (the
        run folder, the kept failed one, or None), ``message`` (why it failed, or what a done
        run still said: its report.pdf not written), ``seconds``, ``exit_code``.
    """
    from crmkit.delivery.runner import latest_run, unchanged_run

    started = time.perf_counter()
    slug = Path(client_dir).name
    _announce(slug)
    outcome = {"slug": slug, "client_dir": client_dir, "run": None, "message": "",
               "exit_code": 0}

    def finish(status: str, **values) -> dict:
        return {**outcome, "status": status, **values,
                "seconds": round(time.perf_counter() - started, 1)}

    if resume:
        run = unchanged_run(client_dir, reports_dir)
        if run is not None:
            return finish("unchanged", run=str(run))
    if slug in _targets(CRASH_ENV):
        os._exit(70)  # tests only: this worker process dies, as a crash would
    process = subprocess.run(
        [sys.executable, "-m", "crmkit", "run", client_dir, "--out", reports_dir, "--quiet"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    code = process.returncode
    if code == EXIT_OK:
        printed = [line for line in process.stdout.splitlines() if line.endswith("report.html")]
        run = Path(printed[-1]).parent if printed else latest_run(Path(reports_dir) / slug)
        # what a finished run still says (no PDF without a browser) reaches the overview
        return finish("done", run=str(run), message=_tail(process.stderr))
    if code == EXIT_INVALID_INPUT:
        return finish("invalid", exit_code=code, message=_tail(process.stderr))
    if code == EXIT_FAILED:
        kept = latest_run(Path(reports_dir) / slug)
        return finish("failed", exit_code=code, message=_tail(process.stderr),
                      run=str(kept) if kept is not None and kept.name.endswith("-failed")
                      else None)
    message = t("batch_crashed", lang, how=_how(code), client_dir=client_dir)
    if process.stderr.strip():
        message += "\n" + _tail(process.stderr)
    return finish("failed", exit_code=code, message=message)


# ------------------------------------------------------------------------------------------
# the cluster


def _probe(address: str, lang: str) -> None:
    """Fail fast when nothing listens at a TCP scheduler address.

    Importing distributed takes seconds on a busy machine; a refused connection is known at once
    and an unreachable host within :data:`SCHEDULER_TIMEOUT`, so the command gives up within ten
    seconds either way. Addresses of other transports are left to distributed.
    """
    scheme, _, rest = address.rpartition("://")
    host, _, port = rest.rpartition(":")
    if scheme not in ("", "tcp", "tls") or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=SCHEDULER_TIMEOUT
                                 ).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise BatchInputError(t("batch_no_scheduler", lang, address=address,
                                seconds=SCHEDULER_TIMEOUT, error=reason)) from None


def _remaining(seconds: float) -> float:
    """``seconds``, or less when this process has already used part of its ten seconds."""
    with contextlib.suppress(Exception):
        import psutil  # a dependency of distributed

        used = time.time() - psutil.Process().create_time()
        return max(1.0, min(seconds, 9.0 - used))
    return seconds


def _cores() -> int:
    """The cores this process may use (a container or taskset may allow fewer than exist)."""
    with contextlib.suppress(AttributeError, OSError):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@contextlib.contextmanager
def _connect(workers: int | None, scheduler: str | None, lang: str) -> Iterator[tuple]:
    """A Dask client on a local cluster or an existing scheduler, and a phrase naming it."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=_remaining(SCHEDULER_TIMEOUT))
        except (OSError, TimeoutError, ValueError) as error:  # refused, timed out, malformed
            raise BatchInputError(t("batch_no_scheduler", lang, address=scheduler,
                                    seconds=SCHEDULER_TIMEOUT, error=error)) from None
        except Exception as error:  # noqa: BLE001 - something answered, in another protocol
            raise BatchInputError(t("batch_not_scheduler", lang, address=scheduler,
                                    error=type(error).__name__)) from None
        try:
            yield client, t("batch_remote_cluster", lang, address=scheduler)
        finally:
            client.close()
        return
    count = workers or _cores()
    # A run that kills its worker is not retried: it would kill the next one too.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(n_workers=count, threads_per_worker=1, processes=True,
                               # no dashboard is needed, but the scheduler's HTTP server
                               # (health, metrics) starts anyway: on loopback, any free port
                               host="127.0.0.1", dashboard_address="127.0.0.1:0",
                               silence_logs=logging.CRITICAL)
    client = Client(cluster)
    try:
        yield client, t("batch_local_cluster", lang, workers=count)
    except BaseException:  # interrupted: stop the runs started, not only the workers
        _stop_runs(cluster)
        raise
    finally:
        client.close()
        cluster.close()


def _stop_runs(cluster) -> None:
    """End the ``crmkit run`` processes (and their kernels) the local workers started.

    Closing a cluster ends its worker processes but not their children: a run would go on in
    the background after Ctrl-C. Their staging folders are hidden, never taken for a run.
    """
    import psutil

    children = []
    for nanny in list(getattr(cluster, "workers", {}).values()):
        with contextlib.suppress(Exception):
            children += psutil.Process(nanny.pid).children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=5)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()


# ------------------------------------------------------------------------------------------
# the batch


class _Display:
    """Clients done, running, failed and waiting, on stderr (nothing with --quiet)."""

    def __init__(self, total: int, lang: str, enabled: bool):
        self.lang = lang
        self.total = total
        self.running: set[str] = set()
        self.finished: dict[str, str] = {}
        self.lock = threading.Lock()
        self.bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("crmkit batch"), BarColumn(),
                                TextColumn("{task.description}"), TimeElapsedColumn(),
                                console=Console(stderr=True))
            self.task = self.bar.add_task(self._text(), total=total)

    def _text(self) -> str:
        failed = sum(s in ("failed", "invalid") for s in self.finished.values())
        return t("batch_progress", self.lang, done=len(self.finished) - failed,
                 running=len(self.running), failed=failed,
                 waiting=self.total - len(self.finished) - len(self.running))

    def __enter__(self):
        if self.bar:
            self.bar.start()
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.stop()

    def started(self, event) -> None:
        """Dask event handler (runs on the client's event loop thread)."""
        _, message = event
        with self.lock:
            slug = message.get("slug")
            if slug not in self.finished:
                self.running.add(slug)
            self._refresh()

    def ended(self, outcome: dict) -> None:
        with self.lock:
            self.running.discard(outcome["slug"])
            self.finished[outcome["slug"]] = outcome["status"]
            self._refresh(advance=1)
            if self.bar:
                self.bar.console.print(_line(outcome, self.lang), markup=False,
                                       highlight=False)

    def _refresh(self, advance: int = 0) -> None:
        if self.bar:
            self.bar.update(self.task, description=self._text(), advance=advance)


def _line(outcome: dict, lang: str) -> str:
    status = outcome["status"]
    reason = (outcome.get("message") or "").strip().splitlines()
    values = {"slug": outcome["slug"], "seconds": f"{outcome.get('seconds') or 0:.0f}",
              "run": Path(outcome.get("run") or "").name, "reason": reason[0] if reason else ""}
    return t(f"batch_line_{status}", lang, **values)


def _first_sentence(error: BaseException) -> str:
    text = str(error).split(". ")[0].strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _capacity(client) -> int:
    """Clients run at once: one per worker thread the cluster has now (workers may join)."""
    with contextlib.suppress(Exception):
        return max(1, sum(client.nthreads().values()))
    return 1


def _run_all(client, workspaces: list[Path], reports_dir: Path, resume: bool, lang: str,
             display: _Display) -> list[dict]:
    """Submit every client as one task and collect the outcomes as they finish.

    A task is submitted only when a worker thread is free for it. Dask would otherwise place
    every client on a worker at once (tasks with no dependencies and different keys are not
    queued on the scheduler), and a worker that dies would take the clients merely waiting on it
    down with the one it was running. The biggest clients go first, so the batch ends sooner.
    """
    from distributed import as_completed

    client.subscribe_topic(TOPIC, display.started)
    waiting = sorted(workspaces, key=_size, reverse=True)
    futures: dict = {}
    submitted: dict = {}
    running = as_completed()

    def submit() -> None:
        workspace = waiting.pop(0)
        future = client.submit(run_one, str(workspace), str(reports_dir), resume, lang,
                               key=f"crmkit-run-{workspace.name}-{uuid.uuid4().hex[:8]}",
                               pure=False, retries=0)
        futures[future], submitted[future] = workspace, time.perf_counter()
        running.add(future)

    outcomes = []
    try:
        while waiting and len(futures) < _capacity(client):
            submit()
        for future in running:
            workspace = futures[future]
            try:
                outcome = future.result()
            except Exception as error:  # noqa: BLE001 - the worker died (KilledWorker) or the
                # scheduler went away: this client failed, the others go on
                outcome = {"slug": workspace.name, "client_dir": str(workspace),
                           "status": "failed", "run": None, "exit_code": None,
                           "seconds": round(time.perf_counter() - submitted[future], 1),
                           "message": t("batch_worker_lost", lang, client_dir=workspace,
                                        error=_first_sentence(error))}
            outcomes.append(outcome)
            display.ended(outcome)
            while waiting and len(futures) - len(outcomes) < _capacity(client):
                submit()
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        with contextlib.suppress(Exception):
            client.unsubscribe_topic(TOPIC)
    return sorted(outcomes, key=lambda o: o["slug"])


def _summary(outcomes: list[dict], seconds: float, overview: Path, lang: str) -> None:
    from crmkit.delivery import portfolio

    counts = {status: sum(o["status"] == status for o in outcomes)
              for status in portfolio.STATUSES}
    problems = [o for o in outcomes if o["status"] in ("failed", "invalid")]
    if problems:
        print(t("batch_summary_problems", lang), file=sys.stderr)
        for outcome in problems:
            print(f"\n{outcome['slug']} ({outcome['client_dir']}):", file=sys.stderr)
            text = outcome.get("message") or ""
            print("  " + text.strip().replace("\n", "\n  "), file=sys.stderr)
        print(file=sys.stderr)
    print(tn("batch_summary", len(outcomes), lang, total=len(outcomes), seconds=f"{seconds:.0f}",
             **counts))
    print(t("batch_summary_overview", lang, path=overview))


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def batch_command(args) -> int:
    """``crmkit batch CLIENTS_DIR``: run every client, write the overview; the exit code.

    Parameters
    ----------
    args : argparse.Namespace
        ``clients_dir``, ``out`` (REPORTS_DIR), ``workers`` (None: one per core),
        ``scheduler`` (None: a local cluster), ``resume``, ``language`` (of the overview and
        the batch's messages) and ``quiet``.

    Returns
    -------
    int
        0 every client done or unchanged, 1 any failed or invalid, 2 the batch could not start.
    """
    lang = getattr(args, "language", None) or "en"
    started = time.perf_counter()
    # a batch stopped by SIGTERM stops its runs too, as on Ctrl-C (see _connect)
    previous = signal.signal(signal.SIGTERM, _interrupt) \
        if threading.current_thread() is threading.main_thread() else None
    now = dt.datetime.now()
    try:
        workspaces = find_workspaces(args.clients_dir, lang)
        if args.workers is not None and args.workers < 1:
            raise BatchInputError(t("batch_bad_workers", lang, workers=args.workers))
        if args.workers is not None and args.scheduler:
            raise BatchInputError(t("batch_workers_and_scheduler", lang,
                                    workers=args.workers, address=args.scheduler))
        reports_dir = Path(args.out).resolve()
        if args.scheduler:
            _probe(args.scheduler, lang)
        with _connect(args.workers, args.scheduler, lang) as (client, where):
            reports_dir.mkdir(parents=True, exist_ok=True)
            if not args.quiet:
                print(t("batch_starting", lang, count=len(workspaces), where=where),
                      file=sys.stderr)
            with _Display(len(workspaces), lang, enabled=not args.quiet) as display:
                outcomes = _run_all(client, workspaces, reports_dir, args.resume, lang,
                                    display)
    except BatchInputError as error:
        print(error, file=sys.stderr)
        return EXIT_INVALID_INPUT
    except KeyboardInterrupt:
        print(t("batch_interrupted", lang), file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    from crmkit.delivery import portfolio

    overview, _ = portfolio.write_overview(outcomes, reports_dir, lang, generated=now,
                                           clients_dir=args.clients_dir)
    _summary(outcomes, time.perf_counter() - started, overview, lang)
    ok = all(o["status"] in ("done", "unchanged") for o in outcomes)
    return EXIT_OK if ok else EXIT_FAILED
