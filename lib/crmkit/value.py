"""The public face of the customer-base models: ``from crmkit.value import BetaGeo, GammaGamma``.

The models live in :mod:`crmkit.analysis.value`; this name is kept for the workbooks' readers and
the README.
"""

from crmkit.analysis.value import *  # noqa: F403
from crmkit.analysis.value import __all__  # noqa: F401
