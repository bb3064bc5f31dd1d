"""Two workbooks of one run in one kernel share the inputs read and the steps computed.

``crmkit run`` runs 04 after 03 in one kernel (``runner.SHARED_KERNELS``); 04 must then neither
read a second copy of the inputs nor compute the cost to serve again, and must never get what
another run, another language or changed settings computed.
"""

from __future__ import annotations

import pytest

from crmkit.delivery import steps as steps_module
from crmkit.delivery.workbook import open_workbook
from crmkit.inputs import cache
from crmkit.inputs.workspace import load_workspace


@pytest.fixture
def run(make_workspace, tmp_path):
    root = make_workspace()
    run_dir = tmp_path / "run"
    cache.save(load_workspace(root), run_dir)
    steps_module.forget()
    yield root, run_dir
    steps_module.forget()


def test_the_next_workbook_of_the_run_gets_the_same_frames_and_steps(run):
    root, run_dir = run
    first = open_workbook(root, run_dir, "en", section="relationships")
    cost = first.steps.cost
    second = open_workbook(root, run_dir, "en", section="cost_benefit")
    assert second.ws.transactions is first.ws.transactions  # not read again
    assert second.steps is first.steps and second.steps.cost is cost  # not computed again


def test_what_was_kept_is_dropped_when_the_kernel_forgets(run):
    root, run_dir = run
    first = open_workbook(root, run_dir, "en", section="relationships")
    assert first.steps.cost is not None
    steps_module.forget()  # what fresh_namespace does when the next workbook must wait
    second = open_workbook(root, run_dir, "en", section="cost_benefit")
    assert second.ws.transactions is not first.ws.transactions
    assert second.steps is not first.steps
    assert second.ws.transactions.equals(first.ws.transactions)


def test_another_language_other_settings_or_another_run_computes_anew(run, tmp_path):
    root, run_dir = run
    english = open_workbook(root, run_dir, "en", section="relationships").steps
    spanish = open_workbook(root, run_dir, "es", section="relationships").steps
    assert spanish is not english and spanish.lang == "es"

    config = root / "client.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("Acme", "Acme Two", 1),
                      encoding="utf-8")
    renamed = open_workbook(root, run_dir, "es", section="relationships")
    assert renamed.steps is not spanish  # client.yaml is read anew, and it changed

    other_run = tmp_path / "other-run"
    cache.save(load_workspace(root), other_run)
    again = open_workbook(root, other_run, "es", section="relationships")
    assert again.steps is not renamed.steps
    assert again.ws.transactions is not renamed.ws.transactions


def test_a_workbook_opened_without_a_run_keeps_nothing(run):
    root, _ = run
    first = open_workbook(root, None, "en", section="relationships").steps
    assert open_workbook(root, None, "en", section="relationships").steps is not first
    assert steps_module._kept is None
