"""Every registered entry in one place: importing this module registers the package's
families, metrics, policies and curation policies (plugins from outside the package are
loaded by :mod:`modelcollapse.plugins`).

Registration runs one way: each entry's module imports the base it registers with, and only
this module imports the entries. Code that looks entries up by name (the loop, the study
layer, the CLI) imports the registries from here, so no base module has to import its
entries at its bottom (the import cycle this replaces).
"""

from __future__ import annotations

from . import metrics as _metrics  # noqa: F401  (registration)
from . import families as _families  # noqa: F401  (registration)
from .curation import curated as _curated  # noqa: F401  (registration)
from .curation import verified as _verified  # noqa: F401  (registration)
from .metrics.base import METRICS
from .families.base import FAMILIES
from .policies import POLICIES
from .plugins import load_all

load_all()   # MODELCOLLAPSE_PLUGINS and installed entry points (group modelcollapse.plugins)

__all__ = ["FAMILIES", "METRICS", "POLICIES"]
