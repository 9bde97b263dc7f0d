"""The exception tree: one root, every public error importable from the package."""

from __future__ import annotations

import inspect

import rasa_rpa
from rasa_rpa import errors


def test_the_package_exports_every_public_exception():
    tree = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and issubclass(value, errors.RpaError)
        and not name.startswith("_")
    }
    assert tree == set(errors.__all__)  # errors.py's own list is complete too
    assert tree <= set(rasa_rpa.__all__), sorted(tree - set(rasa_rpa.__all__))
    for name in tree:
        assert getattr(rasa_rpa, name) is getattr(errors, name)
