"""Loss terms: each declared once, here, and everything else on the spec side derived from it.

A term is a parameter class (its fields, their literature defaults and descriptions, its label
for tables) registered with ``@loss_term``, which records the ``LossSpec`` key and what the
term needs: a teacher (KD, AT, SP, AMD, DASK) or the student alone (AMC), feature groups or
not. ``LossSpec``'s fields, ``TEACHER_TERMS``, ``FEATURE_TERMS``, the JSON Schema, the
composer's form, the "did you mean" field names and the group key all follow from
``TERMS``. Adding a term therefore takes one class here (plus its loss function and its
place in the objective on the engine side).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from pydantic import AfterValidator, Field, create_model

from kdtui.spec.fields import Strict


@dataclass(frozen=True)
class TermInfo:
    """What the spec knows of a loss term besides its parameters."""

    key: str  # the LossSpec field, and the objective's name for the term
    spec: type[Strict]  # its parameters
    summary: str  # LossSpec's description of the field (schema, composer)
    teacher: bool  # compares the student with each teacher, scaled by the teacher's weight
    features: bool  # on pairs of feature groups: checked against both models' groups
    first_release: bool  # in the group key as null even when unset (kept: keys stay stable)


#: Every term, in the order of the objective and of labels.
TERMS: dict[str, TermInfo] = {}

_T = TypeVar("_T", bound=type[Strict])


def loss_term(
    key: str, summary: str, *, teacher: bool, features: bool = False, first_release: bool = False
) -> Callable[[_T], _T]:
    """Register a term's parameter class under ``key`` (see the module docstring)."""

    def register(cls: _T) -> _T:
        if key in TERMS:
            raise ValueError(f"loss term {key!r} is declared twice")
        TERMS[key] = TermInfo(key, cls, summary, teacher, features, first_release)
        return cls

    return register


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


@loss_term("kd", "Hinton KD on the logits.", teacher=True, first_release=True)
class KDTerm(Strict):
    """Hinton knowledge distillation: KL between softened outputs, times T²."""

    weight: float = Field(1.0, ge=0)
    T: float = Field(4.0, gt=0, description="Softmax temperature.")

    def label(self) -> str:
        return f"KD(T={self.T:g},w={self.weight:g})"


@loss_term("at", "Attention Transfer on feature groups.", teacher=True, features=True)
class ATTerm(Strict):
    """Attention Transfer (Zagoruyko & Komodakis 2017): weight · Σ_groups at_loss."""

    weight: float = Field(
        1000.0,
        ge=0,
        description="β: 1000 as in the paper, its code and RepDistiller (the paper writes β/2 "
        "in front of the sum; the authors' code multiplies by β, as kdtui does).",
    )
    p: float = Field(2.0, gt=0, description="Attention map = mean over channels of |f|^p.")
    groups: Groups = Field(default_factory=lambda: [0, 1, 2])

    def label(self) -> str:
        return f"AT(p={self.p:g},w={self.weight:g},{_groups_label(self.groups)})"


@loss_term(
    "sp", "Similarity-Preserving KD on feature groups.", teacher=True, features=True
)  # fmt: skip
class SPTerm(Strict):
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


@loss_term("amd", "Angular Margin Distillation (g or g+l).", teacher=True, features=True)
class AMDTerm(Strict):
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


@loss_term("dask", "Distance + angle-wise semantic knowledge.", teacher=True)
class DASKTerm(Strict):
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


@loss_term("amc", "Angular margin contrastive (student-side).", teacher=False)
class AMCTerm(Strict):
    """Angular Margin Contrastive loss (Choi, Som & Turaga 2020), on the student's embedding
    alone: needs no teacher. Uses hard labels (under Mixup / CutMix: each sample's majority
    label)."""

    weight: float = Field(
        0.1,
        ge=0,
        description="0.1 as in the authors' code, which ramps this weight up over training; "
        "kdtui keeps it constant.",
    )
    margin: float = Field(0.5, gt=0, description="Geodesic margin for different-class pairs.")

    def label(self) -> str:
        return f"AMC(m={self.margin:g},w={self.weight:g})"


#: Terms that compare the student with each teacher, in the order of the objective.
TEACHER_TERMS = tuple(key for key, term in TERMS.items() if term.teacher)
#: Teacher-side terms on pairs of feature groups.
FEATURE_TERMS = tuple(key for key, term in TERMS.items() if term.features)
#: Terms added after the first release: in a group key only when set.
LATER_TERMS = tuple(key for key, term in TERMS.items() if not term.first_release)


class _LossBase(Strict):
    """A weighted sum of named terms. Teacher-side terms are summed over teachers, each
    scaled by that teacher's `weight`; feature terms are summed over their groups."""

    ce: float = Field(
        1.0, ge=0, description="Weight of cross-entropy with the (mixed, under Mixup) labels."
    )

    def teacher_terms(self) -> list[str]:
        """Names of the enabled terms that need a teacher."""
        return [name for name in TEACHER_TERMS if getattr(self, name) is not None]

    def terms(self) -> list[str]:
        """Names of every enabled term besides CE, teacher-side terms first."""
        student_side = [k for k in TERMS if k not in TEACHER_TERMS and getattr(self, k) is not None]
        return [*self.teacher_terms(), *student_side]

    def label(self) -> str:
        """Short display form, e.g. ``CE+KD(T=4,w=0.7)``."""
        parts = ["CE"] if self.ce else []
        parts += [getattr(self, name).label() for name in self.terms()]
        return "+".join(parts) or "-"


#: ``ce`` plus one optional field per registered term (None: the term is off).
LossSpec = create_model(
    "LossSpec",
    __base__=_LossBase,
    __module__=__name__,
    __doc__=_LossBase.__doc__,
    **{
        key: (term.spec | None, Field(None, description=term.summary))
        for key, term in TERMS.items()
    },  # type: ignore[call-overload]
)
