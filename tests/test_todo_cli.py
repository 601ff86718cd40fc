"""``kdtui todo add/ls/done/rm``: the TUI's checklist from the shell."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kdtui.cli import app
from kdtui.store import Store
from kdtui.todo import todo_items

runner = CliRunner()


def todo(*args: str, workspace: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["todo", *args, "-w", str(workspace)])
    return result.exit_code, result.output


def done_run(run_id: str, name: str, seed: int, status: str = "done") -> dict:
    return {"run_id": run_id, "name": name, "seed": seed, "status": status, "group_key": name}


def test_add_list_tick_and_remove(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    code, out = todo("add", "write the AT section", workspace=ws)
    assert code == 0 and out.startswith("added ")
    free_id = out.split()[1]
    code, out = todo("add", "GAF teacher", "--group", "gaf-teacher", "--target", "2", "--new",
                     workspace=ws)  # fmt: skip
    assert code == 0
    code, out = todo("ls", workspace=ws)
    assert "write the AT section" in out and "GAF teacher" in out and "0/2" in out

    code, out = todo("done", free_id[:4], workspace=ws)
    assert code == 0 and "ticked" in out
    items = json.loads(todo("ls", "--format", "json", workspace=ws)[1])
    assert [(i["text"], i["done"]) for i in items] == [
        ("write the AT section", True),
        ("GAF teacher", False),
    ]
    assert items[1]["group"] == "gaf-teacher" and items[1]["target"] == 2

    assert todo("done", free_id, "--undo", workspace=ws)[0] == 0
    assert not json.loads(todo("ls", "-f", "json", workspace=ws)[1])[0]["done"]
    assert todo("rm", free_id, workspace=ws)[0] == 0
    assert [t["text"] for t in Store(ws).todos()] == ["GAF teacher"]


def test_errors_exit_2(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert todo("done", "nope", workspace=ws)[0] == 2
    assert todo("add", "x", "--target", "3", workspace=ws)[0] == 2  # a target needs a group
    assert todo("add", "x", "--new", workspace=ws)[0] == 2  # so does --new
    assert todo("ls", "--format", "yaml", workspace=ws)[0] == 2
    assert todo("add", "  ", workspace=ws)[0] == 2  # an item of nothing
    assert "nothing to do" in todo("ls", workspace=ws)[1]


def test_linked_items_tick_themselves_once_enough_seeds_are_done() -> None:
    todos = [{"id": "a", "text": "kd", "group": "kd", "target": 3, "order": 1}]
    runs = [
        done_run("kd-s0", "kd", 0),
        done_run("kd-s1", "kd", 1),
        done_run("kd-s1-again", "kd", 1),  # a rerun of a seed counts once
        done_run("kd-s2", "kd", 2, status="running"),
        done_run("other-s2", "other", 2),
    ]
    (item,) = todo_items(todos, runs)
    assert (item.progress, item.target, item.done, item.progress_text) == (2, 3, False, "2/3")
    runs[3]["status"] = "done"
    (item,) = todo_items(todos, runs)
    assert item.done and not item.ticked and item.progress_text == "3/3"


def test_a_group_must_name_runs_of_the_store(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    code, out = todo("add", "x", "--group", "nonexist", "--target", "3", workspace=ws)
    assert code == 2 and "'nonexist' matches no experiment name or group key" in out
    assert "(no runs yet)" in out and not ws.exists()

    assert runner.invoke(app, ["record", "kd-teacher", "70", "-w", str(ws)]).exit_code == 0
    code, out = todo("add", "x", "--group", "kd-teachr", workspace=ws)
    assert code == 2 and "(close: kd-teacher)" in out and "--new" in out
    assert Store(ws).todos() == []

    assert todo("add", "by name", "--group", "kd-teacher", workspace=ws)[0] == 0
    (key,) = {r["group_key"] for r in Store(ws).runs()}
    assert todo("add", "by key", "--group", key, "-n", "1", workspace=ws)[0] == 0
    assert todo("add", "later", "--group", "not-run-yet", "--new", workspace=ws)[0] == 0
    items = json.loads(todo("ls", "-f", "json", workspace=ws)[1])
    assert [(i["text"], i["progress"], i["done"]) for i in items] == [
        ("by name", 1, False),
        ("by key", 1, True),  # a group key counts its seeds like a name does
        ("later", 0, False),
    ]


def test_group_help_says_name_or_key() -> None:
    result = runner.invoke(app, ["todo", "add", "--help"], env={"COLUMNS": "200"})
    assert "experiment name or group key" in result.output
