"""The spec package's single sources: loss terms declared once, WRN shapes computed once."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_experiment

from kdtui.engine.models import WideResNet
from kdtui.spec import (
    FEATURE_TERMS,
    TEACHER_TERMS,
    TERMS,
    LossSpec,
    ModelSpec,
    SpecError,
    arch,
    json_schema,
    validate_spec,
)
from kdtui.spec.problems import all_field_names


def test_loss_spec_fields_follow_the_term_table():
    assert list(LossSpec.model_fields) == ["ce", *TERMS]
    assert TEACHER_TERMS == ("kd", "at", "sp", "amd", "dask")
    assert FEATURE_TERMS == ("at", "sp", "amd")
    schema = json_schema()["$defs"]
    loss = schema["LossSpec"]["properties"]
    for key, term in TERMS.items():
        assert loss[key]["description"] == term.summary
        assert term.spec.__name__ in schema  # its parameters are described too
        assert set(term.spec.model_fields) <= all_field_names()
        # each term's own default parameters validate and label
        assert LossSpec.model_validate({key: {}}).label().startswith("CE+")
    assert schema["LossSpec"]["description"].startswith("A weighted sum of named terms")


def test_a_typo_in_any_term_gets_its_field():
    for key, term in TERMS.items():
        field = next(f for f in term.spec.model_fields if len(f) > 3)
        raw = tiny_experiment("x", loss={key: {field + "x": 1}})
        if term.teacher:
            raw["teachers"] = [{"checkpoint": "t.pt", "model": {"depth": 10}}]
        with pytest.raises(Exception) as info:
            validate_spec(raw)
        assert f"did you mean {field!r}" in str(info.value), (key, str(info.value))


@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("size", [5, 8, 9, 17, 33])
def test_group_shapes_are_the_networks(dim: int, size: int):
    """The spec's torch-free shape maths gives the engine's feature maps, odd sizes too."""
    model = WideResNet(10, 1, num_classes=3, in_channels=2, dim=dim)
    x = torch.randn(1, 2, *([size] * dim))
    feats = model(x).feats
    assert len(feats) == arch.N_GROUPS == ModelSpec().n_groups
    assert model.feature_channels == arch.group_widths(1)
    for g, f in enumerate(feats):
        assert tuple(f.shape[2:]) == arch.group_shape(size, g, dim)


def test_depth_rule_is_one_rule():
    for depth in range(0, 60):
        ok = arch.is_wrn_depth(depth)
        assert ok == (depth >= 10 and (depth - 4) % 6 == 0)
        if ok:
            WideResNet(depth, 1, num_classes=2, in_channels=1, dim=1)
        else:
            with pytest.raises(ValueError, match="6n\\+4"):
                arch.blocks_per_group(depth)


def test_spec_package_imports_neither_torch_nor_numpy():
    code = (
        "import sys, kdtui.spec; "
        "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, sys.modules.keys()"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after ``code``."""
    code += "\nimport sys; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_package_loads_its_parts_when_asked():
    """Importing the package costs nothing; the engine's names load the models without
    validation's checks; validating loads no JSON Schema: only ``kdtui schema`` pays for it.
    (The package used to import all of it, pydantic included, even for kdtui.spec.npz.)"""
    assert not {"pydantic", "pydantic.json_schema"} & _loaded_after("import kdtui.spec")
    light = _loaded_after("import kdtui.spec.npz, kdtui.spec.arch, kdtui.spec.checkpoint")
    assert "pydantic" not in light  # the engine's data and network modules import these
    engine = _loaded_after(
        "from kdtui.spec import Experiment, LossSpec, canonical_json\n"
        "Experiment.model_validate({'name': 'x', 'data': {'dataset': 'basicmotions'}, 'student': {}})"
    )
    assert "kdtui.spec.models" in engine
    assert not {"kdtui.spec.checks", "kdtui.spec.validate", "kdtui.spec.schema"} & engine
    checked = _loaded_after(
        "from kdtui.spec import validate_spec\n"
        "validate_spec({'name': 'x', 'data': {'dataset': 'basicmotions'}, 'student': {}})"
    )
    assert "kdtui.spec.checks" in checked and "kdtui.spec.schema" not in checked
    assert "kdtui.spec.schema" in _loaded_after("from kdtui.spec import json_schema")


