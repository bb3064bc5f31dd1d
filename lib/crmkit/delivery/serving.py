"""Serving a page on this machine: a free port, and a link printed only once the server answers.

Shared by ``crmkit dashboard`` (Voila) and ``crmkit lab`` (JupyterLab): both start a server as a
child process and must not print its link before it accepts connections, or a user who clicks at
once gets "connection refused".
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
from collections.abc import Iterator

#: How long a server may take to answer before the command gives up (seconds).
START_TIMEOUT = 120.0


def port_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be listened on now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def answering(host: str, port: int, timeout: float = 2.0) -> bool:
    """Whether an HTTP server answers on ``host:port`` now (any status counts: it is up)."""
    import http.client

    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", "/login")
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return True


def wait_until_answering(process: subprocess.Popen, host: str, port: int,
                         timeout: float = START_TIMEOUT) -> bool:
    """Wait until the server answers HTTP on ``host:port``; False if it exits or times out.

    The link is printed only after this, so that a client clicking it at once does not get
    "connection refused" (Voila needs a few seconds to start).
    """
    import time

    probe = "127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if answering(probe, port):
            return True
        time.sleep(0.2)
    return False


@contextlib.contextmanager
def stops_on_interrupt() -> Iterator[None]:
    """Within it, Ctrl+C (SIGINT) and SIGTERM both raise KeyboardInterrupt, in the main thread.

    SIGINT explicitly too: a process started in the background by a shell without job control
    (``cmd &`` in a script, a CI step) inherits SIGINT *ignored*, and Python then installs no
    handler, so the server it started would never be told to stop and would outlive it. Both
    handlers are put back on the way out; off the main thread nothing changes.
    """
    previous = {}
    with contextlib.suppress(ValueError):  # signals can only be set in the main thread
        for signum, handler in ((signal.SIGINT, signal.default_int_handler),
                                (signal.SIGTERM, _raise_interrupt)):
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt
