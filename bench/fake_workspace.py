"""A workspace of many finished runs, written directly (no training), for scale benchmarks.

    python bench/fake_workspace.py DIR [--runs 5000] [--epochs 200] [--recent 0]

Each run gets a folder with spec.json and an events.jsonl of ``epochs`` epoch events, and a
summary in the index, in the same formats the engine writes. ``recent`` runs are then
written again through the store, so that the index has a journal of recent changes beside
kdtui.json, as a workspace in use has between two folds.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from kdtui.store import Store, atomic_write, initial_summary


def make_workspace(
    root: Path, runs: int = 5000, epochs: int = 200, seed: int = 0, recent: int = 0
) -> Path:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    index: dict[str, dict] = {}
    groups = max(1, runs // 3)
    for i in range(runs):
        group = i % groups
        run_id = f"g{group:04d}-s{i // groups}-{i:06x}"
        spec = {
            "run_id": run_id, "seed": i // groups, "group_key": f"{group:012x}",
            "created": now - (runs - i) * 60, "label": "WRN16-3(gaf) → WRN16-1(signal)",
            "loss_label": "CE+KD(T=4,w=0.7)", "needs": [],
            "experiment": {"name": f"group-{group:04d}", "epochs": epochs,
                           "data": {"dataset": "synthetic-har"}},
        }  # fmt: skip
        folder = root / run_id
        folder.mkdir()
        (folder / "spec.json").write_text(json.dumps(spec))
        summary = initial_summary(spec)
        base, lines, best = rng.uniform(60, 90), [], 0.0
        for epoch in range(1, epochs + 1):
            acc = min(99.9, base + 10 * epoch / epochs + rng.gauss(0, 1))
            best = max(best, acc)
            lines.append(json.dumps({"type": "epoch", "time": now, "epoch": epoch, "acc": acc,
                                     "nll": 0.5, "ece": 0.03, "train_loss": 0.4, "lr": 0.01,
                                     "seconds": 1.0}))  # fmt: skip
        (folder / "events.jsonl").write_text("\n".join(lines) + "\n")
        summary.update(status="done", epoch=epochs, acc=acc, last_acc=acc, best_acc=best,
                       best_epoch=epochs, started=spec["created"], ended=spec["created"] + 600,
                       device="cuda:0", host="gpu-box")  # fmt: skip
        index[run_id] = summary
    atomic_write(root / "kdtui.json", json.dumps({"runs": index, "todos": {}}).encode())
    if recent:
        Store(root).update_many(list(index)[-recent:], {"device": "cuda:1"})
    return root


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--recent", type=int, default=0, help="runs rewritten via the journal")
    args = parser.parse_args()
    print(make_workspace(args.root, args.runs, args.epochs, recent=args.recent))