def test_every_public_name_is_exported_and_typed():
    """The lazily exported names, the typing imports and ``__all__`` say the same names,
    and each name is the object of its module."""
    import ast

    import kdtui.spec as package

    tree = ast.parse(Path(package.__file__).read_text())
    typed = {
        (node.module.rsplit(".", 1)[1], alias.name)
        for block in tree.body
        if isinstance(block, ast.If) and getattr(block.test, "id", "") == "TYPE_CHECKING"
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    lazy = {(module, name) for module, names in package._EXPORTS.items() for name in names}
    assert typed == lazy and {name for _, name in lazy} == set(package.__all__)
    for module, name in lazy:
        home = importlib.import_module(f"kdtui.spec.{module}")
        assert getattr(package, name) is getattr(home, name), name
    assert package.study is importlib.import_module("kdtui.spec.study")  # a submodule
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        package.nothing  # noqa: B018


def test_a_long_chain_of_teachers_is_checked():
    """Keys and cycles without recursion: a chain deeper than Python's recursion limit,
    students listed before their teachers (the old recursion hit RecursionError)."""
    n = 1500
    chain = [tiny_experiment("e0")] + [
        tiny_experiment(f"e{i}", teachers=[{"experiment": f"e{i - 1}"}], loss={"kd": {}})
        for i in range(1, n)
    ]
    chain.reverse()
    spec = validate_spec(chain)
    assert list(spec.group_keys) == [f"e{i}" for i in reversed(range(n))]  # file order
    assert len(set(spec.group_keys.values())) == n
    chain[-1] = {**chain[-1], "teachers": [{"experiment": f"e{n - 1}"}], "loss": {"kd": {}}}
    with pytest.raises(SpecError) as info:
        validate_spec(chain)
    cycle = [p for p in info.value.problems if "cycle" in p.message]
    assert [p.path for p in cycle] == [f"[{i}].teachers" for i in range(n)]


def _lines_run(n: int) -> int:
    """Lines of the spec package run to check n experiments (half teachers, half their KD
    students): a measure of work that, unlike time, a busy machine does not disturb."""
    raw = []
    for i in range(n // 2):
        raw.append(tiny_experiment(f"t{i}"))
        raw.append(tiny_experiment(f"s{i}", teachers=[{"experiment": f"t{i}"}], loss={"kd": {}}))
    ours = f"kdtui{os.sep}spec"
    count = 0

    def local(frame, event, arg):
        nonlocal count
        count += event == "line"
        return local

    def calls(frame, event, arg):
        return local if ours in frame.f_code.co_filename else None

    sys.settrace(calls)
    try:
        validate_spec(raw)
    finally:
        sys.settrace(None)
    return count


def test_checking_is_linear_in_the_experiments():
    """4,000 experiments took 18 s: each built a name table of all the others. Four times
    the experiments must take about four times the work, not sixteen."""
    small, large = _lines_run(200), _lines_run(800)
    assert large / small < 5, (small, large)


def test_teachers_found_in_the_store_are_not_compared_with_every_name(monkeypatch):
    """Close names are only for a name not found: comparing every store reference with every
    experiment of the file made 4,000 experiments take minutes."""
    import difflib

    from kdtui.spec import StoreGroup

    data = validate_spec(tiny_experiment("x")).experiments[0].data.model_dump()
    group = StoreGroup("t", "0123456789ab", {"depth": 10, "width": 1}, data, (0,))
    compared = []
    monkeypatch.setattr(difflib, "get_close_matches", lambda *a, **k: compared.append(a) or [])
    raw = [
        tiny_experiment(f"s{i}", teachers=[{"experiment": "t"}], loss={"kd": {}}) for i in range(50)
    ]
    spec = validate_spec(raw, store_lookup=lambda ref: group if ref == "t" else None)
    assert set(spec.store_refs) == {"t"} and compared == []
    raw[0]["teachers"] = [{"experiment": "s-typo"}]
    with pytest.raises(SpecError):
        validate_spec(raw, store_lookup=lambda ref: group if ref == "t" else None)
    assert len(compared) == 1  # the one name not found
