"""End-to-end at scale, on a real Slurm cluster with its limits lowered (MaxArraySize 4, MaxJobCount 30): a sweep
larger than MaxArraySize is split into chained arrays whose every task status, cancel and report cover; a sweep
whose arrays would pass MaxJobCount is refused before anything is submitted. The payload exits at once
(tests/e2e/instant), except the variants told to sleep, so they can be cancelled while they run."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .conftest import Cluster, Workspace, wait_until

INSTANT = Path(__file__).resolve().parent / "instant"
BASE = ["-p", "local-slurm", "-r", "dsv3-proxy-3l", "--set", f"profile.megatron_path={INSTANT}",
        "--set", "profile.nodes=1", "--set", "training.train_iters=1"]


def sweep_file(tmp_path: Path, count: int) -> Path:
    path = tmp_path / f"scale{count}.yaml"
    path.write_text(f"name: scale{count}\nmax_parallel: 2\nvariants:\n" +
                    "".join(f"  - {{name: v{i}, set: [training.seed={i}]}}\n" for i in range(count)))
    return path


def rows(ws: Workspace, run_dir: Path) -> list[dict]:  # type: ignore[type-arg]
    proc = ws.cli("status", str(run_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def jobs_submitted(cluster: Cluster) -> int:
    match = re.search(r"Jobs submitted:\s*(\d+)", cluster.run("sdiag").stdout)
    assert match
    return int(match.group(1))


def refused_past_max_job_count(ws: Workspace, tmp_path: Path) -> None:
    """A sweep of 200 variants is 50 arrays of 4: past MaxJobCount 30, refused (dry run too), nothing submitted."""
    before = jobs_submitted(ws.cluster)
    sweep = sweep_file(tmp_path, 200)
    for extra in (["--dry-run"], []):
        proc = ws.cli("submit", *BASE, "--sweep", str(sweep), *extra)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        line = proc.stderr.splitlines()[-1]
        assert line.startswith("error: sweep: its 50 arrays (MaxArraySize 4) and the 0 job records slurmctld holds "
                               "exceed MaxJobCount=30: sbatch would refuse the later arrays (fix: submit at most "), line
    assert jobs_submitted(ws.cluster) == before and ws.run_dirs() == []


def test_sweeps_past_slurms_limits(extra_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Over MaxJobCount: refused. Over MaxArraySize: chained arrays, watched, cancelled and reported task by task."""
    cluster: Cluster = extra_cluster(accounting="0", max_array_size="4", max_job_count="30")
    ws = Workspace(tmp_path, cluster)
    refused_past_max_job_count(ws, tmp_path)
    proc = ws.cli("submit", *BASE, "--sweep", str(sweep_file(tmp_path, 10)), "--set", 'env.INSTANT_SLEEP_FROM_SEED="4"')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [run_dir] = ws.run_dirs()
    record = json.loads((run_dir / "record.json").read_text())
    assert [j["array"] for j in record["jobs"]] == ["0-3%2", "0-3%2", "0-1%2"]       # 10 tasks in 3 arrays
    ids = [t["job_id"] for t in record["tasks"]]
    assert len(set(ids)) == 10
    # the first array's 4 variants finish; the second array's sleep (RUNNING), the third waits for it (PENDING)
    wait_until(lambda: [r["state"] for r in rows(ws, run_dir)[:4]] == ["COMPLETED"] * 4, 180, "v0-v3 to complete")
    wait_until(lambda: "RUNNING" in [r["state"] for r in rows(ws, run_dir)[4:8]], 60, "v4-v7 to start")
    before = rows(ws, run_dir)
    assert [(r["part"], r["job_id"]) for r in before] == [(f"v{i}", ids[i]) for i in range(10)]
    assert [r["state"] for r in before[8:]] == ["PENDING", "PENDING"]
    assert [r["progress"] for r in before[:4]] == ["1/1"] * 4
    summary = ws.cli("status", str(run_dir))                 # 10 rows fit a screen: the full table
    table = [line for line in summary.stdout.splitlines() if not line.startswith("note: ")]   # notes: the fallback
    assert summary.returncode == 0 and len(table) == 11, summary.stdout

    cancel = ws.cli("cancel", str(run_dir))
    assert cancel.returncode == 0, cancel.stderr
    first, *rest = record["jobs"]                            # the first array has ended: nothing to cancel there
    assert cancel.stdout.splitlines() == [
        f"{first['job_id']} ({run_dir.name}) had already ended (COMPLETED): nothing to cancel",
        *[f"cancelled {j['job_id']} ({run_dir.name})" for j in rest]]
    wait_until(lambda: all(r["state"] in ("COMPLETED", "CANCELLED") for r in rows(ws, run_dir)), 60,
               "every task ended")
    after = rows(ws, run_dir)
    assert [(r["part"], r["state"]) for r in after] == \
        [(f"v{i}", "COMPLETED") for i in range(4)] + [(f"v{i}", "CANCELLED") for i in range(4, 10)]

    report = ws.cli("report", str(run_dir), "--json")
    assert report.returncode == 0, report.stderr
    found = json.loads(report.stdout)
    assert [r["name"] for r in found] == [f"v{i}" for i in range(10)]
    assert [(r["state"], r["iterations"]) for r in found[:4]] == [("completed", "1/1")] * 4
    assert all(r["state"] in ("no logs", "no iterations") for r in found[4:])
