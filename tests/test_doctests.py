"""The one-line examples in docstrings are run, so they cannot drift from the code."""

import doctest
import importlib
import pkgutil

import pytest

import forensics
import router
import ui

MODULES = ["router", "forensics", "ui"] + sorted(
    info.name
    for package in (router, forensics, ui)
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
