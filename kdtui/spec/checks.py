"""Checks that need more than one field: other experiments of the file, the data and
checkpoint files, and the groups already in the store. Each returns its problems, at the
JSON path of the field the user has to change; none raises.

Every check here costs O(1) per experiment (a file is read once, whatever the number of
experiments that name it), so that a study of thousands of experiments checks in linear time.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kdtui.spec import arch
from kdtui.spec.checkpoint import checkpoint_problem
from kdtui.spec.datasets import (
    CIFAR10_LAYOUT,
    IMAGE_DATASETS,
    IMAGE_FOLDER_LAYOUT,
    KNOWN_CHANNELS,
    KNOWN_IMAGE_SIDES,
    KNOWN_LENGTHS,
)
from kdtui.spec.keys import without_neutral
from kdtui.spec.models import Experiment, ModelSpec, NpzData, TeacherSpec
from kdtui.spec.npz import NPZ_LAYOUT, NpzSummary, check_npz
from kdtui.spec.problems import Problem
from kdtui.spec.terms import FEATURE_TERMS


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
class FileContext:
    """What the checks of one experiment need to know of the rest of the file."""

    parsed: dict[int, Experiment]  # the experiments that parsed, by position
    names_in_file: dict[str, int]  # their names → position
    raw_names: dict[Any, int]  # every item's "name", parsed or not → position
    base_dir: Path  # relative paths are relative to it
    store_lookup: StoreLookup | None
    store_refs: dict[str, StoreGroup] = field(default_factory=dict)  # filled as refs resolve


def under(at: str, path: str) -> str:
    """``path`` below the JSON path ``at`` ("" for a lone experiment)."""
    return f"{at}.{path}" if at else path


# --------------------------------------------------------------------------- experiments


def experiment_problems(exp: Experiment, at: str, ctx: FileContext) -> list[Problem]:
    """Every check of one parsed experiment at JSON path ``at``."""
    said = exp.data.model_dump(exclude_unset=True)  # a layout left out is checked
    out = _data_path_problems(said, ctx.base_dir, under(at, "data.path"))
    n_channels, length, source = _data_sizes(exp, ctx.base_dir)
    channels = getattr(exp.data, "channels", None)  # image datasets have no channel choice
    out += list_problems(channels, under(at, "data.channels"), "channel", n_channels, source)
    out += _image_size_problems(exp.student, length, under(at, "student"))
    out += list_problems(exp.seeds, under(at, "seeds"), "seed")
    out += _schedule_problems(exp, at)
    out += _loss_problems(exp, at)
    out += _teacher_problems(exp, at, ctx, length)
    # Teachers by reference are checked as the student of their own experiment.
    readers = [(under(at, "student"), exp.student)] + [
        (under(at, f"teachers[{j}].model"), t.model)
        for j, t in enumerate(exp.teachers)
        if t.checkpoint is not None and t.model is not None
    ]
    for where, model in readers:
        out += _view_problems(exp.data.dataset, model, where)
    side = KNOWN_IMAGE_SIDES.get(exp.data.dataset, length)
    out += _feature_problems(exp, under(at, "loss"), side)
    return out


def _data_sizes(exp: Experiment, base_dir: Path) -> tuple[int | None, int | None, str]:
    """Channels and series length of the experiment's data where known before loading it,
    and the name to call the data by."""
    n_channels = KNOWN_CHANNELS.get(exp.data.dataset)
    length = KNOWN_LENGTHS.get(exp.data.dataset)
    if exp.data.dataset == "synthetic-har":
        return n_channels, exp.data.length, exp.data.dataset
    if isinstance(exp.data, NpzData):
        # The file's own sizes, so that channels and image sizes are checked as for the
        # built-in sets (an unreadable file was reported already and gives None here).
        full = (base_dir / exp.data.path).expanduser()
        layout = exp.data.said_layout()
        npz = check_npz(full, layout) if full.is_file() else NpzSummary(())
        return npz.channels, npz.length, str(full)
    return n_channels, length, exp.data.dataset


def _schedule_problems(exp: Experiment, at: str) -> list[Problem]:
    milestones = getattr(exp.schedule, "milestones", None)
    if milestones and milestones[-1] > exp.epochs:
        return [
            Problem(
                under(at, "schedule.milestones"),
                f"milestone {milestones[-1]} is past the last epoch ({exp.epochs})",
            )
        ]
    return []


def _loss_problems(exp: Experiment, at: str) -> list[Problem]:
    out = []
    terms = exp.loss.teacher_terms()
    if terms and not exp.teachers:
        out.append(Problem(under(at, "loss"), f"{', '.join(terms)} needs at least one teacher"))
    if exp.teachers and not terms:
        out.append(
            Problem(
                under(at, "teachers"),
                "teachers are given but no loss term uses them (add e.g. loss.kd)",
            )
        )
    if not exp.loss.ce and not exp.loss.terms():
        out.append(Problem(under(at, "loss"), "every loss weight is 0: nothing to train"))
    return out


def _teacher_problems(
    exp: Experiment, at: str, ctx: FileContext, length: int | None
) -> list[Problem]:
    out: list[Problem] = []
    for j, teacher in enumerate(exp.teachers):
        tp = under(at, f"teachers[{j}]")
        if teacher.checkpoint is not None:
            out.extend(_checkpoint_problems(teacher, ctx.base_dir, tp))
        else:
            out.extend(_reference_problems(exp, teacher, tp, ctx))
        if teacher.model is not None:
            out.extend(_image_size_problems(teacher.model, length, f"{tp}.model"))
    return out


# --------------------------------------------------------------------------- files


def missing_file(path: str, base_dir: Path, at: str) -> list[Problem]:
    full = (base_dir / path).expanduser()
    return [] if full.is_file() else [Problem(at, f"no such file: {full}")]


def _data_path_problems(data: dict[str, Any], base_dir: Path, at: str) -> list[Problem]:
    """The dataset's file or folder must exist, so that no run is queued in vain."""
    kind, path = data.get("dataset"), data.get("path")
    if not isinstance(path, str):
        return []
    if kind == "npz":
        if missing := missing_file(path, base_dir, at):
            return missing
        full = (base_dir / path).expanduser()
        axes = data.get("layout") if data.get("layout") in ("NCL", "NLC") else None
        whys = check_npz(full, axes).problems  # the expected layout once, after the last
        return [
            Problem(at, f"{full}: {why}" + (f"; {NPZ_LAYOUT}" if i == len(whys) - 1 else ""))
            for i, why in enumerate(whys)
        ]
    if kind in IMAGE_DATASETS:
        full = (base_dir / path).expanduser()
        layout = CIFAR10_LAYOUT if kind == "cifar10" else IMAGE_FOLDER_LAYOUT
        return [] if full.is_dir() else [Problem(at, f"no such folder: {full}; {layout}")]
    return []


