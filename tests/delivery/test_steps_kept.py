"""Two workbooks of one run in one kernel share the inputs read and the steps computed.

``crmkit run`` runs 04 after 03 in one kernel (``runner.SHARED_KERNELS``); 04 must then neither
read a second copy of the inputs nor compute the cost to serve again, and must never get what
another run, another language or changed settings computed.
"""

from __future__ import annotations

import pytest

from crmkit.analysis import segmentation
from crmkit.delivery import steps as steps_module
from crmkit.delivery.workbook import open_workbook
from crmkit.inputs import cache, occasions
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


def test_the_indicators_are_counted_once_per_run_and_03_never_reads_the_transactions(run):
    root, run_dir = run
    context_book = open_workbook(root, run_dir, "en", section="context")
    counted = context_book.steps.indicators
    assert (run_dir / steps_module.INDICATORS).is_file()
    steps_module.forget()  # the next workbook runs in another kernel: 02, which segments
    segments = open_workbook(root, run_dir, "en", section="segments")
    segmentation.save_table(segmentation.segment_customers(segments.ws, "en", segments.config),
                            segments.table_path("customers"))
    steps_module.forget()
    later = open_workbook(root, run_dir, "en", section="relationships")
    assert later.steps.economics is not None  # its verdicts serve 01's objective
    assert repr(later.steps.indicators) == repr(counted)  # every figure, to the last bit
    assert "transactions" not in later.ws.tables.read  # never loaded in this kernel
    assert later.steps.objective.chosen == context_book.steps.objective.chosen


def test_workbook_01_reads_only_the_columns_occasions_are_made_of(run):
    """Workbook 01 counts occasions and nothing else of the lines: its kernel reads those
    columns of the transactions alone (a big client's memory), the figures those of the whole
    table; a later whole read serves both."""
    import pandas as pd

    from crmkit.analysis import context

    root, run_dir = run
    book = open_workbook(root, run_dir, "en", section="context")
    counted = book.steps.indicators
    monthly = context.monthly_activity(book.ws.occasion_lines, book.ws.as_of)
    assert "transactions" not in book.ws.tables.read  # the whole table was never read
    lines = book.ws.tables.lines
    assert list(lines.columns) == ["customer_id", "date", "amount", occasions.CUSTOMER_CODES]
    whole = load_workspace(root)
    pd.testing.assert_frame_equal(monthly, context.monthly_activity(whole.transactions,
                                                                    whole.as_of))
    assert repr(counted) == repr(context.indicators(
        whole.customers, whole.transactions, whole.as_of,
        window_months=book.config.assumptions.window_months,
        lapse_days=book.config.assumptions.lapse_days, survey=whole.survey))
    full = book.ws.transactions  # 05, later in the same kernel, reads every column
    assert book.ws.tables.lines is None and "product" in full.columns
    assert book.ws.occasion_lines.columns.tolist() == list(lines.columns)
    assert book.ws.occasion_lines["amount"].equals(full["amount"])


def test_the_customers_are_numbered_once_per_run_not_once_per_kernel(run, monkeypatch):
    """``crmkit run`` keeps the numbering its checks made (each line's customer among the sorted
    ids) with the inputs; a kernel's transactions carry it without numbering them again, equal
    to what numbering them would give, while a workspace's own frame shows the client's columns
    only."""
    import pandas as pd
    import pyarrow.parquet as pq

    root, run_dir = run
    whole = load_workspace(root)
    assert occasions.CUSTOMER_CODES not in whole.transactions.columns
    assert list(whole.customer_numbering.categories) == sorted(set(whole.transactions[
        "customer_id"]))
    stored = pq.read_schema(run_dir / cache.INPUTS_DIR / "transactions.parquet")
    assert str(stored.field(occasions.CUSTOMER_CODES).type) == "int32"

    def never(*_):
        raise AssertionError("the kernel numbered the customers again")

    monkeypatch.setattr(occasions, "customer_numbering", never)
    for read in ("occasion_lines", "transactions"):  # 01's columns, then 05's whole table
        cache.forget()
        lines = getattr(cache.load(root, run_dir), read)
        numbered = lines[occasions.CUSTOMER_CODES]
        expected = pd.Categorical(whole.transactions["customer_id"],
                                  categories=sorted(set(whole.transactions["customer_id"])))
        pd.testing.assert_extension_array_equal(numbered.array, expected)
        pd.testing.assert_index_equal(numbered.cat.categories, whole.customer_numbering.categories)
    cache.forget()


def test_kept_indicators_of_another_window_are_not_used(run):
    root, run_dir = run
    twelve = open_workbook(root, run_dir, "en", section="context").steps.indicators
    steps_module.forget()
    config = root / "client.yaml"
    config.write_text(config.read_text(encoding="utf-8")
                      + "assumptions:\n  window_months: 6\n", encoding="utf-8")
    six = open_workbook(root, run_dir, "en", section="context").steps.indicators
    assert (twelve.window_months, six.window_months) == (12, 6)


def test_a_finished_run_folder_is_never_written_to(run):
    root, run_dir = run
    (run_dir / "run.json").write_text("{}", encoding="utf-8")
    assert open_workbook(root, run_dir, "en", section="context").steps.indicators.customers == 3
    assert not (run_dir / steps_module.INDICATORS).exists()


def test_kept_indicators_keep_nan_and_every_bit():
    import dataclasses
    import datetime as dt
    import json
    import math

    from crmkit.analysis.context import Indicators

    ind = Indicators(as_of=dt.date(2024, 3, 31), window_months=12, customers=3, buyers=3,
                     active_customers=2, new_customers=None, new_customer_rate=None,
                     repeat_rate=1 / 3, lapse_rate=0.1 + 0.2, lapsed_share=float("nan"),
                     top20_revenue_share=2 / 7, revenue_window=165.75,
                     revenue_previous_window=None, revenue_growth=None,
                     average_order_value=55.25, orders_per_active_customer=1.5,
                     satisfaction_top_two_box=None, data_start=dt.date(2024, 1, 5),
                     coverage={"window": 0.25, "previous_window": 0.0},
                     not_covered={"revenue_growth": "previous_window"})
    back = Indicators.from_dict(json.loads(json.dumps(ind.as_dict(), allow_nan=True)))
    assert math.isnan(back.lapsed_share)
    assert dataclasses.replace(back, lapsed_share=0.0) == dataclasses.replace(ind,
                                                                              lapsed_share=0.0)
    assert back.lapse_rate == 0.1 + 0.2 and back.data_start == dt.date(2024, 1, 5)
