"""The one launch path (``launcher.prepare_launch``) that ``kdtui run`` and the composer
share: what it queues, what it refuses before writing anything, and what it tells."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import tiny_experiment
from tuikit import STALE_ENV, KdApp, until

from kdtui import launcher
from kdtui.executors import ExecutorError, LocalExecutor, local
from kdtui.spec import SpecError
from kdtui.store import Store


@pytest.fixture(autouse=True)
def no_processes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Runs are queued, never started: no queue runner, no engine."""
    started: list[Path] = []
    monkeypatch.setattr(local, "ensure_runner", lambda store: started.append(store.root))
    monkeypatch.setattr(launcher, "revive_runner", lambda store: 0)
    for key, value in STALE_ENV.items():
        monkeypatch.setenv(key, value)
    return started


def test_a_launch_queues_starts_and_says_what_the_store_had(tmp_path, no_processes) -> None:
    store = Store(tmp_path / "ws")
    first = launcher.prepare_launch(store, tiny_experiment("kd", seeds=[0, 1]), LocalExecutor())
    assert len(first.run_ids) == 2 and first.notes() == [] and no_processes == [store.root]
    again = launcher.prepare_launch(store, tiny_experiment("kd", seeds=[1, 2]), LocalExecutor())
    assert again.again == {"kd": [1]} and again.taken == {}
    assert again.notes() == [
        "the store has kd seed 1 already: trained again, the latest run counts"
    ]
    other = launcher.prepare_launch(store, tiny_experiment("kd", epochs=3), LocalExecutor())
    (note,) = other.notes()
    assert note.startswith("'kd' already names another configuration (group ")
    assert len(store.runs()) == 5


def test_skip_done_leaves_out_the_seeds_the_store_has(tmp_path) -> None:
    store = Store(tmp_path / "ws")
    launcher.prepare_launch(store, tiny_experiment("kd", seeds=[0, 1]), LocalExecutor())
    spec = tiny_experiment("kd", seeds=[1, 2])
    launch = launcher.prepare_launch(store, spec, LocalExecutor(), skip_done=True)
    assert launch.skipped and launch.notes() == []
    assert [store.get(i)["seed"] for i in launch.run_ids] == [2]
    nothing = launcher.prepare_launch(store, spec, LocalExecutor(), skip_done=True)
    assert nothing.run_ids == [] and len(store.runs()) == 3


def test_nothing_is_written_for_a_bad_spec_or_an_executor_that_cannot_start(tmp_path) -> None:
    store = Store(tmp_path / "ws")
    with pytest.raises(SpecError):
        launcher.prepare_launch(store, tiny_experiment("kd", epochs=0), LocalExecutor())

    class Refusing(LocalExecutor):
        def check(self, store: Store, log: Any) -> None:
            raise ExecutorError("not from here")

    with pytest.raises(ExecutorError, match="not from here"):
        launcher.prepare_launch(store, tiny_experiment("kd"), Refusing())
    assert not store.index_path.exists() and not store.root.exists()


def test_a_spec_file_is_read_and_the_local_slots_are_written(tmp_path) -> None:
    folder = tmp_path / "specs"
    folder.mkdir()
    spec = folder / "kd.json"
    spec.write_text(json.dumps(tiny_experiment("kd")))
    launch = launcher.prepare_launch(Store(tmp_path / "ws"), spec, LocalExecutor(jobs=2))
    assert launch.loaded.source == str(spec) and len(launch.run_ids) == 1
    assert local.read_runner_config(Store(tmp_path / "ws")) == {"jobs": 2}


async def test_the_composer_says_a_name_already_names_another_configuration(
    tmp_path: Path, no_processes: list[Path]
) -> None:
    """It used to queue silently where ``kdtui run`` gave this note."""
    store = Store(tmp_path / "ws")
    other = tiny_experiment("my-experiment")  # the composer's template name, other settings
    launcher.prepare_launch(store, other, LocalExecutor())
    app = KdApp(store.root, devices="cpu ×2", poll_s=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        screen = app.screen
        await until(pilot, lambda: screen.problems == [] and not screen.checking, "a valid form")
        await pilot.press("ctrl+r")
        notes = await until(
            pilot,
            lambda: [n.message for n in app._notifications if "already names" in n.message],
            "the note",
        )
    assert notes[0].startswith("'my-experiment' already names another configuration (group ")
    assert len(store.runs()) == 4 and no_processes == [store.root, store.root]
