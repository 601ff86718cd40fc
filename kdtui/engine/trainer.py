"""Train exactly one run: ``python -m kdtui.engine RUN_DIR``.

The run folder holds the frozen spec; everything the run produces goes back into the same
folder (events, checkpoints, log) and into its summary in the store. This module is the
run itself: set-up, the epoch loop, evaluation, the heartbeat. What it reads (the data and
their views on the device) is ``inputs``; checkpoints and the teachers loaded from them are
``checkpoints``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from kdtui import __version__, procs
from kdtui.engine import augment, inspect, teacher_cache, validation
from kdtui.engine import data as datasets
from kdtui.engine.checkpoints import (
    Teacher,
    build_model,
    load_checkpoint,
    load_teachers,
    save_checkpoint,
)
from kdtui.engine.checkpoints import _misfit as _misfit  # re-exported: tests import it here
from kdtui.engine.inputs import Split, load_arrays, prepare_splits, view_id
from kdtui.engine.inputs import view_tensor as view_tensor  # re-exported: bench imports it here
from kdtui.engine.metrics import classification_metrics
from kdtui.engine.models import ModelOutput, WideResNet
from kdtui.engine.objective import Objective
from kdtui.engine.optim import SGD
from kdtui.engine.watchdog import Watchdog, limit_setting
from kdtui.spec import ConstantSchedule, CosineSchedule, Experiment, StepSchedule
from kdtui.store import HEARTBEAT_EVERY_S, Store, WriteFailed, atomic_write, read_events
from kdtui.threads import THREADS_ENV, Sharing, read_settings


class Diverged(RuntimeError):
    pass


class Cancelled(Exception):
    pass


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------- set-up


def pick_device(requested: str) -> torch.device:
    if requested == "cpu" or not torch.cuda.is_available():
        if requested.startswith("cuda"):
            raise RuntimeError(f"device {requested!r} asked for, but CUDA is not available here")
        return torch.device("cpu")
    return torch.device("cuda" if requested == "auto" else requested)


def device_label(device: torch.device) -> str:
    """The physical device, as the runner assigned it (``cuda:2``, not the ``cuda:0`` that
    CUDA_VISIBLE_DEVICES makes it look like from inside)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    if device.type == "cuda" and visible and "," not in visible:
        return f"cuda:{visible}"
    return str(device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def versions(device: torch.device) -> dict[str, Any]:
    """What reproduces this run: kdtui version and commit, Python, torch, CUDA, device."""
    commit = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = (
            subprocess.run(
                ["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
            or None
        )
    return {
        "kdtui": __version__,
        "git_commit": commit,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu",
    }


# ---------------------------------------------------------------------- schedule


def make_scheduler(
    exp: Experiment, optim: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per epoch."""
    sched = exp.schedule
    if isinstance(sched, CosineSchedule):
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optim, T_max=exp.epochs, eta_min=sched.min_lr
        )
    if isinstance(sched, StepSchedule):
        return torch.optim.lr_scheduler.MultiStepLR(
            optim, milestones=sched.milestones, gamma=sched.gamma
        )
    assert isinstance(sched, ConstantSchedule)
    return torch.optim.lr_scheduler.LambdaLR(optim, lambda _: 1.0)


# ---------------------------------------------------------------------- the run


@dataclass
class Heartbeat:
    """Rewrites ``heartbeat`` every few seconds from a thread, so that a long epoch is
    never mistaken for a dead run."""

    path: Path
    epoch: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def beat(self) -> None:
        atomic_write(self.path, json.dumps({"time": time.time(), "epoch": self.epoch}).encode())

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(HEARTBEAT_EVERY_S):
                with contextlib.suppress(OSError):  # a full disk shows in the events write
                    self.beat()

        self.beat()
        threading.Thread(target=loop, daemon=True, name="heartbeat").start()

    def stop(self) -> None:
        self._stop.set()


@dataclass
class Training:
    """What one run trains with: built once by ``Engine.set_up``, read by every epoch."""

    device: torch.device
    num_classes: int
    train: Split
    test: Split
    val: Split | None  # data.val: the split that chooses the best epoch, when the spec has one
    student: WideResNet
    forward: Callable[[Tensor], ModelOutput]  # the student, compiled when the spec asks
    objective: Objective
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    gen: torch.Generator  # shuffling, mixing and crops: saved in last.pt
    amp_dtype: torch.dtype | None
    scaler: torch.amp.GradScaler
    teachers: list[Teacher]
    cached: list[teacher_cache.CachedTeacher] | None  # the teachers' outputs, when cached
    s_view: str
    mixing: str | None
    start_epoch: int
    best_acc: float
    keeper: inspect.Keeper  # writes what `kdtui analyze` reads at the best and last epochs

    @property
    def batch_views(self) -> set[str] | None:
        """The views a batch needs: the teachers' inputs are not needed when cached."""
        return {self.s_view} if self.cached else None


class Engine:
    def __init__(self, run_dir: Path, sharing: Sharing | None = None):
        self.run_dir = run_dir.resolve()
        self.sharing = sharing  # the threads and priority chosen before torch loaded
        self.store = Store(self.run_dir.parent)
        self.run_spec = json.loads((self.run_dir / "spec.json").read_text())
        self.run_id: str = self.run_spec["run_id"]
        self.exp = Experiment.model_validate(self.run_spec["experiment"])
        self.seed: int = self.run_spec["seed"]
        self.cancel = threading.Event()
        self.ckpt_dir = self.run_dir / "ckpt"
        self.watchdog: Watchdog | None = None

    def event(self, kind: str, **fields: Any) -> None:
        # The events file is the truth: a busy or unwritable index never stops training,
        # the run's summary catches up at its next write.
        event = {"type": kind, "time": time.time(), **fields}
        self.store.record_event(self.run_id, event, catch_up_later=True)

    def main(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.cancel.set())
        signal.signal(signal.SIGINT, lambda *_: self.cancel.set())
        heartbeat = Heartbeat(self.run_dir / "heartbeat")
        try:
            self.train(heartbeat)
            return 0
        except Cancelled:
            asked = (self.store.get(self.run_id) or {}).get("cancel_requested")
            if os.environ.get("KDTUI_EXECUTOR") == "slurm" and not asked:
                # Slurm's SIGTERM (time limit, preemption, scancel): no end event, so that
                # reconcile ends the run with Slurm's reason for the job.
                log("stopped by Slurm")
                return 143
            log("cancelled")
            self.event("end", status="cancelled", reason="cancelled by the user", **self.bests())
            return 0
        except Exception as exc:  # every failure becomes one readable line in the store
            traceback.print_exc()
            sys.stdout.flush()
            self.event("error", message=one_line(exc))
            return 1
        finally:
            heartbeat.stop()

    def bests(self) -> dict[str, Any]:
        epochs = [e for e in read_events(self.run_dir) if e.get("type") == "epoch"]
        if not epochs:
            return {}
        on_val = all("val_acc" in e for e in epochs)
        best = max(epochs, key=selection_score)  # the first of equals, as in training
        kept = inspect.kept(self.run_dir / "analysis")  # listed in the summary, for analyze
        return {
            "best_acc": best["acc"],  # the test accuracy at the epoch chosen
            "best_epoch": best["epoch"],
            "last_acc": epochs[-1]["acc"],
            "best_selected_on": "val" if on_val else "test",
            **({"best_val_acc": best["val_acc"]} if on_val else {}),
            **({"analysis": kept} if kept else {}),
        }

    def train(self, heartbeat: Heartbeat) -> None:
        """Set up, train epoch after epoch (each one checkpointed and recorded), end."""
        t = self.set_up(heartbeat)
        self.watchdog = self.start_watchdog()
        try:
            for epoch in range(t.start_epoch, self.exp.epochs + 1):
                heartbeat.epoch = epoch
                self.run_epoch(t, epoch)
                if self.cancel.is_set():
                    raise Cancelled
        finally:
            if self.watchdog is not None:
                self.watchdog.stop()
        self.event("end", status="done", **self.bests())
        log("done")

    def start_watchdog(self) -> Watchdog | None:
        """The watchdog over the epoch loop (set-up is not watched), unless turned off."""
        fixed_s = limit_setting(read_settings(self.run_dir).get("watchdog"))
        if fixed_s is None:
            return None
        watchdog = Watchdog(fixed_s, self.stalled)
        watchdog.start()
        return watchdog

    def stalled(self, idle_s: float, limit_s: float) -> None:
        """The watchdog's verdict: the run is recorded as failed and the process exits at
        once (its main thread is stuck: no exception would ever reach it)."""
        reason = f"no progress for {_duration(idle_s)}"
        log(f"watchdog: {reason} (limit {_duration(limit_s)}); stopping the run")
        with contextlib.suppress(Exception):  # exit whatever happens: a stuck run is worse
            self.event("end", status="failed", reason=reason, **self.bests())
        sys.stdout.flush()
        os._exit(1)

    # ------------------------------------------------------------------ set-up steps

    def set_up(self, heartbeat: Heartbeat) -> Training:
        """Device and seeds, data, teachers, the start event, then the views and the
        student with its optimiser, resumed from ``last.pt`` when there is one. The order
        is the order the random generators are drawn from: changing it changes results."""
        exp = self.exp
        device = self.configure_torch()
        data = exp.data.model_dump(mode="json")
        arrays = load_arrays(data)
        log(
            f"data {exp.data.dataset}: train {arrays.X_train.shape}, test {arrays.X_test.shape}, {arrays.num_classes} classes"
        )
        teachers, teacher_records = load_teachers(
            self.store, self.run_spec, exp, arrays, device, log=log
        )
        self.event(
            "start",
            pid=os.getpid(),
            pid_start=procs.start_time(os.getpid()),
            host=socket.gethostname(),
            device=device_label(device),
            epochs=exp.epochs,
            teacher_runs=teacher_records,
            versions=versions(device),
            command=[sys.executable, "-m", "kdtui.engine", str(self.run_dir)],
        )
        heartbeat.start()
        models = [exp.student] + [t.model for t in exp.teachers if t.model]
        own_val = validation.from_file(data) if (data.get("val") or {}).get("from_file") else None
        train, test, val = prepare_splits(
            arrays, models, self.store.cache_dir, device, own_val, log=log
        )
        rows = validation.split_rows(
            data, arrays.y_train, data_key=arrays.key, cache_dir=self.store.cache_dir, log=log
        )
        if rows is not None:
            train, val = validation.hold_out(train, rows)
        if val is not None:
            log(f"validation: {len(val)} windows choose the best epoch; {len(train)} train")
        return self.build(arrays, teachers, train, test, val, device)

    def configure_torch(self) -> torch.device:
        """Threads, device, seeds; cudnn autotune on GPU (speed over bitwise repeatability)."""
        threads = os.environ.get(THREADS_ENV)
        if threads:
            torch.set_num_threads(int(threads))
        with contextlib.suppress(RuntimeError):  # set once per process, before any use
            torch.set_num_interop_threads(1)
        if self.sharing is not None:
            s = self.sharing
            priority = f"nice +{s.nice}" if s.nice > 0 else "priority unchanged"
            log(f"threads {s.threads} ({s.why}), {priority}")
        device = pick_device(self.exp.device)
        seed_everything(self.seed)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        return device

    def build(
        self,
        arrays: datasets.Arrays,
        teachers: list[Teacher],
        train: Split,
        test: Split,
        val: Split | None,
        device: torch.device,
    ) -> Training:
        """The student, the objective, optimiser and schedule (resumed if there is a
        ``last.pt``), precision, and the teachers' cached outputs."""
        exp = self.exp
        student = build_model(exp.student, arrays).to(device)
        if device.type == "cuda" and exp.channels_last and exp.student.dim == 2:
            student = student.to(memory_format=torch.channels_last)
        objective = Objective(
            exp.loss,
            [t.weight for t in teachers],
            student.feature_channels[-1],
            [t.model.feature_channels[-1] for t in teachers],
        ).to(device)
        opt = SGD(
            [*student.parameters(), *objective.parameters()],  # DASK's projections train too
            lr=exp.optim.lr,
            momentum=exp.optim.momentum,
            weight_decay=exp.optim.weight_decay,
            nesterov=exp.optim.nesterov,
        )
        sched = make_scheduler(exp, opt)
        gen = torch.Generator().manual_seed(self.seed)
        start_epoch, best_acc = self.resume(student, objective, opt, sched, gen)
        amp_dtype = amp_dtype_for(exp.amp, device)
        train_key = validation.train_key(arrays.key, exp.data.model_dump(mode="json"))
        t = Training(
            device=device,
            num_classes=arrays.num_classes,
            train=train,
            test=test,
            val=val,
            student=student,
            forward=torch.compile(student) if exp.compile else student,
            objective=objective,
            opt=opt,
            sched=sched,
            gen=gen,
            amp_dtype=amp_dtype,
            scaler=torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16),
            teachers=teachers,
            cached=self.cached_teachers(teachers, train, train_key, device, amp_dtype),
            s_view=view_id(exp.student),
            mixing=exp.augment.method if exp.augment else None,
            start_epoch=start_epoch,
            best_acc=best_acc,
            keeper=self.keeper(arrays, student, teachers, test, amp_dtype, device),
        )
        log(
            f"student {exp.student.label()}: {sum(p.numel() for p in student.parameters()):,} parameters, on {device}; loss {exp.loss_label()}"
        )
        return t

    # ------------------------------------------------------------------ one epoch

    def run_epoch(self, t: Training, epoch: int) -> None:
        """Train on every batch, step the schedule, evaluate, checkpoint, record."""
        t0 = time.perf_counter()
        train_loss, parts = self.train_epoch(t, epoch)
        lr = t.opt.param_groups[0]["lr"]
        t.sched.step()
        bs = self.exp.batch_size
        out = t.keeper.predict(t.student, bs)  # the kept samples' maps on the way
        metrics = classification_metrics(out.logits, t.test.labels)
        if t.val is not None:
            on_val = evaluate(t.student, t.val, t.s_view, bs, t.amp_dtype, t.device)
            metrics |= {f"val_{k}": v for k, v in on_val.items()}
        improved = selection_score(metrics) > t.best_acc
        record = {
            "type": "epoch",
            "epoch": epoch,
            "train_loss": train_loss,
            "parts": parts,
            "lr": lr,
            "seconds": round(time.perf_counter() - t0, 4),
            **metrics,
        }
        self.checkpoint(t, record)
        for which in ("best",) * improved + ("last",) * (epoch == self.exp.epochs):
            t.keeper.save(which, epoch, out, metrics)
        self.event("epoch", **{k: v for k, v in record.items() if k != "type"})
        if self.watchdog is not None:
            self.watchdog.epoch_done(record["seconds"])
        val = f"val acc {metrics['val_acc']:.2f}%, " if "val_acc" in metrics else ""
        best = f"best {'val ' if val else ''}{t.best_acc:.2f}%"
        log(
            f"epoch {epoch}/{self.exp.epochs}: loss {train_loss:.4f}, {val}test acc {metrics['acc']:.2f}% ({best}), {record['seconds']:.2f} s"
        )

    def train_epoch(self, t: Training, epoch: int) -> tuple[float, dict[str, float]]:
        """One pass over the shuffled train split: the mean loss and its mean parts."""
        t.student.train()
        perm = torch.randperm(len(t.train), generator=t.gen).to(t.device)
        total, sums, n_batches = torch.zeros((), device=t.device), {}, 0
        for i in range(0, len(perm), self.exp.batch_size):
            idx = perm[i : i + self.exp.batch_size]
            if len(idx) < 2:
                continue  # batch norm cannot train on a single sample
            if self.cancel.is_set():
                raise Cancelled
            loss, parts = self.train_step(t, idx)
            if self.watchdog is not None:
                self.watchdog.progress()
            total += loss
            for k, v in parts.items():
                sums[k] = sums.get(k, 0) + v
            n_batches += 1
        train_loss = float(total) / max(n_batches, 1)
        if not np.isfinite(train_loss):
            raise Diverged(f"diverged at epoch {epoch} (train loss {train_loss})")
        return train_loss, {k: float(v) / n_batches for k, v in sums.items()}

    def train_step(self, t: Training, idx: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """One optimiser step on the samples ``idx``: their loss and its parts, detached."""
        views, labels = t.train.take(idx, t.gen, only=t.batch_views)
        views, target, hard = augment.mix_batch(
            views, labels, t.num_classes, t.mixing, t.s_view, t.gen
        )
        amp = t.amp_dtype
        with torch.autocast(t.device.type, dtype=amp, enabled=amp is not None):
            with torch.no_grad():
                t_outs = (
                    [c.take(idx) for c in t.cached]
                    if t.cached
                    else [teacher.model(views[teacher.view]) for teacher in t.teachers]
                )
            s_out: ModelOutput = t.forward(views[t.s_view])
            loss, parts = t.objective(s_out, t_outs, target, hard)
        t.opt.zero_grad(set_to_none=True)
        t.scaler.scale(loss).backward()
        t.scaler.step(t.opt)
        t.scaler.update()
        return loss.detach(), parts

    def checkpoint(self, t: Training, record: dict[str, Any]) -> None:
        """``best.pt`` when the accuracy that selects (validation's, else the test's)
        improved, then ``last.pt`` with everything a resume needs, this epoch's event
        included (see ``resume``)."""
        epoch, acc, score = record["epoch"], record["acc"], selection_score(record)
        if score > t.best_acc:
            t.best_acc = score
            val = {"val_acc": record["val_acc"]} if "val_acc" in record else {}
            self.save("best", {"model": t.student.state_dict(), "epoch": epoch, "acc": acc, **val})
        self.save(
            "last",
            {
                "model": t.student.state_dict(),
                "objective": t.objective.state_dict(),
                "optim": t.opt.state_dict(),
                "sched": t.sched.state_dict(),
                "gen": t.gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "epoch": epoch,
                "best_acc": t.best_acc,
                "event": json.dumps(record),
            },
        )

    def keeper(
        self,
        arrays: datasets.Arrays,
        student: WideResNet,
        teachers: list[Teacher],
        test: Split,
        amp_dtype: torch.dtype | None,
        device: torch.device,
    ) -> inspect.Keeper:
        """What the run keeps for analysis: the test split's outputs, and the maps and
        inputs of a few fixed test samples for the student and each of its teachers."""
        exp = self.exp
        specs = [exp.student] + [t.model for t in exp.teachers if t.model]
        models = [student] + [t.model for t in teachers]
        sources = [None] + [t.source for t in teachers]
        roles = ["student"] + [f"teacher {i}" for i in range(1, len(teachers) + 1)]
        members = [
            inspect.Member(role, spec.label(), model, view_id(spec),
                           spec.view.model_dump(mode="json"), source)
            for role, spec, model, source in zip(roles, specs, models, sources, strict=True)
        ]  # fmt: skip
        channels = getattr(exp.data, "channels", None) or list(range(arrays.in_channels))
        return inspect.Keeper(
            self.run_dir / "analysis",
            test,
            members,
            classes=list(arrays.classes),
            channels=channels,
            p=exp.loss.at.p if exp.loss.at else 2.0,
            amp_dtype=amp_dtype,
            device=device,
        )

    def cached_teachers(
        self,
        teachers: list[Teacher],
        train: Split,
        data_key: str,
        device: torch.device,
        amp_dtype: torch.dtype | None,
    ) -> list[teacher_cache.CachedTeacher] | None:
        """The teachers' outputs on the whole train split, once, when their inputs are the
        same every epoch and they fit the memory budget; None means compute per batch."""
        exp = self.exp
        if not teachers or not exp.teacher_cache:
            return None
        if exp.augment or train.image_stats:
            log("teacher cache: off (augmentation changes the teachers' inputs every epoch)")
            return None
        out = []
        for t in teachers:
            rows = train.views[t.view]
            size = teacher_cache.output_bytes(t.model, rows[:1], len(rows), exp.loss)
            if size > teacher_cache.MAX_BYTES:
                log(f"teacher cache: off ({size / 2**30:.1f} GiB > KDTUI_TEACHER_CACHE_GB)")
                return None
            key = teacher_cache.cache_key(t.checkpoint, data_key, t.view, exp.loss, str(amp_dtype))
            out.append(
                teacher_cache.load_or_compute(
                    self.store.cache_dir / "teachers" / f"{key}.pt",
                    device,
                    lambda t=t, rows=rows: teacher_cache.compute(
                        t.model,
                        lambda idx: rows[idx],
                        len(rows),
                        exp.loss,
                        exp.batch_size,
                        device,
                        amp_dtype,
                    ),  # fmt: skip
                    log,
                )
            )
        return out

    def save(self, which: str, payload: dict[str, Any]) -> None:
        """``ckpt/<which>.pt``, its sidecar naming this run and its student."""
        model = self.exp.student.model_dump(mode="json")
        save_checkpoint(self.ckpt_dir / f"{which}.pt", payload, model, self.run_id, self.run_dir)

    def resume(
        self,
        student: nn.Module,
        objective: nn.Module,
        opt: torch.optim.Optimizer,
        sched: Any,
        gen: torch.Generator,
    ) -> tuple[int, float]:
        """Continue from ``last.pt`` if there is one: model, objective (DASK's
        projections), optimiser, scheduler, RNG states, epoch. The epoch event written with
        the checkpoint is appended if a kill came between the two writes, so the events hold
        every epoch exactly once."""
        path = self.ckpt_dir / "last.pt"
        if not path.exists():
            return 1, -1.0
        ckpt = load_checkpoint(path)
        student.load_state_dict(ckpt["model"])
        objective.load_state_dict(ckpt.get("objective", {}))  # absent before DASK existed
        opt.load_state_dict(ckpt["optim"])
        sched.load_state_dict(ckpt["sched"])
        gen.set_state(ckpt["gen"])
        torch.set_rng_state(ckpt["torch_rng"])
        epoch = int(ckpt["epoch"])
        seen = {e.get("epoch") for e in read_events(self.run_dir) if e.get("type") == "epoch"}
        if epoch not in seen:
            record = json.loads(ckpt["event"])
            self.event("epoch", **{k: v for k, v in record.items() if k != "type"})
        log(f"resumed after epoch {epoch} from {path}")
        return epoch + 1, float(ckpt["best_acc"])


def selection_score(metrics: dict[str, Any]) -> float:
    """The accuracy that chooses the best epoch: validation's when the run has a validation
    split, else the test set's (and results say so)."""
    return metrics.get("val_acc", metrics["acc"])


def amp_dtype_for(amp: str, device: torch.device) -> torch.dtype | None:
    """Mixed precision only on CUDA: bf16 where the GPU has it (no loss scaling needed)."""
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "fp16" or (amp == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


@torch.no_grad()
def evaluate(
    model: nn.Module,
    split: Split,
    view: str,
    batch_size: int,
    amp_dtype: torch.dtype | None,
    device: torch.device,
) -> dict[str, float]:
    """Accuracy, NLL and ECE of ``model`` on a whole split."""
    out = inspect.predict(model, split, view, batch_size, amp_dtype, device)
    return classification_metrics(out.logits, split.labels)


def _duration(seconds: float) -> str:
    """``45 min``, ``2.5 min``, or ``12 s`` below a minute (a tiny test limit)."""
    minutes = seconds / 60
    if minutes >= 10:
        return f"{minutes:.0f} min"
    return f"{minutes:.1f} min" if minutes >= 1 else f"{seconds:.0f} s"


def one_line(exc: BaseException) -> str:
    """A failure as one line for `kdtui ls`: the type (unless it speaks for itself) and the
    first line of the message."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return "CUDA out of memory: lower batch_size or run fewer runs per GPU"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, (Diverged, datasets.DataError, WriteFailed)) or not text:
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


def main(argv: list[str] | None = None, sharing: Sharing | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m kdtui.engine RUN_DIR", file=sys.stderr)
        return 2
    return Engine(Path(argv[0]), sharing).main()
