"""End-to-end fixtures: a real Slurm cluster on this machine (scripts/slurm/start-slurm.sh).

``slurm_cluster`` (session) reuses a running cluster when its env file exists and ``scontrol ping`` answers,
otherwise starts one and stops it at the end of the session. ``SLURM_CONF`` is exported for the whole session, so
every ``sbatch``/``sacct`` the tests or the toolkit run talks to it. ``extra_cluster`` starts a second, separate
cluster (own state dir and ports) with other settings, e.g. accounting off or a small MaxArraySize.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts" / "slurm"
DEFAULT_STATE = Path(os.environ.get("ORCH_SLURM_STATE", "/tmp/orchestrator-slurm"))


@dataclass(frozen=True)
class Cluster:
    state: Path
    slurm_conf: Path
    started_here: bool

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a client command against this cluster (repo importable on the nodes)."""
        env = dict(os.environ)
        path = env.get("PYTHONPATH")
        env.update(SLURM_CONF=str(self.slurm_conf), PYTHONPATH=f"{ROOT}{os.pathsep}{path}" if path else str(ROOT))
        env["PATH"] = env.get("PATH", "") + ":/usr/sbin"
        env.update(extra)
        return env

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), env=self.env(), capture_output=True, text=True, check=check, timeout=60)


def _responds(state: Path) -> bool:
    conf = state / "etc" / "slurm.conf"
    if not (state / "env.sh").is_file() or not conf.is_file():
        return False
    env = {**os.environ, "SLURM_CONF": str(conf)}
    try:
        proc = subprocess.run(["scontrol", "ping"], env=env, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and "UP" in proc.stdout


def start_cluster(state: Path, **settings: str) -> Cluster:
    """Run start-slurm.sh with ORCH_SLURM_<NAME>=value settings; fails the test with its log on error."""
    env = {**os.environ, "ORCH_SLURM_STATE": str(state)}
    env.update({f"ORCH_SLURM_{k.upper()}": str(v) for k, v in settings.items()})
    proc = subprocess.run([str(SCRIPTS / "start-slurm.sh")], env=env, capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        pytest.fail(f"start-slurm.sh failed:\n{proc.stdout}\n{proc.stderr}")
    return Cluster(state=state, slurm_conf=state / "etc" / "slurm.conf", started_here=True)


def stop_cluster(cluster: Cluster) -> None:
    subprocess.run([str(SCRIPTS / "stop-slurm.sh"), str(cluster.state)], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Cluster]:
    if shutil.which("slurmctld") is None and not Path("/usr/sbin/slurmctld").exists():
        pytest.skip("Slurm is not installed: run scripts/slurm/install-deps.sh (as root)")
    if _responds(DEFAULT_STATE):
        cluster = Cluster(DEFAULT_STATE, DEFAULT_STATE / "etc" / "slurm.conf", started_here=False)
    else:
        cluster = start_cluster(DEFAULT_STATE)
    saved = {k: os.environ.get(k) for k in ("SLURM_CONF", "PATH")}
    os.environ["SLURM_CONF"] = str(cluster.slurm_conf)
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin"
    try:
        yield cluster
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if cluster.started_here:
            stop_cluster(cluster)


@pytest.fixture
def extra_cluster(slurm_cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Cluster]]:
    """Factory: start a second cluster with other settings; SLURM_CONF points to it until the test ends."""
    started: list[Cluster] = []

    def start(**settings: str) -> Cluster:
        ports = {"ctld_port": "6837", "dbd_port": "6839", "slurmd_port": "17031"}
        cluster = start_cluster(Path(f"{slurm_cluster.state}-extra"), **{**ports, **settings})
        started.append(cluster)
        monkeypatch.setenv("SLURM_CONF", str(cluster.slurm_conf))
        return cluster

    yield start
    for cluster in started:
        stop_cluster(cluster)


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.5) -> object:
    """Poll until predicate() is truthy; fail the test with ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------------------------------------------- the CLI
def _cli_argv() -> list[str]:
    """The user's command: ``python -m orchestrator``."""
    import sys

    return [sys.executable, "-m", "orchestrator"]


@dataclass
class Workspace:
    """A directory the user works in (runs land in ./runs) and the cluster the CLI talks to."""

    cwd: Path
    cluster: Cluster

    @property
    def runs(self) -> Path:
        return self.cwd / "runs"

    def cli(self, *args: str, timeout: float = 240, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*_cli_argv(), *args], cwd=self.cwd, env=self.cluster.env(**env), capture_output=True,
                              text=True, timeout=timeout)

    def run_dirs(self) -> list[Path]:
        return sorted(p for p in self.runs.iterdir() if (p / "record.json").exists()) if self.runs.is_dir() else []


@pytest.fixture
def workspace(slurm_cluster: Cluster, tmp_path: Path) -> Workspace:
    return Workspace(tmp_path, slurm_cluster)


# ------------------------------------------------------------------------------------------------- reruns
E2E_RERUNS = 1
"""Each end-to-end test may run once more after a failure: they drive a real slurmctld, slurmdbd and two slurmd on
a 2-core machine, where accounting lag and CPU starvation have failed tests that pass alone (seen: a preflight rank
report, a local cancel, a requeue). pytest prints every rerun ("R" and "N rerun" in the summary), so a flaky test
stays visible; a test that fails twice fails the suite. Unit tests are never rerun."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.flaky(reruns=E2E_RERUNS))