def _checkpoint_problems(teacher: TeacherSpec, base_dir: Path, at: str) -> list[Problem]:
    if missing := missing_file(str(teacher.checkpoint), base_dir, f"{at}.checkpoint"):
        return missing
    ckpt = (base_dir / str(teacher.checkpoint)).expanduser()
    if why := checkpoint_problem(ckpt):
        return [Problem(f"{at}.checkpoint", why)]
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


# --------------------------------------------------------------------------- lists and sizes


def all_ints(value: Any) -> bool:
    return isinstance(value, list) and all(type(v) is int for v in value)


def list_problems(
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


def _view_problems(dataset: str, model: ModelSpec, at: str) -> list[Problem]:
    images = dataset in IMAGE_DATASETS
    if images == (model.view.kind == "image"):
        return []
    if images:
        why = f'{dataset} holds images: {model.label()} must read them with the "image" view'
    else:
        why = f'{model.label()}: the "image" view needs an image dataset ({", ".join(IMAGE_DATASETS)}), and {dataset} holds signals'
    return [Problem(f"{at}.view", why)]


# --------------------------------------------------------------------------- feature terms


def _group_shape(model: ModelSpec, size: int | None, group: int) -> tuple[int, ...] | None:
    """Spatial shape of a group's output for data of series length or image side ``size``
    (a transformed view has its own image size). None when the input size is unknown."""
    side = getattr(model.view, "image_size", None) or size
    return arch.group_shape(side, group, model.dim or 1)


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


# --------------------------------------------------------------------------- teachers


def store_reference(
    ref: str, store_lookup: StoreLookup | None, at: str, file_names: Iterable[Any]
) -> tuple[StoreGroup | None, list[Problem]]:
    """A teacher named outside the file, looked up in the store: its group, or the problem
    (not there, or a name that several groups share: the lookup raises LookupError; it
    names the store's names close to a typo, this the file's)."""
    if store_lookup is not None:
        try:
            group = store_lookup(ref)
        except LookupError as exc:
            return None, [Problem(at, str(exc))]
        if group is not None:
            return group, []
    # The close names only when the name is not found: a study of thousands of experiments
    # naming store groups must not compare each name with every other.
    names = [n for n in file_names if isinstance(n, str)]
    close = difflib.get_close_matches(ref, names, n=3, cutoff=0.6)
    hint = f" (close: {', '.join(close)})" if close else ""
    where = "this file" if store_lookup is None else "this file or the store"
    return None, [Problem(at, f"no experiment named {ref!r} in {where}{hint}")]


def _reference_problems(
    exp: Experiment, teacher: TeacherSpec, at: str, ctx: FileContext
) -> list[Problem]:
    """A teacher by reference: an experiment of the file, or a group of the store with
    finished runs, on the same data, training the model the teacher declares."""
    ref = str(teacher.experiment)
    if ref == exp.name:
        return [Problem(f"{at}.experiment", "an experiment cannot be its own teacher")]
    if ref in ctx.names_in_file:
        source = ctx.parsed[ctx.names_in_file[ref]]
        student, data, seeds = source.student, source.data.model_dump(), set(source.seeds)
    elif ref in ctx.raw_names:
        return []  # that experiment has problems of its own, reported at its path
    else:
        group, problems = store_reference(ref, ctx.store_lookup, f"{at}.experiment", ctx.raw_names)
        if group is None:
            return problems
        ctx.store_refs[ref] = group
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
    if without_neutral(data, "data") != without_neutral(exp.data.model_dump(), "data"):
        out.append(
            Problem(
                f"{at}.experiment",
                f"{ref!r} uses other data than this experiment; a teacher must be trained on the same samples",
            )
        )
    if teacher.pick == "same-seed" and (missing := sorted(set(exp.seeds) - seeds)):
        verb = "has no finished run for" if ref not in ctx.names_in_file else "does not train"
        out.append(
            Problem(
                f"{at}.pick",
                f'same-seed: {ref!r} {verb} seed(s) {missing}; use pick "best" or add the seeds',
            )
        )
    return out


# --------------------------------------------------------------------------- unparsed items


def raw_problems(item: dict[str, Any], at: str, ctx: FileContext) -> list[Problem]:
    """The file and reference checks, for an experiment whose fields did not all parse:
    a user fixing one typo should not then meet a second round of errors."""
    out: list[Problem] = []
    if all_ints(seeds := item.get("seeds")):
        out.extend(list_problems(seeds, under(at, "seeds"), "seed"))
    data = item.get("data")
    if isinstance(data, dict):
        out.extend(_data_path_problems(data, ctx.base_dir, under(at, "data.path")))
        if all_ints(channels := data.get("channels")):
            dataset = data.get("dataset")
            n_channels = KNOWN_CHANNELS.get(dataset) if isinstance(dataset, str) else None
            out.extend(
                list_problems(channels, under(at, "data.channels"), "channel", n_channels, dataset)
            )
    teachers = item.get("teachers")
    for j, t in enumerate(teachers if isinstance(teachers, list) else []):
        ref = t.get("experiment") if isinstance(t, dict) else None
        if isinstance(ref, str) and ref not in ctx.raw_names:
            where = under(at, f"teachers[{j}].experiment")
            out += store_reference(ref, ctx.store_lookup, where, ctx.raw_names)[1]
        if isinstance(t, dict) and isinstance(t.get("checkpoint"), str):
            out.extend(
                missing_file(t["checkpoint"], ctx.base_dir, under(at, f"teachers[{j}].checkpoint"))
            )
    return out
