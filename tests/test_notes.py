"""Notes round trip: result blocks parsed from hand-written markdown, averages filled in
without touching any other byte, results imported into and filled from the store."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
from conftest import tiny_experiment
from typer.testing import CliRunner

from kdtui import launcher
from kdtui.cli import app
from kdtui.needs import resolve_need
from kdtui.notes import (
    DEFAULT_LABELS,
    NotesError,
    fill,
    format_average,
    group_key_for,
    import_notes,
    import_todos,
    parse,
    record,
    values_from_store,
)
from kdtui.results import group_rows
from kdtui.spec import validate_spec
from kdtui.store import RUN_ID_PATTERN, Store

EXAMPLE = Path(__file__).parent.parent / "examples" / "notes.md"

HTML = """\
Intro prose with **bold** and an image ![loss curve](img/loss.png).

<ul>
<li> T : WRN16-3(GAF), S : WRN16-1(sig) result </li>
<ul>
<li> 68.2063 </li>
<li> 68.4410 </li>
<li>  </li>
<li> Average :  </li>
<br>
</ul>
</ul>

Closing prose.
"""

MARKDOWN = """\
# Notes

- KD, T = 4
    - 68.2063
    - 68.4410
    -
    - Average :
- plain bullet, not a result
"""

HEADING = """\
### AT, β = 1000

