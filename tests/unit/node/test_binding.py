"""Built-in CPU/memory binding against a fake /proc and /sys tree; bindpcie prefixing."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from orchestrator.node import binding

SMI_OUT = "00000000:1B:00.0\n00000000:43:00.0\n00000000:52:00.0\n00000000:61:00.0\n"


def fake_sys(root: Path, devices: dict[str, tuple[str, str]]) -> Path:
    """devices: bdf -> (numa_node, local_cpulist)."""
    for bdf, (numa, cpus) in devices.items():
        d = root / "bus" / "pci" / "devices" / bdf
        d.mkdir(parents=True)
        (d / "numa_node").write_text(numa + "\n")
        (d / "local_cpulist").write_text(cpus + "\n")
    return root


def smi(output: str | None):  # type: ignore[no-untyped-def]
    calls: list[list[str]] = []

    def run(argv: Sequence[str]) -> str | None:
        calls.append(list(argv))
        return output
    run.calls = calls  # type: ignore[attr-defined]
    return run


@pytest.fixture
def sys_root(tmp_path: Path) -> Path:
    return fake_sys(tmp_path / "sys", {
        "0000:1b:00.0": ("0", "0-15,64-79"), "0000:43:00.0": ("0", "0-15,64-79"),
        "0000:52:00.0": ("1", "16-31,80-95"), "0000:61:00.0": ("1", "16-31,80-95"),
    })


def test_cpulists_round_trip() -> None:
    assert binding.parse_cpulist("0-3,8,10-11") == (0, 1, 2, 3, 8, 10, 11)
    assert binding.format_cpulist((11, 0, 1, 2, 3, 8, 10)) == "0-3,8,10-11"
    assert binding.parse_cpulist("") == ()


def test_bus_ids_are_normalised_to_sysfs_form() -> None:
    assert binding.normalize_bus_id("00000000:1B:00.0") == "0000:1b:00.0"
    assert binding.normalize_bus_id("0000:1b:00.0") == "0000:1b:00.0"


def test_gpu_of_a_local_rank_follows_cuda_visible_devices() -> None:
    assert binding.gpu_for_local_rank(1, None) == 1
    assert binding.gpu_for_local_rank(1, "2,3") == 3
    assert binding.gpu_for_local_rank(0, "GPU-8f3a,GPU-77aa") == 0   # UUIDs: fall back to the local rank


def test_builtin_binds_to_the_gpus_numa_node(tmp_path: Path, sys_root: Path) -> None:
    b = binding.plan_builtin(2, {}, allowed_cpus=range(0, 128), run=smi(SMI_OUT), proc_root=tmp_path / "proc",
                             sys_root=sys_root, numactl="/usr/bin/numactl")
    assert (b.gpu_index, b.bus_id, b.numa_node, b.method) == (2, "0000:52:00.0", 1, "builtin")
    assert binding.format_cpulist(b.cpus) == "16-31,80-95"
    assert b.prefix == ("/usr/bin/numactl", "--membind=1")
    assert b.line(6, "n2") == ("[orchestrator.bind] rank 6 host n2 local_rank 2: GPU 2 0000:52:00.0, NUMA node 1, "
                               "cpus 16-31,80-95, memory --membind=1")


def test_builtin_keeps_only_cpus_the_task_may_use_and_works_without_numactl(tmp_path: Path, sys_root: Path) -> None:
    b = binding.plan_builtin(0, {"CUDA_VISIBLE_DEVICES": "1"}, allowed_cpus=[2, 3, 70, 100], run=smi(SMI_OUT),
                             proc_root=tmp_path / "proc", sys_root=sys_root, numactl=None)
    assert b.gpu_index == 1 and b.cpus == (2, 3, 70) and b.prefix == ()
    assert "numactl not found" in b.summary() and "memory unbound" in b.summary()


def test_builtin_reads_proc_driver_when_nvidia_smi_is_missing(tmp_path: Path, sys_root: Path) -> None:
    gpus = tmp_path / "proc" / "driver" / "nvidia" / "gpus"
    for bdf in ("0000:61:00.0", "0000:1b:00.0"):
        (gpus / bdf).mkdir(parents=True)
    b = binding.plan_builtin(1, {}, allowed_cpus=range(128), run=smi(None), proc_root=tmp_path / "proc",
                             sys_root=sys_root, numactl=None)
    assert (b.gpu_index, b.bus_id, b.numa_node) == (1, "0000:61:00.0", 1)


def test_no_gpus_means_unbound_and_says_so(tmp_path: Path) -> None:
    b = binding.plan_builtin(0, {"CUDA_VISIBLE_DEVICES": "0,1"}, allowed_cpus=range(4), run=smi(None),
                             proc_root=tmp_path / "proc", sys_root=tmp_path / "sys", numactl="/usr/bin/numactl")
    assert b.method == "none" and b.prefix == () and b.cpus == ()
    assert b.line(0, "n1").startswith("[orchestrator.bind] rank 0 host n1 local_rank 0: no GPUs on this node")
    assert b.line(0, "n1").endswith("running unbound")
    assert binding.apply(b) is b


def test_more_ranks_than_gpus_is_reported_not_guessed(tmp_path: Path, sys_root: Path) -> None:
    b = binding.plan_builtin(5, {}, allowed_cpus=range(128), run=smi(SMI_OUT), proc_root=tmp_path / "proc",
                             sys_root=sys_root, numactl=None)
    assert b.gpu_index is None and "local rank 5 wants GPU 5, this node has 4" in b.summary()


def on_path(*found: str):  # type: ignore[no-untyped-def]
    return lambda name: name if name in found else None


def test_bindpcie_prefixes_the_command() -> None:
    b = binding.plan("/opt/mlperf/bindpcie --cpu=exclusive", 3, {}, which=on_path("/opt/mlperf/bindpcie", "numactl"))
    assert b.prefix == ("/opt/mlperf/bindpcie", "--cpu=exclusive", "--") and b.method == "bindpcie"
    assert "bindpcie" in b.line(3, "n1") and "local rank 3" in b.line(3, "n1")


@pytest.mark.parametrize("found,lacking", [(("/opt/mlperf/bindpcie",), "numactl not found (bindpcie execs it"),
                                           (("numactl",), "bindpcie not found ('/opt/mlperf/bindpcie')")])
def test_bindpcie_without_what_it_needs_falls_back_and_says_why(found: tuple[str, ...], lacking: str) -> None:
    """bindpcie execs numactl: without it (or without bindpcie) the rank would exit 127, so the built-in binding
    runs and the rank's line names what is missing."""
    b = binding.plan("/opt/mlperf/bindpcie", 0, {}, which=on_path(*found))
    assert b.method != "bindpcie" and not any("bindpcie" in word for word in b.prefix)
    assert lacking in b.summary() and "built-in binding instead" in b.summary()
    assert binding.bindpcie_lacks("/opt/mlperf/bindpcie", on_path(*found)).startswith(lacking[:20])


def test_apply_sets_this_processes_affinity() -> None:
    before = os.sched_getaffinity(0)
    one = min(before)
    try:
        b = binding.apply(binding.Binding(local_rank=0, gpu_index=0, cpus=(one,), method="builtin"))
        assert os.sched_getaffinity(0) == {one} and b.cpus == (one,)
    finally:
        os.sched_setaffinity(0, before)
