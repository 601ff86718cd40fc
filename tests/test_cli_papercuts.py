"""The command line's first-week papercuts (issue 17): --version, help that reads whole at
80 columns, resuming every cancelled run, rounded numbers in ``show``, a fill that names
the blocks it could not match, an honest untick of a self-ticking TODO item, and piped
``kdtui run`` progress with the elapsed time counted from the start of training."""

from __future__ import annotations

import io
import json
import re
import shutil
import time
from pathlib import Path

import click
import pytest
import typer
from conftest import run_cli, tiny_experiment
from rich.cells import cell_len
from rich.console import Console
from typer.testing import CliRunner

import kdtui
from kdtui import cli, follow_cli, launcher
from kdtui.executors import local
from kdtui.spec import validate_spec
from kdtui.store import Store

EXAMPLE = Path(__file__).parent.parent / "examples" / "notes.md"
PYPROJECT = Path(__file__).parent.parent / "pyproject.toml"


def invoke(*args: str, columns: int = 200) -> click.testing.Result:
    env = {"COLUMNS": str(columns), "NO_COLOR": "1"}
    return CliRunner().invoke(cli.app, list(args), env=env)


@pytest.fixture
def no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resuming or opening a store with queued runs starts no queue runner."""
    monkeypatch.setattr(local, "ensure_runner", lambda store: None)


# ---------------------------------------------------------------------- --version


def test_version_prints_the_package_version_and_exits_0(tmp_path: Path) -> None:
    (declared,) = re.findall(r'^version = "([^"]+)"', PYPROJECT.read_text(), re.M)
    assert kdtui.__version__ == declared  # one version, wherever it is read
    result = invoke("--version")
    assert result.exit_code == 0 and result.output == f"kdtui {declared}\n"
    real = run_cli("--version", workspace=tmp_path / "ws")  # eager: no workspace, no app
    assert (real.returncode, real.stdout) == (0, f"kdtui {declared}\n")
    assert not (tmp_path / "ws").exists()


# ---------------------------------------------------------------------- --help


def command_paths() -> list[list[str]]:
    """Every command and group of the CLI, as typed: [], ["run"], ["notes", "fill"], ..."""
    paths: list[list[str]] = []

    def walk(command: click.Command, path: list[str]) -> None:
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(cli.app), [])
    return paths


def forced_breaks(text: str, width: int = 80) -> list[str]:
    """Lines that end a sentence's line early: the next line's first word would have fit
    after them in the same column, so the break came from the source, not from wrapping.
    A continuation that starts with ``[`` (``[default: ...]``, ``[required]``) is laid out
    on its own line on purpose."""
    lines = text.splitlines()
    found = []
    for a, b in zip(lines, lines[1:], strict=False):
        b_words = b.replace("│", " ").split()
        if not b_words or b_words[0].startswith("[") or not a.strip(" │"):
            continue
        start = b.index(b_words[0])
        row_start = b.index("│") + 2 if "│" in b else 1
        if start == row_start and "│" in b:
            continue  # a panel's next row
        if start >= len(a) or a[start] == " " or a[start - 1] != " ":
            continue  # not a continuation of the same column
        end = a.rfind("│") if a.rstrip().endswith("│") else width - 1
        cell = a[start:end].rstrip()
        room = end - 1 - start
        if cell and cell_len(cell) + 1 + cell_len(b_words[0]) <= room:
            found.append(f"{a.rstrip()!r} / {b_words[0]!r}")
    return found


def test_forced_breaks_finds_a_line_broken_by_the_source() -> None:
    broken = (
        "│ record   Add an outside result by hand: a finished run of GROUP with this    │\n"
        "│          accuracy. A                                                         │\n"
        "│          recorded value is removed again with `kdtui rm RUN`.                │\n"
    )
    assert len(forced_breaks(broken)) == 1
    wrapped = (
        "│ record   Add an outside result by hand: a finished run of GROUP with this    │\n"
        "│          accuracy. A recorded value is removed again with `kdtui rm RUN`.    │\n"
    )
    assert forced_breaks(wrapped) == []


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "kdtui")
def test_every_help_reads_whole_at_80_columns(path: list[str]) -> None:
    result = invoke(*path, "--help", columns=80)
    assert result.exit_code == 0, result.output
    assert forced_breaks(result.output) == [], result.output
    command = typer.main.get_command(cli.app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    # every word of the command's help is shown: none cut, none eaten as markup ([x])
    written = " ".join((command.help or "").replace("\\[", "[").split())
    assert written in " ".join(result.output.split()), result.output


# ---------------------------------------------------------------------- resume


def test_resume_all_cancelled_requeues_every_cancelled_run(workspace: Path, no_processes) -> None:
    store = Store(workspace)
    ids = launcher.enqueue(store, validate_spec(tiny_experiment("kd", seeds=[0, 1, 2, 3])))
    statuses = dict(zip(ids, ["cancelled", "cancelled", "crashed", "done"], strict=True))
    for run_id, status in statuses.items():
        store.update(run_id, {"status": status})
    result = invoke("resume", "--all-cancelled")
    assert result.exit_code == 0 and "resuming 2 runs" in result.output, result.output
    now = {r["run_id"]: r["status"] for r in store.runs()}
    assert now == dict(zip(ids, ["queued", "queued", "crashed", "done"], strict=True))

    store.update(ids[0], {"status": "cancelled"})
    both = invoke("resume", "--all-cancelled", "--all-crashed")
    assert both.exit_code == 0 and "resuming 2 runs" in both.output, both.output
    assert {r["status"] for r in store.runs()} == {"queued", "done"}
    named = invoke("resume")
    assert named.exit_code == 2 and "--all-crashed or --all-cancelled" in named.output


# ---------------------------------------------------------------------- show


def test_show_rounds_accuracies_and_metrics_as_the_tables_do(workspace: Path) -> None:
    store = Store(workspace)
    (run_id,) = launcher.enqueue(store, validate_spec(tiny_experiment("kd")))
    store.record_event(run_id, {"type": "start", "device": "cpu", "epochs": 2})
    epoch = {"type": "epoch", "epoch": 1, "acc": 71.42857360839844, "train_loss": 0.5,
             "nll": 0.9123456789, "ece": 0.041234567, "lr": 0.05, "seconds": 1.0}  # fmt: skip
    store.record_event(run_id, epoch)
    store.record_event(run_id, {"type": "end", "status": "done", "best_acc": 71.42857360839844,
                                "best_epoch": 1, "last_acc": 71.42857360839844})  # fmt: skip
    result = invoke("show", run_id)
    assert result.exit_code == 0, result.output
    for line in ("  best_acc    71.43", "  last_acc    71.43", "  nll         0.912",
                 "  ece         0.041", "  best_epoch  1", "  seed        0"):  # fmt: skip
        assert line in result.output.splitlines(), result.output
    assert "71.428" not in result.output and "0.9123" not in result.output


# ---------------------------------------------------------------------- notes fill


def test_fill_from_store_names_the_blocks_that_match_no_group(workspace: Path, tmp_path) -> None:
    notes = tmp_path / "notes.md"
    shutil.copy(EXAMPLE, notes)
    assert invoke("record", "WRN16-3 GAF teacher", "0.7401", "--seed", "2").exit_code == 0
    assert invoke("record", "T1 : WRN16-3(sig), T2 : WRN16-3(GAF)", "69.3").exit_code == 0
    dry = invoke("notes", "fill", str(notes), "--from-store", "--dry-run")
    assert dry.exit_code == 0, dry.output
    lines = dry.output.splitlines()
    assert (
        "--from-store: 3 blocks with blank seeds match no group of the store by title "
        "(their own imported numbers aside):" in lines
    )
    assert "  line 17  WRN16-3(GAF) teacher (close: WRN16-3 GAF teacher)" in lines
    assert "  line 26  T : WRN16-3(GAF), S : WRN16-1(sig) result" in lines
    assert "  line 58  T1 : WRN28-3(sig), T2 : WRN28-3(GAF)" in lines
    assert not any("line 53" in line for line in lines)  # matched by its title
    (hint,) = [line for line in lines if "--map FILE.json" in line]
    assert json.loads(hint[hint.index("{") :]) == {"WRN16-3(GAF) teacher": "WRN16-3 GAF teacher"}

    # the suggestion, as given, fills the block it names and names it no more
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"WRN16-3(GAF) teacher": "WRN16-3 GAF teacher"}))
    done = invoke("notes", "fill", str(notes), "--from-store", "--map", str(mapping))
    assert done.exit_code == 0, done.output
    assert "- 0.7412\n- 0.7389\n- 0.7401\n" in notes.read_text()
    assert "2 blocks with blank seeds match no group" in done.output
    assert "  line 17  WRN16-3(GAF) teacher (close:" not in done.output
    # no close names left: the form of the mapping, for the first block
    example = '{"T : WRN16-3(GAF), S : WRN16-1(sig) result": "GROUP"}'
    assert f"  name their groups (as in kdtui table) with --map FILE.json, e.g. {example}" in (
        done.output.splitlines()
    )


# ---------------------------------------------------------------------- todo done --undo


def test_undo_on_a_self_ticking_item_says_it_stays_ticked(workspace: Path) -> None:
    for value in ("70", "71"):
        assert invoke("record", "grpA", value).exit_code == 0
    linked = invoke("todo", "add", "grpA, two seeds", "--group", "grpA", "--target", "2")
    by_hand = invoke("todo", "add", "grpA, three seeds", "--group", "grpA", "--target", "3")
    linked_id, hand_id = linked.output.split()[1], by_hand.output.split()[1]

    def ticked() -> dict[str, bool]:
        return {t["id"]: t["done"] for t in json.loads(invoke("todo", "ls", "-f", "json").output)}

    assert ticked() == {linked_id: True, hand_id: False}
    undo = invoke("todo", "done", linked_id, "--undo")
    assert undo.exit_code == 0 and "unticked" not in undo.output, undo.output
    assert f"{linked_id} stays ticked: it is linked to 'grpA', whose 2/2 seeds are done" in (
        undo.output
    )
    assert f"kdtui todo done {linked_id} --undo --unlink" in undo.output
    assert ticked()[linked_id] is True

    unlinked = invoke("todo", "done", linked_id, "--undo", "--unlink")
    assert unlinked.exit_code == 0 and unlinked.output.startswith(f"unticked {linked_id}")
    assert "(no longer linked to 'grpA')" in unlinked.output
    (item,) = [
        t for t in json.loads(invoke("todo", "ls", "-f", "json").output) if t["id"] == linked_id
    ]
    assert (item["done"], item["group"]) == (False, None)

    # ticked by hand, its target not met: an untick is an untick
    assert invoke("todo", "done", hand_id).exit_code == 0 and ticked()[hand_id] is True
    plain = invoke("todo", "done", hand_id, "--undo")
    assert plain.output.startswith(f"unticked {hand_id}") and ticked()[hand_id] is False
    assert invoke("todo", "done", hand_id, "--unlink").exit_code == 2


# ---------------------------------------------------------------------- piped run


def scripted(store: Store, run_ids: list[str], monkeypatch: pytest.MonkeyPatch, t0: float):
    """Each poll of ``follow`` (its sleep) applies the next events: the first run starts at
    t0 and trains 2 epochs (ending at t0 + 125 s); the second is cancelled while queued.
    Returns what was printed before each step, to check lines come as they happen."""
    first, second = run_ids
    steps = [
        [(first, {"type": "start", "device": "cpu", "epochs": 2, "time": t0})],
        [(first, {"type": "epoch", "epoch": 1, "acc": 50.0, "time": t0 + 60})],
        [(first, {"type": "epoch", "epoch": 2, "acc": 71.42857360839844, "time": t0 + 120})],
        [(first, {"type": "end", "status": "done", "best_acc": 71.42857360839844,
                  "time": t0 + 125}),
         (second, {"type": "end", "status": "cancelled", "time": t0 + 125})],
    ]  # fmt: skip
    seen: list[str] = []

    def sleep(_: float) -> None:
        seen.append(follow_cli.out.file.getvalue())
        for run_id, event in steps.pop(0) if steps else []:
            store.record_event(run_id, event)

    monkeypatch.setattr(follow_cli.time, "sleep", sleep)
    monkeypatch.setattr(follow_cli, "reconcile", lambda store: [])
    return seen


def test_piped_follow_prints_a_line_per_change_as_it_happens(workspace, monkeypatch) -> None:
    store = Store(workspace)
    run_ids = launcher.enqueue(store, validate_spec(tiny_experiment("kd", seeds=[0, 1])))
    monkeypatch.setattr(follow_cli, "out", Console(file=io.StringIO(), width=200, highlight=False))
    assert not follow_cli.out.is_terminal
    seen = scripted(store, run_ids, monkeypatch, time.time() - 1000)
    follow_cli.follow(store, run_ids)
    lines = follow_cli.out.file.getvalue().splitlines()
    assert lines == [
        f"kd s0  started on cpu ({run_ids[0]})",
        # no data.val: best on test, which flatters it
        "kd s0  epoch 1/2  acc 50.00  best 50.00 on test  " + lines[1].split()[-1],
        "kd s0  epoch 2/2  acc 71.43  best 71.43 on test  " + lines[2].split()[-1],
        "kd s0  done  best 71.43 on test  0:02:05",  # from its start, not from its queueing
        "kd s1  cancelled",
    ]
    assert seen[0] == ""  # queued: "queued 2 runs" said it already
    assert seen[1].splitlines() == lines[:1]  # each line before the next poll
    assert seen[2].splitlines() == lines[:2]


def test_terminal_follow_counts_elapsed_from_the_start_of_training(workspace, monkeypatch):
    store = Store(workspace)
    run_ids = launcher.enqueue(store, validate_spec(tiny_experiment("kd", seeds=[0, 1])))
    term = Console(file=io.StringIO(), width=160, force_terminal=True, color_system=None)
    monkeypatch.setattr(follow_cli, "out", term)
    scripted(store, run_ids, monkeypatch, time.time() - 5000)  # queued just now
    follow_cli.follow(store, run_ids)
    final = term.file.getvalue().rsplit("kd s0", 1)[1]
    assert "2/2" in final and "0:02:05" in final
    assert "-:--:--" in final.split("kd s1", 1)[1]  # cancelled before it started


def test_training_seconds() -> None:
    assert follow_cli.training_seconds({"status": "queued"}) is None
    run = {"status": "running", "started": 100.0}
    assert follow_cli.training_seconds(run, now=160.0) == 60.0
    assert follow_cli.training_seconds(run | {"status": "done", "ended": 130.0}, now=999) == 30.0


def test_run_s_lines_say_where_each_best_was_chosen() -> None:
    run = {"name": "kd", "seed": 0, "status": "done", "best_acc": 80.0, "started": 1, "ended": 61}
    assert follow_cli.progress_line({**run, "best_selected_on": "val"}).startswith(
        "kd s0  done  best 80.00 on val  "
    )
    assert "best 80.00 on test  " in follow_cli.progress_line(run)  # trained before the field
    outside = {**run, "source": "notes"}
    assert "best 80.00  " in follow_cli.progress_line(outside)  # not known: not said
    # the live view's columns keep their width, whichever split chose
    assert len(follow_cli.fmt_best({**run, "best_selected_on": "val"}, width=6)) == len(
        follow_cli.fmt_best(run, width=6)
    )
