"""Delivery: the workbook session, tables, charts, report, exports, runner, dashboard, CLI."""

import sys

#: The workbooks' sections of ``results.json``, in the consultant's order.
SECTIONS = ("context", "segments", "relationships", "cost_benefit", "implementation")

# nbformat (papermill's, the report's) and Jupyter's servers validate with jsonschema, whose
# format checkers import rfc3987_syntax when they load: it compiles some thirty Lark grammars,
# 1.5 s of every `crmkit run` before anything is read (python-jsonschema/jsonschema#1428, not
# fixed in 4.26). It only checks the "iri" formats, which no notebook or Jupyter schema uses;
# without it jsonschema leaves them unchecked, as it does wherever the package is not installed.
sys.modules.setdefault("rfc3987_syntax", None)
