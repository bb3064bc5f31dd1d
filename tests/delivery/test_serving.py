"""A served command stops on Ctrl+C even when it was started with SIGINT ignored."""

import signal
import subprocess
import sys
import time

import pytest

# What a shell without job control does to `crmkit lab &` (a script, a CI step): SIGINT ignored,
# so Python installs no handler of its own.
WAITS = """
import signal, sys, time
from crmkit.delivery.serving import stops_on_interrupt
assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
with stops_on_interrupt():
    try:
        print("serving", flush=True)
        time.sleep(60)
    except KeyboardInterrupt:
        print("stopped", flush=True)
print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN, flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_server_started_with_sigint_ignored_still_stops(signum):
    process = subprocess.Popen([sys.executable, "-c", WAITS], stdout=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert process.stdout.readline().strip() == "serving"
        started = time.monotonic()
        process.send_signal(signum)
        out, _ = process.communicate(timeout=20)
    finally:
        process.kill()
    assert time.monotonic() - started < 10
    assert out.split() == ["stopped", "True"]  # and the inherited disposition is put back
