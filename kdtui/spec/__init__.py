"""Experiment specs: what a researcher writes, checked before anything runs.

One module per job, so that a change has one place to go:

- ``fields``    the strict base model and shared field types (names, seeds)
- ``terms``     the loss terms, declared once; ``LossSpec`` is derived from them
- ``models``    the other pydantic models, up to ``Experiment``
- ``problems``  ``Problem``, ``SpecError`` and pydantic's errors in words, at their JSON paths
- ``validate``  loading and validating a file; ``checks`` the checks across fields, files
                and the store
- ``npz``       what an .npz must hold, checked alike by validation and the engine's loader
- ``arch``      Wide ResNet shape maths, shared with the engine's networks (no torch)
- ``datasets``  what is known of the datasets without reading them
- ``keys``      group keys and canonical JSON
- ``schema``    the JSON Schema (``kdtui schema``)

Nothing here imports torch: the CLI and the TUI validate specs without it. The names below
are the package's public API (``from kdtui.spec import validate_spec``). Each is loaded with
its module when first asked for, not when the package is imported: an engine that needs the
models pays neither for validation's checks nor for the JSON Schema (``json_schema``: only
``kdtui schema`` asks for it), and ``kdtui.spec.npz``, ``arch``, ``datasets`` and
``checkpoint`` import without pydantic.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names as editors and import-linter see them
    from kdtui.spec.checks import StoreGroup, StoreLookup
    from kdtui.spec.datasets import (
        CIFAR10_LAYOUT,
        IMAGE_DATASETS,
        IMAGE_FOLDER_LAYOUT,
        KNOWN_CHANNELS,
        KNOWN_IMAGE_SIDES,
        KNOWN_LENGTHS,
    )
    from kdtui.spec.fields import NAME_PATTERN, Name
    from kdtui.spec.keys import NOT_IN_GROUP_KEY, canonical_json, group_key
    from kdtui.spec.models import (
        AugmentSpec,
        BasicMotionsData,
        Cifar10Data,
        ConstantSchedule,
        CosineSchedule,
        CutMixSpec,
        DataSpec,
        Experiment,
        GafView,
        ImageFolderData,
        ImageView,
        MixupSpec,
        ModelSpec,
        MtfView,
        NpzData,
        OptimSpec,
        RpView,
        ScheduleSpec,
        SignalView,
        SpecFile,
        StepSchedule,
        SyntheticHarData,
        TeacherSpec,
        ViewKind,
        ViewSpec,
    )
    from kdtui.spec.npz import NPZ_KEYS, NPZ_LAYOUT, NpzSummary, check_npz, npz_labels
    from kdtui.spec.problems import Problem, SpecError
    from kdtui.spec.schema import json_schema
    from kdtui.spec.terms import (
        FEATURE_TERMS,
        TEACHER_TERMS,
        TERMS,
        AMCTerm,
        AMDTerm,
        ATTerm,
        DASKTerm,
        KDTerm,
        LossSpec,
        SPTerm,
        TermInfo,
    )
    from kdtui.spec.validate import LoadedSpec, load_spec, read_spec_file, validate_spec

#: Where each public name lives (PEP 562: loaded by ``__getattr__`` on first use).
_EXPORTS: dict[str, tuple[str, ...]] = {
    "checks": ("StoreGroup", "StoreLookup"),
    "datasets": (
        "CIFAR10_LAYOUT",
        "IMAGE_DATASETS",
        "IMAGE_FOLDER_LAYOUT",
        "KNOWN_CHANNELS",
        "KNOWN_IMAGE_SIDES",
        "KNOWN_LENGTHS",
    ),
    "fields": ("NAME_PATTERN", "Name"),
    "keys": ("NOT_IN_GROUP_KEY", "canonical_json", "group_key"),
    "models": (
        "AugmentSpec",
        "BasicMotionsData",
        "Cifar10Data",
        "ConstantSchedule",
        "CosineSchedule",
        "CutMixSpec",
        "DataSpec",
        "Experiment",
        "GafView",
        "ImageFolderData",
        "ImageView",
        "MixupSpec",
        "ModelSpec",
        "MtfView",
        "NpzData",
        "OptimSpec",
        "RpView",
        "ScheduleSpec",
        "SignalView",
        "SpecFile",
        "StepSchedule",
        "SyntheticHarData",
        "TeacherSpec",
        "ViewKind",
        "ViewSpec",
    ),
    "npz": ("NPZ_KEYS", "NPZ_LAYOUT", "NpzSummary", "check_npz", "npz_labels"),
    "problems": ("Problem", "SpecError"),
    "schema": ("json_schema",),
    "terms": (
        "FEATURE_TERMS",
        "TEACHER_TERMS",
        "TERMS",
        "AMCTerm",
        "AMDTerm",
        "ATTerm",
        "DASKTerm",
        "KDTerm",
        "LossSpec",
        "SPTerm",
        "TermInfo",
    ),
    "validate": ("LoadedSpec", "load_spec", "read_spec_file", "validate_spec"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "AMCTerm",
    "AMDTerm",
    "ATTerm",
    "AugmentSpec",
    "BasicMotionsData",
    "CIFAR10_LAYOUT",
    "Cifar10Data",
    "ConstantSchedule",
    "CosineSchedule",
    "CutMixSpec",
    "DASKTerm",
    "DataSpec",
    "Experiment",
    "FEATURE_TERMS",
    "GafView",
    "IMAGE_DATASETS",
    "IMAGE_FOLDER_LAYOUT",
    "ImageFolderData",
    "ImageView",
    "KDTerm",
    "KNOWN_CHANNELS",
    "KNOWN_IMAGE_SIDES",
    "KNOWN_LENGTHS",
    "LoadedSpec",
    "LossSpec",
    "MixupSpec",
    "ModelSpec",
    "MtfView",
    "NAME_PATTERN",
    "NOT_IN_GROUP_KEY",
    "NPZ_KEYS",
    "NPZ_LAYOUT",
    "Name",
    "NpzData",
    "NpzSummary",
    "OptimSpec",
    "Problem",
    "RpView",
    "SPTerm",
    "ScheduleSpec",
    "SignalView",
    "SpecError",
    "SpecFile",
    "StepSchedule",
    "StoreGroup",
    "StoreLookup",
    "SyntheticHarData",
    "TEACHER_TERMS",
    "TERMS",
    "TeacherSpec",
    "TermInfo",
    "ViewKind",
    "ViewSpec",
    "canonical_json",
    "check_npz",
    "group_key",
    "json_schema",
    "load_spec",
    "npz_labels",
    "read_spec_file",
    "validate_spec",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use and kept here; a submodule
    (``kdtui.spec.study``) is imported too, as an eager package would have made it an
    attribute."""
    module = _HOME.get(name)
    if module is None:
        if name.startswith("_") or importlib.util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return importlib.import_module(f"{__name__}.{name}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
