"""Shared fixtures: tiny specs and workspaces. Nothing here downloads anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


def tiny_experiment(name: str, /, **over: Any) -> dict[str, Any]:
    """A spec small enough to train in a second or two on one CPU core."""
    exp: dict[str, Any] = {
        "name": name,
        "data": {
            "dataset": "synthetic-har",
            "n_train": 48,
            "n_test": 24,
            "length": 64,
            "n_classes": 3,
        },
        "student": {"depth": 10, "width": 1, "view": "signal"},
        "optim": {"lr": 0.05},
        "schedule": {"kind": "cosine", "min_lr": 0.0001},
        "epochs": 2,
        "batch_size": 16,
        "seeds": [0],
    }
    exp.update(over)  # may replace "name" too
    return exp


@pytest.fixture
def write_spec(tmp_path: Path):
    def write(body: Any, name: str = "spec.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(body, indent=1))
        return path

    return write


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = tmp_path / "ws"
    monkeypatch.setenv("KDTUI_WORKSPACE", str(ws))
    return ws
