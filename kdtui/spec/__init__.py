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
are the package's public API (``from kdtui.spec import validate_spec``).
"""

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
