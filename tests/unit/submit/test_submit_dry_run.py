"""``submit --dry-run``: every check of a real submit, then every file it would write and every job it would
submit, printed; no run directory, no file, no sbatch. The real submit writes exactly the plan the dry run printed."""

from __future__ import annotations

import itertools
import json
import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from orchestrator.submit.backends import local, local_executor, slurm, slurm_executor
from orchestrator.cli import main

ROOT = Path(__file__).resolve().parents[3]
ABLATION = ROOT / "sweeps" / "proxy-ablation.yaml"
HEADER = re.compile(r"^===== (.+) =====$", re.M)
SECRET = "sekrit-value-4242"


@pytest.fixture
def no_submission(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, forbid_submission: Callable[..., None]) -> None:
    """Fail the test if anything would be submitted or a run directory created; a secret in the environment."""
    forbid_submission("a dry run submitted or created something")
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    monkeypatch.chdir(tmp_path)


def max_array_size(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    """What ``scontrol show config`` says (None: scontrol is missing)."""
    def show_config() -> dict[str, str]:
        if value is None:
            raise slurm.SlurmError("scontrol not found: is the Slurm client installed and on PATH?")
        return {"MaxArraySize": value}
    monkeypatch.setattr(slurm, "show_config", show_config)


def dry_run(cli: CliRunner, tmp_path: Path, *args: str) -> Result:
    result = cli.invoke(main, ["submit", *args, "--set", f"profile.output_root={tmp_path}/runs", "--dry-run"])
    assert not (tmp_path / "runs").exists(), "a dry run created the output root"
    return result


def sections(stdout: str) -> tuple[dict[str, str], list[str]]:
    """The printed files by path (in order), and the lines after the last one (the jobs)."""
    parts = HEADER.split(stdout)
    files = {path: body[1:-1] for path, body in zip(parts[1::2], parts[2::2])}   # "\n" after header and after text
    _record, end = json.JSONDecoder().raw_decode(files["record.json"])
    trailer = [line for line in files["record.json"][end:].strip().splitlines()
               if not line.startswith("    each rank runs: ")]       # checked by test_single_run
    files["record.json"] = files["record.json"][:end] + "\n"
    return files, trailer


def command(job_json: str) -> list[str]:
    return json.loads(job_json)["command"]  # type: ignore[no-any-return]


def test_single_run(cli: CliRunner, tmp_path: Path, no_submission: None) -> None:
    out = dry_run(cli, tmp_path, "--profile", "h100-eos", "--set", "profile.account=acct")
    assert out.exit_code == 0, out.output
    run_dir = f"{tmp_path}/runs/deepseek-v3-DRYRUN"
    first = out.stdout.splitlines()[0]
    assert first.startswith("dry run: nothing written or submitted") and run_dir in first and "JOBID_<n>" in first
    files, jobs = sections(out.stdout)
    assert list(files) == ["job.json", "sbatch.sh", "record.json"]
    script = files["sbatch.sh"]
    assert "#SBATCH --account=acct" in script and "#SBATCH --nodes=128" in script
    assert f"#SBATCH --output={run_dir}/logs/%x_%j.log" in script and "--dependency" not in script
    assert f"{run_dir}/job.json" in script
    cmd = command(files["job.json"])
    assert cmd[cmd.index("--save") + 1] == f"{run_dir}/checkpoints"
    record = json.loads(files["record.json"])
    assert (record["run_id"], record["kind"], record["files"]) == ("deepseek-v3-DRYRUN", "single", ["job.json", "sbatch.sh"])
    assert record["jobs"][0]["job_id"] == "JOBID_1" and record["command"] == cmd
    assert jobs[0] == "would submit JOBID_1: sbatch sbatch.sh  [run; 1024 ranks]"
    assert f"would submit JOBID_1: sbatch sbatch.sh  [run; 1024 ranks]\n    each rank runs: python3 -u -m " \
           f"orchestrator.node {run_dir}/job.json\n" in out.stdout
    assert "warning: megatron-core 0.19.2 (profile): --cross-entropy-fusion-impl te is refused" in out.stderr
    assert SECRET not in out.output and "WANDB_API_KEY is passed through" in script


def test_segments_chain_on_the_previous_job(cli: CliRunner, tmp_path: Path, no_submission: None) -> None:
    out = dry_run(cli, tmp_path, "--profile", "local-slurm", "--segments", "2")
    assert out.exit_code == 0, out.output
    files, jobs = sections(out.stdout)
    assert list(files) == ["job.json", "sbatch-segment1.sh", "sbatch-segment2.sh", "record.json"]
    assert "--dependency" not in files["sbatch-segment1.sh"]
    assert "#SBATCH --dependency=afterok:JOBID_1\n" in files["sbatch-segment2.sh"]
    record = json.loads(files["record.json"])
    assert [(j["role"], j["dependency"]) for j in record["jobs"]] == [("segment 1/2", None),
                                                                      ("segment 2/2", "afterok:JOBID_1")]
    assert jobs[:2] == ["would submit JOBID_1: sbatch sbatch-segment1.sh  [segment 1/2; 4 ranks]",
                        "would submit JOBID_2: sbatch sbatch-segment2.sh  [segment 2/2; 4 ranks; "
                        "--dependency=afterok:JOBID_1]"]


def test_slurm_sweep_is_one_array_with_a_job_json_per_variant(cli: CliRunner, tmp_path: Path, no_submission: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    max_array_size(monkeypatch, "1001")
    out = dry_run(cli, tmp_path, "--profile", "local-slurm", "--sweep", str(ABLATION))
    assert out.exit_code == 0, out.output
    files, jobs = sections(out.stdout)
    run_dir = f"{tmp_path}/runs/proxy-ablation-DRYRUN"
    tasks = [f"tasks/0_{i}" for i in range(6)]
    assert list(files) == [*(f"{t}/job.json" for t in tasks), "sbatch-array0.sh",
                           *(f"{t}/record.json" for t in tasks), "record.json"]
    script = files["sbatch-array0.sh"]
    assert "#SBATCH --array=0-5%4\n" in script and f"#SBATCH --output={run_dir}/tasks/0_%a/logs/%x_%A_%a.log" in script
    assert f"{run_dir}/tasks/0_%a/job.json" in script
    flags = {t: command(files[f"{t}/job.json"]) for t in tasks}
    assert "--fp8-recipe" not in flags["tasks/0_0"] and "--fp8-recipe" in flags["tasks/0_3"]     # bf16 / fp8
    assert "--recompute-granularity" in flags["tasks/0_2"] and "--recompute-granularity" not in flags["tasks/0_3"]
    assert "--overlap-moe-expert-parallel-comm" in flags["tasks/0_4"]
    assert "--moe-router-force-load-balancing" in flags["tasks/0_5"] and \
        "--moe-router-force-load-balancing" not in flags["tasks/0_4"]
    assert flags["tasks/0_1"][flags["tasks/0_1"].index("--save") + 1] == f"{run_dir}/tasks/0_1/checkpoints"
    task = json.loads(files["tasks/0_3/record.json"])
    assert (task["variant"], task["job_id"], task["index"]) == ("fp8", "JOBID_1_3", 3)
    record = json.loads(files["record.json"])
    assert record["kind"] == "array" and record["jobs"][0]["array"] == "0-5%4" and len(record["tasks"]) == 6
    assert jobs == ["MaxArraySize 1001 (from scontrol show config): 1 array job(s)",
                    "would submit JOBID_1: sbatch sbatch-array0.sh  [array 0-5: bf16-alltoall, fusions, "
                    "fp8-recompute, fp8, fp8-a2a-overlap, fp8-a2a-overlap-forcebal; 4 ranks each; --array=0-5%4]",
                    jobs[-1]]
    assert SECRET not in out.output


def write_sweep(tmp_path: Path) -> Path:
    sweep = tmp_path / "iters.yaml"
    sweep.write_text("name: iters\nrecipe: dsv3-proxy-3l\nmax_parallel: 2\nvariants:\n"
                     "  - {name: two, set: [training.train_iters=2]}\n  - {name: three, set: [training.train_iters=3]}\n"
                     "  - {name: four, set: [training.train_iters=4]}\n")
    return sweep


@pytest.mark.parametrize("scontrol,source", [("2", "from scontrol show config"),
                                             (None, "Slurm's default, assumed")])
def test_arrays_above_max_array_size_are_chunks_after_each_other(cli: CliRunner, tmp_path: Path, no_submission: None,
                                                                 monkeypatch: pytest.MonkeyPatch, scontrol: str | None,
                                                                 source: str) -> None:
    max_array_size(monkeypatch, scontrol)
    out = dry_run(cli, tmp_path, "--profile", "local-slurm", "--sweep", str(write_sweep(tmp_path)))
    assert out.exit_code == 0, out.output
    files, jobs = sections(out.stdout)
    if scontrol is None:            # Slurm's default 1001: one array
        assert "#SBATCH --array=0-2%2\n" in files["sbatch-array0.sh"] and "sbatch-array1.sh" not in files
        assert jobs[0] == ("MaxArraySize 1001 (Slurm's default, assumed: scontrol show config gave none: scontrol "
                           "not found: is the Slurm client installed and on PATH?): 1 array job(s)")
        return
    assert "#SBATCH --array=0-1%2\n" in files["sbatch-array0.sh"] and "--dependency" not in files["sbatch-array0.sh"]
    assert "#SBATCH --array=0-0%2\n" in files["sbatch-array1.sh"]
    assert "#SBATCH --dependency=afterany:JOBID_1\n" in files["sbatch-array1.sh"]
    iters = [command(files[f"tasks/{t}/job.json"]) for t in ("0_0", "0_1", "1_0")]
    assert [c[c.index("--train-iters") + 1] for c in iters] == ["2", "3", "4"]
    assert jobs[:3] == [f"MaxArraySize 2 ({source}): 2 array job(s)",
                        "would submit JOBID_1: sbatch sbatch-array0.sh  [array 0-1: two, three; 4 ranks each; "
                        "--array=0-1%2]",
                        "would submit JOBID_2: sbatch sbatch-array1.sh  [array 2-2: four; 4 ranks each; "
                        "--array=0-0%2; --dependency=afterany:JOBID_1]"]


def test_local_sweep_runs_each_variant_one_after_another(cli: CliRunner, tmp_path: Path, no_submission: None) -> None:
    out = dry_run(cli, tmp_path, "--profile", "local", "--sweep", str(write_sweep(tmp_path)))
    assert out.exit_code == 0, out.output
    files, jobs = sections(out.stdout)
    run_dir = f"{tmp_path}/runs/iters-DRYRUN"
    for index, iters in enumerate(("2", "3", "4")):
        launcher = files[f"tasks/0_{index}/launch_local.sh"]
        assert f"{run_dir}/tasks/0_{index}/job.json" in launcher and "WORLD_SIZE=2" in launcher
        cmd = command(files[f"tasks/0_{index}/job.json"])
        assert cmd[cmd.index("--train-iters") + 1] == iters
    assert not any(name.endswith("sbatch.sh") or name.startswith("sbatch") for name in files)
    record = json.loads(files["record.json"])
    assert record["backend"] == "local" and record["jobs"][0]["array"] == "0-2%1" and record["files"] == []
    assert jobs[0] == ("would submit JOBID_1: local job (submitit) running tasks/0_*/launch_local.sh  "
                       "[array 0-2 (one at a time): two, three, four; 2 ranks each on this machine]")


def test_problems_stop_it_as_they_stop_a_real_submit(cli: CliRunner, tmp_path: Path, no_submission: None) -> None:
    bad = dry_run(cli, tmp_path, "--profile", "local-slurm", "--set", "parallel.pp=eight")
    assert bad.exit_code == 2 and bad.stdout == ""
    assert bad.stderr.strip() == ("error: recipe.parallel.pp: expected an integer, got 'eight' "
                                  "(fix: write a whole number, e.g. 8)")
    zero = dry_run(cli, tmp_path, "--profile", "local-slurm", "--set", "profile.gpus_per_node=0")
    assert zero.exit_code == 2 and zero.stdout == ""
    assert zero.stderr.strip() == "error: profile.gpus_per_node: 0 is out of range (fix: use a value from 1 to 64)"
    blocked = dry_run(cli, tmp_path, "--profile", "local-slurm", "--set", "parallel.tp=3")
    assert blocked.exit_code == 2 and blocked.stdout == ""
    assert blocked.stderr.splitlines()[-1].endswith("problem(s) to fix: nothing was rendered or submitted")
    assert blocked.stderr.startswith("error: parallel.tp/cp/pp: TP×CP×PP = 3×1×1 = 3 does not divide")
    secret = dry_run(cli, tmp_path, "--profile", "local-slurm", "--set", f'env.HF_TOKEN="{SECRET}"')
    assert secret.exit_code == 2 and secret.stdout == "" and "looks like a secret" in secret.stderr
    local = dry_run(cli, tmp_path, "--profile", "local", "--segments", "2")
    assert local.exit_code == 2 and local.stdout == "" and "chained segments need a Slurm profile" in local.stderr


def submit_with_stub_ids(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """sbatch answered by a stub: ids 7001, 7002, ... in submission order; the scripts it was given."""
    ids = itertools.count(7001)
    scripts: list[str] = []

    def submit_script(self: slurm_executor.TemplateSlurmExecutor) -> Any:
        scripts.append(self._script)
        return types.SimpleNamespace(job_id=str(next(ids)))
    monkeypatch.setattr(slurm_executor.TemplateSlurmExecutor, "submit_script", submit_script)
    return scripts


@pytest.mark.parametrize("args", [["--segments", "3", "--segment-dependency", "afterany"], ["--sweep", "SWEEP"]])
def test_a_real_submit_writes_what_the_dry_run_printed(cli: CliRunner, tmp_path: Path, args: list[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    max_array_size(monkeypatch, "2")
    args = [str(write_sweep(tmp_path)) if a == "SWEEP" else a for a in args]
    base = ["submit", "--profile", "local-slurm", "--set", f"profile.output_root={tmp_path}/runs", *args]
    dry = cli.invoke(main, [*base, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    printed, _jobs = sections(dry.stdout)
    scripts = submit_with_stub_ids(monkeypatch)
    real = cli.invoke(main, base)
    assert real.exit_code == 0, real.output
    [run_dir] = list((tmp_path / "runs").iterdir())
    dry_dir = str(json.loads(printed["record.json"])["run_id"])
    every = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())
    written = [p for p in every if not p.startswith("provenance/")]
    assert written == sorted(printed)
    for path in set(every) - set(written):   # the checkout's uncommitted diff: said by the dry run, not planned
        assert path in dry.stdout.splitlines()[-1] and (run_dir / path).read_text().startswith("diff --git")
    for path, text in printed.items():
        expected = re.sub(r"JOBID_(\d)", lambda m: str(7000 + int(m[1])), text.replace(dry_dir, run_dir.name))
        actual = (run_dir / path).read_text()
        if path.endswith("record.json"):             # the same record, but for the time it was written
            expected, actual = (re.sub(r'"created": "[^"]*"', '"created": ""', t) for t in (expected, actual))
        assert actual == expected, path
    assert scripts == [(run_dir / p).read_text() for p in sorted(printed) if p.startswith("sbatch")]


def test_from_a_run_directory(cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    submit_with_stub_ids(monkeypatch)
    base = ["submit", "--profile", "local-slurm", "--segments", "2", "--set", f"profile.output_root={tmp_path}/runs"]
    assert cli.invoke(main, base).exit_code == 0
    [original] = list((tmp_path / "runs").iterdir())
    out = cli.invoke(main, ["submit", "--from", str(original), "--dry-run"])
    assert out.exit_code == 0, out.output
    files, jobs = sections(out.stdout)
    assert "#SBATCH --dependency=afterok:JOBID_1\n" in files["sbatch-segment2.sh"]
    assert json.loads(files["record.json"])["submitted_from"] == str(original)
    assert list((tmp_path / "runs").iterdir()) == [original]
    assert cli.invoke(main, ["submit", "--from", str(original), "--dry-run", "--follow"]).exit_code == 2


def test_a_local_sweep_gets_the_gpus_and_time_its_sweep_sets(cli: CliRunner, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep's own `set` (here 4 GPUs, EP=4, 8 minutes a variant) decides the local controller's allocation,
    not the profile it started from (2 GPUs, 1 hour): with 2 GPUs the 4 ranks of each variant would share them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    seen: dict[str, object] = {}

    def submit_tasks(self: local_executor.ScriptLocalExecutor, tasks: list[tuple[str, str, str]],
                     run_dir: Path) -> object:
        seen.update(self.parameters, tasks=len(tasks))
        return type("Job", (), {"job_id": "4242"})()
    monkeypatch.setattr(local_executor.ScriptLocalExecutor, "submit_tasks", submit_tasks)
    sweep = tmp_path / "ep4.yaml"
    sweep.write_text("name: ep4\nrecipe: dsv3-proxy-3l\nset: [profile.gpus_per_node=4, parallel.ep=4, "
                     "'profile.time_limit=\"00:08:00\"']\nvariants:\n  - {name: a}\n  - {name: b}\n")
    out = cli.invoke(main, ["submit", "--profile", "local", "--sweep", str(sweep),
                            "--set", f"profile.output_root={tmp_path}/runs"])
    assert out.exit_code == 0, out.output
    assert (seen["gpus_per_node"], seen["timeout_min"], seen["tasks"]) == (4, 16, 2)


def test_sweep_variants_sharing_a_checkpoint_dir_are_refused(cli: CliRunner, tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path)
    shared = dry_run(cli, tmp_path, "--profile", "local-slurm", "--sweep", str(sweep),
                     "--set", f"training.checkpoint_dir={tmp_path}/ckpt")
    assert shared.exit_code == 2 and shared.stdout == ""
    assert shared.stderr == f"error: sweep.variants.three.training.checkpoint_dir: {tmp_path}/ckpt is also variant " \
        "two's: array tasks run at once and would overwrite each other's checkpoints (fix: give each variant its own " \
        "training.checkpoint_dir, or leave it empty (each task then saves in its own directory))\n"
    own = dry_run(cli, tmp_path, "--profile", "local-slurm", "--sweep", str(sweep), "--set", "training.save_interval=5")
    assert own.exit_code == 0, own.output
    saves = re.findall(r'"--save", "([^"]+)"', own.stdout)
    assert len(set(saves)) == 3 and all("/tasks/" in s for s in saves)


@pytest.mark.parametrize("profile,variant_set,named", [
    ("local-slurm", "profile.qos=high", "changes profile.qos, which the job array's one sbatch script holds"),
    ("local-slurm", "profile.nodes=1", "changes profile.nodes, which"),
    ("local-slurm", 'profile.time_limit="00:09:00"', "changes profile.time_limit, which"),
    ("local", "profile.gpus_per_node=4", "changes gpus_per_node of the local sweep's one controller"),
])
def test_a_variant_changing_what_the_array_holds_is_refused(cli: CliRunner, tmp_path: Path, no_submission: None,
                                                            profile: str, variant_set: str, named: str) -> None:
    """The array's script (or the local sweep's controller) is one for every task: a variant that changes what it
    holds would silently run with the first variant's value."""
    sweep = tmp_path / "qos.yaml"
    sweep.write_text(f"name: qos\nrecipe: dsv3-proxy-3l\nvariants:\n  - {{name: a}}\n"
                     f"  - {{name: b, set: ['{variant_set}']}}\n")
    out = dry_run(cli, tmp_path, "--profile", profile, "--sweep", str(sweep))
    assert out.exit_code == 2 and out.stdout == ""
    assert out.stderr.startswith("error: sweep.variants.b: ") and named in out.stderr, out.stderr
    assert "(fix: move the variant to a sweep of its own" in out.stderr and len(out.stderr.splitlines()) == 1


def test_what_each_task_gets_from_its_job_json_may_vary(cli: CliRunner, tmp_path: Path, no_submission: None) -> None:
    """Environment and Megatron arguments are per task (the node entry applies each task's job.json), so variants
    may set them: the shipped proxy-repeat varies CUDA_DEVICE_MAX_CONNECTIONS."""
    sweep = tmp_path / "env.yaml"
    sweep.write_text("name: env\nrecipe: dsv3-proxy-3l\nvariants:\n  - {name: a}\n"
                     "  - {name: b, set: [env.CUDA_DEVICE_MAX_CONNECTIONS=1, training.train_iters=3]}\n")
    out = dry_run(cli, tmp_path, "--profile", "local-slurm", "--sweep", str(sweep))
    assert out.exit_code == 0, out.output
    files, _ = sections(out.stdout)
    task_b = json.loads(next(text for path, text in files.items() if path.startswith("tasks/0_1/")
                             and path.endswith("job.json")))
    assert task_b["env"]["CUDA_DEVICE_MAX_CONNECTIONS"] == "1"


def test_a_variant_whose_ep_moves_the_gb200_segment_is_refused(slurm_with_segment: None) -> None:
    """``--segment`` follows EP × TP on gb200-nvl72 (auto): a variant with another EP would need another script."""
    from orchestrator.spec.config import load_experiment
    from orchestrator.spec.schema import ConfigError
    from orchestrator.spec.sweep import load_sweep
    from orchestrator.submit import plan_records
    from orchestrator.submit.plan import Request

    path = ROOT / "tests" / "ep.yaml"
    exp = load_experiment("gb200-nvl72", None, ["profile.account=a", "profile.container.image=/i.sqsh"])
    try:
        path.write_text("name: ep\nvariants:\n  - {name: ep64}\n  - {name: ep32, set: [parallel.ep=32]}\n")
        sweep = load_sweep(path)
    finally:
        path.unlink()
    with pytest.raises(ConfigError) as err:
        plan_records.dry_run(Request(exp, sweep=sweep, megatron_check=False))
    assert err.value.setting == "sweep.variants.ep32" and "changes parallel.ep, which" in str(err.value)


@pytest.mark.parametrize("section,key,value,named", [
    ("profile", "setup", ["touch /tmp/orchestrator-pwned"], "profile.setup"),
    ("profile", "python", "/tmp/evil.sh", "profile.python"),
    ("profile", "bindpcie_path", "/tmp/evil.sh", "profile.bindpcie_path"),
    ("recipe", "training", {"extra_args": ["--save", "/elsewhere"]}, "recipe.training.extra_args"),
])
def test_an_edited_record_is_data_not_code(cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           section: str, key: str, value: Any, named: str) -> None:
    """A record's resolved values never reach a rendered file: --from derives the run from the recorded names and
    overrides, and refuses a record whose values differ from that derivation, naming the first difference."""
    monkeypatch.chdir(tmp_path)
    submit_with_stub_ids(monkeypatch)
    assert cli.invoke(main, ["submit", "--profile", "local-slurm", "--set", f"profile.output_root={tmp_path}/runs"]
                      ).exit_code == 0
    [original] = list((tmp_path / "runs").iterdir())
    record_path = original / "record.json"
    data = json.loads(record_path.read_text())
    resolved = data[section]["resolved"]
    resolved[key] = {**resolved[key], **value} if isinstance(value, dict) else value
    record_path.chmod(0o644)
    record_path.write_text(json.dumps(data))
    out = cli.invoke(main, ["submit", "--from", str(original), "--dry-run"])
    assert out.exit_code == 2 and out.stdout == "", out.output
    assert out.stderr.startswith(f"error: --from: {record_path}: {named}: the record says "), out.stderr
    assert "(fix: submit it anew with --profile/--recipe/--set" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "/tmp/evil.sh -u" not in out.stderr
    assert list((tmp_path / "runs").iterdir()) == [original]


@pytest.mark.parametrize("flag,outcome", [([], "accepted"), (["--no-megatron"], "skipped (--no-megatron)")])
def test_the_record_says_what_became_of_megatrons_check(cli: CliRunner, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch, flag: list[str],
                                                        outcome: str) -> None:
    monkeypatch.chdir(tmp_path)
    submit_with_stub_ids(monkeypatch)
    out = cli.invoke(main, ["submit", "--profile", "local-slurm", *flag, "--set", f"profile.output_root={tmp_path}/runs"])
    assert out.exit_code == 0, out.output
    [run_dir] = list((tmp_path / "runs").iterdir())
    assert json.loads((run_dir / "record.json").read_text())["megatron_check"] == outcome
