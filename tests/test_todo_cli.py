"""``kdtui todo add/ls/done/rm``: the TUI's checklist from the shell."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kdtui.cli import app
from kdtui.store import Store
from kdtui.todo_cli import todo_items

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
    code, out = todo("add", "GAF teacher", "--group", "gaf-teacher", "--target", "2", workspace=ws)
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
    assert todo("ls", "--format", "yaml", workspace=ws)[0] == 2
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
