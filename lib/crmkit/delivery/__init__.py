"""Delivery: the workbook session, tables, charts, report, exports, runner, dashboard, CLI."""

#: The workbooks' sections of ``results.json``, in the consultant's order.
SECTIONS = ("context", "segments", "relationships", "cost_benefit", "implementation")