- 67.81
- 67.95%
- 평균 : 12.0
"""


def filled(text: str, **kw) -> str:
    return fill(parse(text.encode()), **kw)[0].decode()


def test_html_list_block_with_a_blank_seed():
    (block,) = parse(HTML.encode()).blocks
    assert block.title == block.name == "T : WRN16-3(GAF), S : WRN16-1(sig) result"
    assert block.line == 4
    assert [s.kind for s in block.seeds] == ["number", "number", "blank"]
    assert block.numbers == [68.2063, 68.4410] and block.blanks == 1
    assert block.average is not None and block.average.text == ""
    start, end = block.span
    assert HTML.encode()[start:end].startswith(b"<li> T : WRN16-3")
    assert HTML.encode()[start:end].endswith(b"<li> Average :  </li>")


def test_fill_changes_only_the_average_bytes():
    avg = format_average([68.2063, 68.4410])
    assert avg == "68.3237 ± 0.1660 (n=2)"  # sample std
    expected = HTML.replace("<li> Average :  </li>", f"<li> Average : {avg} </li>")
    assert filled(HTML) == expected


def test_markdown_bullet_block_nested_under_a_title_item():
    (block,) = parse(MARKDOWN.encode()).blocks
    assert block.title == "KD, T = 4" and block.line == 3
    assert [s.kind for s in block.seeds] == ["number", "number", "blank"]
    expected = MARKDOWN.replace("- Average :\n", "- Average : 68.3237 ± 0.1660 (n=2)\n")
    assert filled(MARKDOWN) == expected


def test_heading_title_percentages_and_an_old_value_replaced():
    (block,) = parse(HEADING.encode()).blocks
    assert block.title == "AT, β = 1000"
    assert [s.text for s in block.seeds] == ["67.81", "67.95%"]  # kept as written
    assert block.numbers == [67.81, 67.95] and block.average.text == "12.0"
    assert filled(HEADING, precision=2) == HEADING.replace("12.0", "67.88 ± 0.10 (n=2)")


@pytest.mark.parametrize("label", ["Average", "average", "Avg", "Mean", "평균", "平均", "**Mean**"])
def test_average_labels_in_any_language(label: str):
    text = f"### cfg\n- 0.7412\n- 0.7389\n- {label}：\n"
    (block,) = parse(text.encode()).blocks
    assert block.average is not None
    assert filled(text).endswith(f"- {label}： 0.7400 ± 0.0016 (n=2)\n")


def test_more_labels_can_be_given():
    text = "### cfg\n- 1.0\n- Médiane :\n"
    assert parse(text.encode()).blocks == []
    (block,) = parse(text.encode(), labels=(*DEFAULT_LABELS, "Médiane")).blocks
    assert block.average is not None


def test_example_notes_fill_keeps_every_other_byte():
    """Every line that is not a value slot comes back byte for byte; values keep their
    places in the lines they are on."""
    data = EXAMPLE.read_bytes()
    notes = parse(data)
    new, report = fill(notes)
    slots = {b.average.line for b in notes.blocks if b.average and b.numbers}
    old_lines, new_lines = data.split(b"\n"), new.split(b"\n")
    assert len(old_lines) == len(new_lines)
    for i, (old, line) in enumerate(zip(old_lines, new_lines, strict=True), 1):
        if i not in slots:
            assert old == line, i
        else:
            label = old.split(b":")[0]
            assert line.startswith(label) and b" \xc2\xb1 " in line  # " ± "
    untouched = [f for f in report if not f.changed]
    assert [f.block.name for f in untouched] == ["T1 : WRN28-3(sig), T2 : WRN28-3(GAF)"]
    assert untouched[0].note == "no numbers yet, left alone"


def test_fill_is_idempotent():
    once = fill(parse(EXAMPLE.read_bytes()))[0]
    twice = fill(parse(once))[0]
    assert once == twice


def test_line_endings_bom_and_a_missing_final_newline_survive():
    text = "\ufeff### cfg\r\n- 1.5\r\n- 2.5\r\n- Average :\r\n\r\nend"
    out = filled(text, precision=1)
    assert out == text.replace("- Average :\r\n", "- Average : 2.0 ± 0.7 (n=2)\r\n")


def test_blocks_without_numbers_are_left_alone():
    text = "### cfg\n- \n- \n- Average : old\n"
    (block,) = parse(text.encode()).blocks
    assert block.blanks == 2 and block.numbers == []
    assert filled(text) == text


def test_lists_that_look_like_results_are_skipped_with_a_reason():
    text = (
        "### diverged\n- 67.81\n- 67.95 (rerun)\n- Average :\n\n"
        "### two averages\n- 1\n- Mean :\n- Average :\n\n"
        "Prose, then a blank line.\n\n- 1.5\n- 2.5\n"  # no title above
    )
    notes = parse(text.encode())
    assert notes.blocks == []
    reasons = {s.line: (s.title, s.reason) for s in notes.skipped}
    assert reasons[2] == ("diverged", "item 2 is not a number: '67.95 (rerun)'")
    assert reasons[7] == ("two averages", "more than one average line")
    assert reasons[13] == (None, "no title above the list")


def test_ordinary_lists_code_and_images_are_not_blocks():
    text = (
        "## Setup\n- lr 0.05\n- epochs 200\n\n"
        "```\n### in code\n- 1.0\n- Average :\n```\n\n"
        "![plot](a.png)\n\n- seeds\n"
    )
    notes = parse(text.encode())
    assert notes.blocks == [] and notes.skipped == []


def test_properly_nested_html_and_inline_tags():
    text = "<ul><li><b>KD</b> &amp; AT<ul><li>1.0</li><li></li><li>Avg:</li></ul></li></ul>\n"
    (block,) = parse(text.encode()).blocks
    assert block.title == "KD & AT"
    assert filled(text) == text.replace("<li>Avg:</li>", "<li>Avg: 1.0000 (n=1)</li>")


def test_repeated_titles_are_told_apart_by_their_section():
    text = "## CIFAR-10\n### KD\n- 1\n- 2\n\n## CINIC-10\n### KD\n- 3\n- 4\n"
    names = [b.name for b in parse(text.encode()).blocks]
    assert names == ["CIFAR-10 / KD", "CINIC-10 / KD"]


# ---------------------------------------------------------------------- the store


def summaries(store: Store) -> dict[str, dict]:
    return {r["run_id"]: r for r in store.runs()}


def test_import_makes_done_runs_and_reimport_updates_in_place(tmp_path: Path):
    notes_path = tmp_path / "notes.md"
    shutil.copy(EXAMPLE, notes_path)
    store = Store(tmp_path / "ws")
    first = import_notes(store, notes_path, parse(notes_path.read_bytes()))
    assert (first.added, first.changed, first.removed) == (12, 0, 0)
    runs = summaries(store)
    assert all(RUN_ID_PATTERN.match(i) for i in runs)
    assert {r["status"] for r in runs.values()} == {"done"}
    run = next(
        r for r in runs.values() if r["name"] == "WRN16-1(sig) from scratch" and r["seed"] == 1
    )
    assert run["best_acc"] == run["last_acc"] == 67.2534
    assert run["source"] == f"notes:{notes_path.resolve()}:13"
    assert run["group_key"] == group_key_for("WRN16-1(sig) from scratch")
    rows = {r.name: r for r in group_rows(runs.values())}
    assert rows["T : WRN16-3(GAF), S : WRN16-1(sig) result"].best_by_seed == {0: 68.2063, 1: 68.441}

    again = import_notes(store, notes_path, parse(notes_path.read_bytes()))
    assert (again.added, again.changed, again.unchanged, again.removed) == (0, 0, 12, 0)
    assert summaries(store) == runs

    edited = (
        notes_path.read_text().replace("- 67.2534\n", "- 67.3000\n").replace("- 66.7112\n", "- \n")
    )
    notes_path.write_text(edited)
    third = import_notes(store, notes_path, parse(notes_path.read_bytes()))
    assert (third.added, third.changed, third.removed) == (0, 1, 1)
    assert len(store.runs()) == 11 and run["run_id"] in summaries(store)
    assert summaries(store)[run["run_id"]]["best_acc"] == 67.3


def test_imported_runs_survive_an_index_rebuild(tmp_path: Path):
    store = Store(tmp_path / "ws")
    import_notes(store, EXAMPLE, parse(EXAMPLE.read_bytes()))
    before = summaries(store)
    store.index_path.write_text("{torn")
    after = summaries(store)  # recovered from the run folders
    assert store.notices and after.keys() == before.keys()
    for run_id, doc in before.items():
        for key in ("status", "best_acc", "last_acc", "source", "group_key", "seed", "name"):
            assert after[run_id][key] == doc[key], key


def test_run_ids_stay_safe_for_any_title(tmp_path: Path):
    text = "### ../../etc/passwd\n- 1\n\n### 교차 모달 KD\n- 2\n\n### \\x/*?\n- 3\n"
    notes_path = tmp_path / "n.md"
    notes_path.write_text(text)
    store = Store(tmp_path / "ws")
    import_notes(store, notes_path, parse(text.encode()))
    ids = list(summaries(store))
    assert len(ids) == 3 and all(RUN_ID_PATTERN.match(i) for i in ids)
    assert sorted(p.name for p in (tmp_path / "ws").iterdir() if p.is_dir()) == sorted(ids)


def test_record_starts_or_joins_a_group_and_replaces_a_seed(tmp_path: Path):
    store = Store(tmp_path / "ws")
    import_notes(store, EXAMPLE, parse(EXAMPLE.read_bytes()))
    name = "T : WRN16-3(GAF), S : WRN16-1(sig) result"
    run, warnings = record(store, name, 68.3391)
    assert run["seed"] == 2 and run["group_key"] == group_key_for(name) and warnings == []
    run2, warnings = record(store, name, 68.5, seed=2, note="again")
    assert warnings == ["seed 2 was 68.3391 (recorded before): replaced"]
    assert run2["run_id"] == run["run_id"]
    (row,) = [r for r in group_rows(store.runs()) if r.name == name]
    assert row.best_by_seed == {0: 68.2063, 1: 68.441, 2: 68.5}
    with pytest.raises(NotesError, match="seed 0 of .* is run notes-"):
        record(store, name, 12.5, seed=0)  # an imported (or trained) seed is not overwritten
    new, warnings = record(store, "brand new", 70.0)
    assert new["seed"] == 0 and new["source"] == "record" and warnings == []
    with pytest.raises(NotesError, match=r"are fractions: write 0.7405, or --force for 74.05"):
        record(store, "WRN16-3(GAF) teacher", 74.05)  # 74.05 beside 0.74s: refused
    assert record(store, "WRN16-3(GAF) teacher", 74.05, force=True)[1] == []
    _, warnings = record(store, "WRN16-3(GAF) teachr", 0.7)  # a typo starts a new group: said
    assert warnings == ["'WRN16-3(GAF) teachr' is a new group (close: WRN16-3(GAF) teacher)"]
    _, warnings = record(store, "brand", 70.5)  # the start of a name is close too
    assert warnings == ["'brand' is a new group (close: brand new)"]
    joined, _ = record(store, new["group_key"][:8], 71.0)  # a group key as tables show it
    assert joined["group_key"] == new["group_key"] and joined["seed"] == 1


def test_record_beside_trained_seeds_says_it_joins_their_mean(tmp_path: Path):
    store = Store(tmp_path / "ws")
    (run_id,) = launcher.enqueue(store, validate_spec(tiny_experiment("trained", seeds=[0])))
    store.record_event(run_id, {"type": "end", "status": "done", "best_acc": 70.0, "acc": 70.0})
    run, warnings = record(store, "trained", 71.0)
    assert run["seed"] == 1
    assert warnings == ["'trained' has runs trained by kdtui: this value joins their mean"]
    assert record(store, "trained", 72.0, seed=2)[1] == []  # a seed given: the user means it


def test_recorded_results_are_never_picked_as_teachers(tmp_path: Path):
    store = Store(tmp_path / "ws")
    record(store, "teacher-x", 99.0)
    need = {"group_key": group_key_for("teacher-x"), "name": "teacher-x", "seed": None}
    assert resolve_need(need, store.runs())[0] == "failed"


def test_fill_from_store_by_name_and_by_mapping(tmp_path: Path):
    store = Store(tmp_path / "ws")
    notes_path = tmp_path / "notes.md"
    shutil.copy(EXAMPLE, notes_path)
    import_notes(store, notes_path, parse(notes_path.read_bytes()))
    # a percentage, the block has fractions
    record(store, "WRN16-3(GAF) teacher", 74.05, seed=2, force=True)
    record(store, "renamed run group", 69.8120, seed=0)
    notes = parse(notes_path.read_bytes())
    mapping = {"T1 : WRN28-3(sig), T2 : WRN28-3(GAF)": "renamed run group"}
    values, problems = values_from_store(store, notes_path, notes, mapping)
    assert problems == []
    new, report = fill(notes, seed_values=values)
    text = new.decode()
    assert "- 0.7412\n- 0.7389\n- 0.7405\n- Mean : 0.7402 ± 0.0012 (n=3)\n" in text
    assert "    - 69.8120\n    - \n    - \n    - 평균 : 69.8120 (n=1)\n" in text
    assert (
        fill(parse(new), seed_values=values_from_store(store, notes_path, parse(new), mapping)[0])[
            0
        ]
        == new
    )


# ---------------------------------------------------------------------- TODO import


def test_todo_section_items_nested_ticked_and_not_imported_twice(tmp_path: Path):
    store = Store(tmp_path / "ws")
    items = parse(EXAMPLE.read_bytes()).todo_section("todo")
    assert [(t.text, t.done, len(t.children)) for t in items] == [
        ("DASK with the WRN28-3(GAF) teacher", False, 2),
        ("AMD global+local", True, 0),
        ("Mixup / CutMix on the signal student", False, 0),
    ]
    assert import_todos(store, EXAMPLE, "TODO", items) == (3, 0)
    assert import_todos(store, EXAMPLE, "## todo", items) == (0, 3)
    assert [(t["text"], t["done"]) for t in store.todos()] == [
        ("DASK with the WRN28-3(GAF) teacher — seeds 0, 1, 2; λ = 0.5 and 0.9", False),
        ("AMD global+local", True),
        ("Mixup / CutMix on the signal student", False),
    ]


def test_todo_items_nested_deeper_fold_into_the_text(tmp_path: Path):
    text = "## Next\n- a\n  - b\n    - c\n    - d\n  - e\n- [X] f\n\n## After\n- g\n"
    items = parse(text.encode()).todo_section("next")
    store = Store(tmp_path / "ws")
    assert import_todos(store, tmp_path / "n.md", "Next", items) == (2, 0)
    assert [(t["text"], t["done"]) for t in store.todos()] == [
        ("a — b (c; d); e", False),
        ("f", True),
    ]


def test_todo_section_must_exist():
    with pytest.raises(NotesError, match="no heading 'Plans'"):
        parse(EXAMPLE.read_bytes()).todo_section("Plans")


# ---------------------------------------------------------------------- the CLI


@pytest.fixture
def cli(workspace: Path):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})

    return invoke


def test_cli_round_trip(cli, tmp_path: Path, workspace: Path):
    notes_path = tmp_path / "notes.md"
    shutil.copy(EXAMPLE, notes_path)
    result = cli("notes", "import", str(notes_path))
    assert result.exit_code == 0, result.output
    assert "6 result blocks, 12 numbers, 6 blank seeds" in result.output
    assert "line 47  AT, β = 1000: item 2 is not a number" in result.output
    assert (
        "runs in " in result.output
        and ": 12 added, 0 changed, 0 unchanged, 0 removed" in result.output
    )
    assert cli("record", "T1 : WRN28-3(sig), T2 : WRN28-3(GAF)", "69.8120").exit_code == 0

    original = notes_path.read_bytes()
    dry = cli("notes", "fill", str(notes_path), "--dry-run", "--from-store")
    assert dry.exit_code == 0, dry.output
    assert "+    - 69.8120\n" in dry.output and "-- Average :\n" in dry.output
    assert notes_path.read_bytes() == original
    assert not notes_path.with_name("notes.md.bak").exists()

    done = cli("notes", "fill", str(notes_path), "--from-store")
    assert done.exit_code == 0, done.output
    assert notes_path.with_name("notes.md.bak").read_bytes() == original
    assert "seed 0 ← 69.8120" in done.output
    filled_once = notes_path.read_bytes()
    again = cli("notes", "fill", str(notes_path), "--from-store")
    assert "nothing to change" in again.output and notes_path.read_bytes() == filled_once

    table = cli("table", "--format", "csv")
    assert (
        "T1 : WRN28-3(sig), T2 : WRN28-3(GAF)" in table.output and "best_per_seed" in table.output
    )


def test_cli_no_blocks_and_errors(cli, tmp_path: Path):
    prose = tmp_path / "prose.md"
    prose.write_text("# Just prose\n\n- a list\n- of words\n")
    for cmd in ("import", "fill"):
        result = cli("notes", cmd, str(prose))
        assert result.exit_code == 0 and "no result blocks in" in result.output
    missing = cli("notes", "fill", str(tmp_path / "nope.md"))
    assert missing.exit_code == 2 and "nope.md: no such file" in missing.output
    assert cli("record", "g", "abc").exit_code == 2
    bad_map = cli("notes", "fill", str(EXAMPLE), "--from-store", "--map", str(prose))
    assert bad_map.exit_code == 2 and "not a JSON mapping" in bad_map.output


def test_cli_map_file(cli, tmp_path: Path, workspace: Path):
    notes_path = tmp_path / "notes.md"
    shutil.copy(EXAMPLE, notes_path)
    cli("record", "two-teachers-28-3", "69.8")
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"T1 : WRN28-3(sig), T2 : WRN28-3(GAF)": "two-teachers-28-3"}))
    result = cli("notes", "fill", str(notes_path), "--from-store", "--map", str(mapping))
    assert result.exit_code == 0, result.output
    assert "    - 69.8000\n" in notes_path.read_text()


def test_real_cli_missing_file_is_one_line_and_exit_2(tmp_path: Path):
    from conftest import run_cli

    result = run_cli("notes", "import", str(tmp_path / "nope.md"), workspace=tmp_path / "ws")
    assert result.returncode == 2
    assert result.stderr == f"error: {tmp_path / 'nope.md'}: no such file\n"
    assert not (tmp_path / "ws").exists()


# ---------------------------------------------------------------------- bad values, duplicates


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 150.0, -5.0, 100.5])
def test_record_refuses_what_is_no_accuracy(tmp_path: Path, value: float):
    store = Store(tmp_path / "ws")
    with pytest.raises(NotesError, match="not a finite number|not an accuracy"):
        record(store, "grpA", value)
    assert store.runs() == []
    record(store, "grpA", 0.0)  # the ends of the range are fine
    record(store, "grpA", 100.0)


def test_cli_record_refuses_nan_in_one_line(cli, workspace: Path):
    for value in ("nan", "150", "inf", "1_0", "７０"):  # float() would take the last two
        result = cli("record", "grpA", value)
        assert result.exit_code == 2, result.output
        assert result.output.count("\n") == 1 and "error:" in result.output
    result = cli("record", "grpA", "1e400")
    assert result.output == "error: 1e400 is not a finite number\n"
    assert cli("record", "grpA", "--", "-5").exit_code == 2
    assert not workspace.exists()  # refused before any store is opened
    assert "no results yet" in cli("table").output


def test_import_skips_numbers_that_are_no_accuracy_and_imports_the_rest(
    cli, tmp_path: Path, workspace: Path
):
    notes_path = tmp_path / "n.md"
    notes_path.write_text("### blk\n\n- 1e400\n- 50\n- 150\n- 52\n- Average :\n")
    result = cli("notes", "import", str(notes_path))
    assert result.exit_code == 0, result.output
    assert "skipped 2 numbers:" in result.output
    assert "line 3  blk: seed 0: 1e400 is not a finite number" in result.output
    assert "line 5  blk: seed 2: 150 is not an accuracy" in result.output
    assert ": 2 added, 0 changed, 0 unchanged, 0 removed" in result.output
    (row,) = group_rows(Store(workspace).runs())
    assert row.best_by_seed == {1: 50.0, 3: 52.0}
    for fmt in ("table", "json", "csv"):
        assert cli("table", "--format", fmt).exit_code == 0
    filled_out = cli("notes", "fill", str(notes_path))
    assert filled_out.exit_code == 0, filled_out.output
    assert "left out, not finite: 1e400" in filled_out.output
    assert "- Average : 84.0000 ± 57.1664 (n=3)\n" in notes_path.read_text()


def test_fractions_next_to_percentages_are_warned_of_not_refused(
    cli, tmp_path: Path, workspace: Path
):
    notes_path = tmp_path / "n.md"
    notes_path.write_text("### mixed\n\n- 68.2\n- 0.69\n- Average :\n\n### fine\n\n- 0.7\n- 1\n")
    warning = "warning: line 1  mixed: 0.69 next to 68.2: fractions and percentages mixed?"
    for command in ("import", "fill"):
        result = cli("notes", command, str(notes_path))
        assert result.exit_code == 0, result.output
        assert result.output.count("warning:") == 1 and warning in result.output
    assert len(Store(workspace).runs()) == 4  # imported as written: the user decides


def test_fill_from_a_store_holding_nan_leaves_that_seed_blank(tmp_path: Path):
    store = Store(tmp_path / "ws")
    record(store, "grpA", 50.0, seed=0)
    record(store, "grpA", 60.0, seed=1)
    (doc,) = [r for r in store.runs() if r["seed"] == 1]
    store.put_runs([doc | {"best_acc": math.nan, "last_acc": math.nan}])  # an older kdtui
    notes = parse(b"### grpA\n\n- \n- \n- Average :\n")
    values, problems = values_from_store(store, tmp_path / "n.md", notes)
    assert problems == ["line 1 grpA: seed 1 is nan in the store, left blank"]
    new, _ = fill(notes, seed_values=values)
    assert new == b"### grpA\n\n- 50.0000\n- \n- Average : 50.0000 (n=1)\n"
    # fill itself never writes a nan into the notes, whoever hands it the values
    new, _ = fill(notes, seed_values={"grpA": {0: (math.nan, "x"), 1: (61.0, "y")}})
    assert new == b"### grpA\n\n- \n- 61.0000\n- Average : 61.0000 (n=1)\n"


def test_readme_round_trip_imports_no_second_run_for_a_filled_seed(
    cli, tmp_path: Path, workspace: Path
):
    notes_path = tmp_path / "notes.md"
    shutil.copy(EXAMPLE, notes_path)
    name = "T1 : WRN28-3(sig), T2 : WRN28-3(GAF)"
    assert cli("notes", "import", str(notes_path)).exit_code == 0
    assert cli("record", name, "69.8120").exit_code == 0
    assert cli("notes", "fill", "--from-store", str(notes_path)).exit_code == 0
    again = cli("notes", "import", str(notes_path))
    assert again.exit_code == 0, again.output
    recorded = "record-T1-WRN28-3-sig-T2-WRN28-3-GAF-73c95bc9db-s0"
    assert "already in the store" not in again.output  # the value fill wrote: that seed
    assert ": 0 added, 0 changed, 13 unchanged, 0 removed" in again.output
    runs = [r for r in Store(workspace).runs() if r["name"] == name]
    assert [(r["run_id"], r["seed"]) for r in runs] == [(recorded, 0)]


def test_import_updates_its_own_runs_but_not_a_seed_held_elsewhere(tmp_path: Path):
    store = Store(tmp_path / "ws")
    notes_path = tmp_path / "n.md"
    notes_path.write_text("### grp\n\n- 50\n- 51\n- Average :\n")
    assert import_notes(store, notes_path, parse(notes_path.read_bytes())).added == 2
    notes_path.write_text("### grp\n\n- 50.5\n- 51\n- 52\n- Average :\n")
    record(store, "grp", 60.0, seed=2)  # seed 2 comes from elsewhere first
    done = import_notes(store, notes_path, parse(notes_path.read_bytes()))
    assert (done.added, done.changed, done.unchanged, done.removed) == (0, 1, 1, 0)
    assert [s.reason for s in done.skipped] == [
        "seed 2 of grp is already in the store as run record-grp-for_key-s2".replace(
            "for_key", group_key_for("grp")[-10:]
        )
    ]
    (row,) = group_rows(store.runs())
    assert row.best_by_seed == {0: 50.5, 1: 51.0, 2: 60.0}
    # another file with the same block name is another source too
    other = tmp_path / "other.md"
    other.write_text("### grp\n\n- 70\n- Average :\n")
    done = import_notes(store, other, parse(other.read_bytes()))
    assert done.added == 0 and "already in the store" in done.skipped[0].reason


def test_import_writes_the_store_before_printing(tmp_path: Path):
    """`kdtui notes import notes.md | head -3`: the reader goes away before the report."""
    import subprocess
    import sys

    notes_path = tmp_path / "notes.md"
    shutil.copy(EXAMPLE, notes_path)
    read, write = os.pipe()
    os.close(read)  # every write to stdout fails with EPIPE, from the first byte on
    env = dict(os.environ, KDTUI_WORKSPACE=str(tmp_path / "ws"), NO_COLOR="1")
    subprocess.run(
        [sys.executable, "-m", "kdtui", "notes", "import", str(notes_path)],
        stdout=write,
        stderr=subprocess.DEVNULL,
        env=env,
        timeout=120,
        check=False,
    )
    os.close(write)
    assert len(Store(tmp_path / "ws").runs()) == 12


def test_fill_from_store_warns_about_map_names_it_cannot_find(cli, tmp_path: Path, workspace: Path):
    notes_path = tmp_path / "notes.md"
    shutil.copy(EXAMPLE, notes_path)
    cli("record", "two-teachers-28-3", "69.8")
    mapping = tmp_path / "map.json"
    mapping.write_text(
        json.dumps(
            {
                "T1 : WRN28-3(sig), T2 : WRN28-3(GAF)": "two-teachers-28-3",
                "WRN16-1(sig) from scratch": "no-such-group",  # a block with no blanks
                "no such block": "two-teachers-28-3",
            }
        )
    )
    result = cli("notes", "fill", str(notes_path), "--from-store", "--map", str(mapping))
    assert result.exit_code == 0, result.output
    assert "--map names group 'no-such-group', which is nowhere in the store" in result.output
    assert "--map names block 'no such block', which is not in the notes" in result.output
    assert "    - 69.8000\n" in notes_path.read_text()  # the rest is still done
    notes = parse(notes_path.read_bytes())
    _, problems = values_from_store(
        Store(workspace), notes_path, notes, {"WRN16-3(GAF) teacher": "typo"}
    )
    assert problems == ["--map names group 'typo', which is nowhere in the store"]
