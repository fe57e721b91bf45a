"""Plugins: user code from outside the package that registers families, metrics, policies,
curation blocks, theory overlays or audit signals.

A plugin is a Python file or an importable module whose import registers entries with the
package's decorators (``@register`` for families and policies, ``@metric``, ``@overlay``,
audit ``@signal``); see ``examples/plugins/`` and the README's "Extending" section. Sources:

- ``modelcollapse --plugin FILE_OR_MODULE COMMAND ...`` (repeatable);
- the environment variable ``MODELCOLLAPSE_PLUGINS`` (entries separated by ``os.pathsep``),
  which ``--plugin`` extends so that worker processes of a sweep load the same plugins;
- installed packages that declare an entry point in the group ``modelcollapse.plugins``.

A plugin is code the user chose to run; nothing from a run folder, study or corpus is ever
loaded as a plugin.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

from .errors import UserError

ENV = "MODELCOLLAPSE_PLUGINS"
GROUP = "modelcollapse.plugins"
_loaded: set[str] = set()


def _module_name(path: Path) -> str:
    return "modelcollapse_plugin_" + "".join(c if c.isalnum() else "_" for c in str(path.resolve()))


def load(spec: str) -> None:
    """Import one plugin (a .py file or a module name) once per process."""
    spec = spec.strip()
    if not spec or spec in _loaded:
        return
    path = Path(spec)
    try:
        if spec.endswith(".py") or path.exists():
            if not path.is_file():
                raise UserError(f"plugin {spec}: no such file")
            name = _module_name(path)
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
        else:
            importlib.import_module(spec)
    except UserError:
        raise
    except ModuleNotFoundError as e:
        raise UserError(f"plugin {spec}: cannot import it ({e}); give a .py file or an "
                        f"importable module") from None
    except Exception as e:  # a plugin's own bug: name it, in one sentence
        raise UserError(f"plugin {spec}: failed while loading: {type(e).__name__}: {e}") from None
    _loaded.add(spec)


def configured() -> list[str]:
    """The plugins named in the environment (``MODELCOLLAPSE_PLUGINS``)."""
    return [s for s in os.environ.get(ENV, "").split(os.pathsep) if s.strip()]


def add(specs: list[str]) -> None:
    """Load ``specs`` and record them in the environment, for worker processes."""
    for spec in specs:
        load(spec)
    names = configured()
    names += [s for s in specs if s not in names]
    if names:
        os.environ[ENV] = os.pathsep.join(str(Path(s).resolve()) if Path(s).is_file() else s
                                          for s in names)


def load_all() -> None:
    """Load the environment's plugins and the installed entry points (idempotent)."""
    for spec in configured():
        load(spec)
    for ep in entry_points(group=GROUP):
        if ep.value in _loaded:
            continue
        try:
            ep.load()
        except Exception as e:
            raise UserError(f"plugin entry point {ep.name} ({ep.value}): failed while "
                            f"loading: {type(e).__name__}: {e}") from None
        _loaded.add(ep.value)
