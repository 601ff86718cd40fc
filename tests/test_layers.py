"""The package's layering (pyproject.toml's import-linter contracts) holds: arrows point
down only, torch stays inside kdtui.engine, and the screens are independent."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is part of the test extra: scripts/install.sh test"
    proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "BROKEN" not in proc.stdout


def test_the_contracts_catch_a_store_that_imports_an_executor(tmp_path: Path) -> None:
    """The cycle this round broke (store → slurm → launcher → store) would fail again."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    pkg = tmp_path / "kdtui"
    shutil.copytree(ROOT / "kdtui", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "store.py").write_text(
        (pkg / "store.py").read_text() + "\nfrom kdtui.executors import slurm  # noqa\n"
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    proc = subprocess.run(
        [exe, "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode != 0
    assert "kdtui.store is not allowed to import kdtui.executors" in proc.stdout
