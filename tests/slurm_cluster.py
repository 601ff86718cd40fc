"""A throw-away single-node Slurm cluster on this machine, for the Slurm tests.

munged, slurmctld and slurmd (Debian's packages) run in the foreground as children of the
test process, with every file — munge key and socket, slurm.conf, state, spool, logs — in
a fresh folder under /tmp and the daemons on free ports, so a system Slurm, if any, is left
alone. The node is this host with its CPUs and no GPU; no cgroups (proctrack/linuxproc,
task/none). There is no slurmdbd: ``sacct`` reads the job-completion log
(``JobCompType=jobcomp/filetxt``, ``sacct --completion``), and squeue keeps finished jobs
for MinJobAge. Start-up and tear-down are bounded in time, and tear-down cancels every job
and stops every daemon this module started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo", "scontrol", "sacct")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0


def _which(program: str) -> str | None:
    return shutil.which(program, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def unavailable() -> str | None:
    """Why a cluster cannot be started here, or None."""
    missing = [p for p in DAEMONS + CLIENTS if _which(p) is None]
    if missing:
        return (
            f"Slurm test cluster: {', '.join(missing)} not installed "
            "(scripts/install.sh test installs slurmctld slurmd slurm-client munge as root on Debian)"
        )
    if os.geteuid() != 0:
        return "Slurm test cluster: slurmd must run as root to start jobs"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SlurmCluster:
    root: Path
    node: str
    env: dict[str, str]  # what a client needs to reach this cluster (SLURM_CONF)
    daemons: list[subprocess.Popen] = field(default_factory=list)

    def run(self, *cmd: str, check: bool = True) -> str:
        """A Slurm client command against this cluster; its stdout."""
        out = subprocess.run(
            [_which(cmd[0]) or cmd[0], *cmd[1:]],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=30,
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {out.stderr.strip()}")
        return out.stdout

    def active_jobs(self) -> list[str]:
        return self.run("squeue", "--noheader", "--format=%i").split()

    def cancel_all(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Cancel every job and wait (bounded) until none is left, processes included."""
        jobs = self.active_jobs()
        if jobs:
            self.run("scancel", *jobs, check=False)
        deadline = time.monotonic() + timeout
        while self.active_jobs() and time.monotonic() < deadline:
            time.sleep(0.2)

    def log(self) -> str:
        """The daemons' logs, for a failure message."""
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted((self.root / "log").glob("*"))
        )


def _config(root: Path, node: str) -> str:
    cpus = os.cpu_count() or 1
    return f"""\
ClusterName=kdtuitest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={root}/jobcomp.log
MpiDefault=none
ReturnToService=2
KillWait=5
MinJobAge=300
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def _wait(what: str, ok, cluster: SlurmCluster, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if ok():
                return
        time.sleep(0.2)
    raise RuntimeError(f"Slurm test cluster: {what} within {timeout:.0f} s\n{cluster.log()}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S / 2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def slurm_cluster() -> Iterator[SlurmCluster]:
    """Start the cluster, yield it, then cancel all its jobs and stop its daemons."""
    root = Path(tempfile.mkdtemp(prefix="kdtui-slurm-", dir="/tmp"))  # short: a socket path
    for sub in ("state", "spool", "log"):
        (root / sub).mkdir()
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    node = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(_config(root, node))
    cluster = SlurmCluster(root, node, {"SLURM_CONF": str(conf)})
    logs = root / "log"

    def daemon(name: str, *args: str) -> None:
        with open(logs / f"{name}.out", "wb") as out:
            cluster.daemons.append(
                subprocess.Popen(
                    [_which(name) or name, *args],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **cluster.env},
                    start_new_session=True,
                )
            )

    try:
        daemon(
            "munged", "--foreground", "--force", f"--key-file={key}",
            f"--socket={root}/munge.socket", f"--pid-file={root}/munged.pid",
            f"--seed-file={root}/munged.seed", f"--log-file={logs}/munged.log",
        )  # fmt: skip
        _wait("munged did not start", (root / "munge.socket").exists, cluster)
        daemon("slurmctld", "-D", "-i", "-f", str(conf))
        daemon("slurmd", "-D", "-f", str(conf), "-N", node)
        _wait(
            "the node did not come up idle",
            lambda: cluster.run("sinfo", "--noheader", "--format=%T").strip() == "idle",
            cluster,
        )
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            cluster.cancel_all()
        for proc in reversed(cluster.daemons):
            _stop(proc)
        shutil.rmtree(root, ignore_errors=True)
