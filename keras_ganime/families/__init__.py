"""The registry of model families: name -> spec (no TensorFlow), and the family class on demand.

`model.family` names one. A family outside this package (a test's, a user's) registers its spec
with `register` before its settings are read.
"""

from __future__ import annotations

import importlib

from keras_ganime.families import began_settings, dcgan_settings, stylegan_settings
from keras_ganime.families.base import Family, FamilySpec

SPECS: dict[str, FamilySpec] = {}


def register(spec: FamilySpec) -> None:
    SPECS[spec.name] = spec


def load(name: str) -> type[Family]:
    """The `Family` class of a registered family (this imports TensorFlow)."""
    return importlib.import_module(SPECS[name].module).Family


register(dcgan_settings.SPEC)
register(began_settings.SPEC)
register(stylegan_settings.SPEC)
