"""crmkit: the library behind the CRM strategy workbook.

Every computation, validation, chart and widget of the workbooks lives here; the notebooks in
``workbooks/`` only call it and explain the results to the client.
"""

__version__ = "0.1.0"
