"""Plug-in discovery: the modules that register extra tasks or cross-task modules are imported once.

A plug-in is a module that registers what it adds in the registries (a task: its head class in
:data:`egostream.tasks.base.TASKS` and its hooks in the registries of the layers above, see
:mod:`egostream.tasks.base`; a cross-task module: its class in :data:`egostream.crosstask.CROSS_TASK`). The command
line imports, before it reads its arguments, every module named by an ``egostream.plugins`` entry point of an
installed distribution and by the ``EGOSTREAM_PLUGINS`` environment variable (comma-separated module names).
Python code may simply import the plug-in module.
"""
from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

from egostream.errors import InputError

__all__ = ["ENTRY_POINT_GROUP", "ENVIRONMENT_VARIABLE", "load_plugins"]

ENTRY_POINT_GROUP = "egostream.plugins"
ENVIRONMENT_VARIABLE = "EGOSTREAM_PLUGINS"


def load_plugins() -> list[str]:
    """Import every plug-in module (entry points, then the environment variable); returns their names in order.

    Raises:
        InputError: a named module cannot be imported (naming it and where it was named).
    """
    named = [(point.value.partition(":")[0], f"entry point {point.name!r}")
             for point in entry_points(group=ENTRY_POINT_GROUP)]
    named += [(name.strip(), ENVIRONMENT_VARIABLE) for name in os.environ.get(ENVIRONMENT_VARIABLE, "").split(",")
              if name.strip()]
    for module, where in named:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise InputError(where, module, f"cannot import the plug-in module: {err}") from None
    return [module for module, _ in named]
