"""The Jinja2 environment, its one quoting filter, and ``templates/*.j2`` → the files a job needs.

Every value that reaches a shell goes through ``shq`` (``shlex.quote``) or ``shjoin``; ``#SBATCH`` values go
through ``sbatch``, which refuses anything that could end the directive; environment names through ``envname``.
Templates use StrictUndefined, so a missing value is an error, never an empty string.
"""

from __future__ import annotations

import functools
import re
import shlex
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from .. import __version__
from ..spec import megatron_args, package_data, secret_names, shellsafe
from ..spec.config import Experiment
from ..node import jobspec
from ..node.entry import master_port
from . import resilience
from ..spec.schema import ConfigError

class Filtered(str):
    """Text one of the filters below produced: the only text a template may write (see ``_finalize``)."""


def shq(value: Any) -> Filtered:
    """Quote one value for POSIX sh. A value that begins with ``=`` is quoted too (``X==a`` is valid sh, but
    shellcheck reads it as a typo of ``X=a``: SC1097; NCCL_IB_HCA's ``=mlx5_0`` exact-match form is one)."""
    text = str(value)
    return Filtered(f"'{text}'" if text.startswith("=") and shlex.quote(text) == text else shlex.quote(text))


def shjoin(values: list[Any]) -> Filtered:
    """Quote and join an argv."""
    return Filtered(" ".join(shq(v) for v in values))


def sbatch_value(value: Any) -> Filtered:
    """A value for an ``#SBATCH`` line: refused when it holds spaces, quotes, newlines or shell syntax."""
    text = str(value)
    if not shellsafe.is_sbatch_safe(text):
        raise ConfigError("#SBATCH", f"{text!r} holds characters an #SBATCH line cannot carry",
                          f"use {shellsafe.SBATCH_CHARS}")
    return Filtered(text)


def envname(value: Any) -> Filtered:
    """An environment variable name, refused unless it is a valid identifier."""
    text = str(value)
    if not shellsafe.is_env_name(text):
        raise ConfigError("env", f"{text!r} is not a valid environment variable name", "use [A-Za-z_][A-Za-z0-9_]*")
    return Filtered(text)


def comment(value: Any) -> Filtered:
    """Text for a ``#`` comment: refused when a line break or control character could end the comment."""
    text = str(value)
    if shellsafe.has_control(text):
        raise ConfigError("comment", f"{text[:80]!r} holds a line break or control character", "remove it")
    return Filtered(text)


def shline(value: Any) -> Filtered:
    """One shell line written as it is (a profile's ``setup``): refused when it holds a line break."""
    text = str(value)
    if shellsafe.has_control(text):
        raise ConfigError("profile.setup", f"{text[:80]!r} holds a line break or control character",
                          "write one command per list item")
    return Filtered(text)


def envdefault(name: Any, value: Any) -> Filtered:
    """``NAME=${NAME:-'value'}``: a run.sh variable with its default, the shell's value winning."""
    key = envname(name)
    return Filtered(f"{key}=${{{key}:-{shq(value)}}}")


def _finalize(value: Any) -> Any:
    """Every ``{{ ... }}``: numbers as they are, text only from a filter -- nothing reaches a file unfiltered."""
    if isinstance(value, Filtered) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise TypeError(f"template bug: {value!r} reaches a rendered file without a filter (shq, sbatch, comment...)")


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The one Jinja2 environment every template renders in (made once: it compiles each template once, so a
    sweep of 10,000 variants renders without compiling 10,000 times)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(package_data.templates_dir())),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False,
                             finalize=_finalize)
    env.filters.update(shq=shq, shjoin=shjoin, sbatch=sbatch_value, envname=envname, comment=comment,
                       shline=shline, envdefault=envdefault)
    return env


def render_template(name: str, **context: Any) -> str:
    """Render one template with the toolkit version in its context."""
    return environment().get_template(name).render(toolkit_version=__version__, **context)


@dataclass
class Rendered:
    """Every file of one job, by name, and the Megatron arguments and job spec behind them."""

    files: dict[str, str]
    """File name (relative to the job's directory) -> text."""
    args: megatron_args.MegatronArgs
    """The Megatron arguments and their version translations."""
    spec: jobspec.JobSpec
    """What job.json holds."""

    def write(self, out_dir: Path) -> list[Path]:
        """Write the files into a new or empty directory (never over existing files), with the log directory
        their ``#SBATCH --output`` names, so the script can be submitted from there by hand."""
        if out_dir.exists() and not out_dir.is_dir():
            raise ConfigError("--out", f"{out_dir} is a file, not a directory", "choose a new directory")
        clashes = [name for name in self.files if (out_dir / name).exists()]
        if clashes:
            raise ConfigError("--out", f"{out_dir} already holds {', '.join(clashes)}", "choose a new directory")
        try:
            (out_dir / LOG_DIR).mkdir(parents=True, exist_ok=True)
            return [self._write_one(out_dir / name, text) for name, text in self.files.items()]
        except OSError as exc:
            raise ConfigError("--out", f"cannot write into {out_dir} ({exc.strerror or exc})",
                              "choose a writable new directory") from None

    @staticmethod
    def _write_one(path: Path, text: str) -> Path:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
        if path.name.endswith(".sh"):
            path.chmod(0o755)
        return path


def job_env(exp: Experiment) -> dict[str, str]:
    """Recipe environment, then the cluster's (the cluster wins), refusing secrets written as values."""
    env = {**megatron_args.overlap_env(exp.recipe.switches), **exp.recipe.env, **exp.profile.env}
    for name in env:
        envname(name)
        if secret_names.is_secret(name):
            raise ConfigError(f"env.{name}", "looks like a secret and would be written into rendered files",
                              f"remove it, export {name} in your shell and list it in profile.env_passthrough")
    return env


def job_spec(exp: Experiment, args: megatron_args.MegatronArgs) -> jobspec.JobSpec:
    """The node entry's argument file (job.json), see docs/ARCHITECTURE.md."""
    return jobspec.JobSpec(
        name=exp.recipe.name, command=tuple(megatron_args.entry_command(exp) + args.argv), env=job_env(exp),
        env_passthrough=secret_names.passthrough(exp.profile.env_passthrough), bindpcie=exp.profile.bindpcie_path or None,
        gpus_per_node=exp.profile.gpus_per_node, megatron_path=exp.profile.megatron_path or None,
        dispatcher_fallback=jobspec.DispatcherFallback())


def toolkit_mounts(toolkit_dir: str, run_dir: str) -> list[str]:
    """What every container job mounts at the same paths: the toolkit's package directory (read-only; the node
    entry imports from it) and the run directory (job.json, logs, checkpoints)."""
    return [f"{toolkit_dir}:{toolkit_dir}:ro", f"{run_dir}:{run_dir}"]


def srun_flags(exp: Experiment, run_dir: str, toolkit_dir: str) -> list[str]:
    """srun's flags: tasks, pyxis container, and no CPU binding of Slurm's own when bindpcie binds."""
    prof, cont = exp.profile, exp.profile.container
    flags = [f"--ntasks-per-node={prof.gpus_per_node}", "--kill-on-bad-exit=1"]
    if prof.bindpcie_path:
        flags.append("--cpu-bind=none")
    if cont.image:
        flags.append(f"--container-image={cont.image}")
        flags.append(f"--container-mounts={','.join([*cont.mounts, *toolkit_mounts(toolkit_dir, run_dir)])}")
        if cont.workdir:
            flags.append(f"--container-workdir={cont.workdir}")
        if not cont.mount_home:
            flags.append("--no-container-mount-home")
        if cont.writable:
            flags.append("--container-writable")
    return flags


def node_command(exp: Experiment, run_dir: str, preflight: bool = False) -> list[str]:
    """What srun (or the local launcher) runs per rank: the node entry on this run's job.json (``--preflight``:
    the preflight payload instead of the command)."""
    return [exp.profile.python, "-u", "-m", "orchestrator.node", *(["--preflight"] if preflight else []),
            f"{run_dir}/job.json"]


LOG_DIR = "logs"
"""The directory of a job's logs inside its run directory (Slurm does not create it: the writer of the files must)."""


def log_pattern(run_dir: str, array: bool) -> str:
    """Where a Slurm job's log goes (``#SBATCH --output``): one file per job, or per array task."""
    return f"{run_dir}/{LOG_DIR}/%x_%A_%a.log" if array else f"{run_dir}/{LOG_DIR}/%x_%j.log"


def _saves(argv: list[str]) -> bool:
    """The launch saves checkpoints (``--save``): what a retry resumes from and the pre-limit signal saves."""
    return "--save" in argv


def render(exp: Experiment, run_dir: str, *, job_name: str | None = None, array: str | None = None,
           dependency: str | None = None, extra_sbatch: dict[str, str] | None = None,
           preflight: bool = False, run_root: str | None = None, toolkit_dir: str | None = None,
           script_env: dict[str, str] | None = None) -> Rendered:
    """Render every file of one job for ``run_dir`` (which need not exist yet).

    ``run_root``: the run directory a container mounts (an array's ``run_dir`` is its ``tasks/<chunk>_%a``);
    ``toolkit_dir``: the toolkit's package directory a container mounts (default: this one);
    ``script_env``: the environment the script exports (default: job.json's; the node entry applies job.json's
    per rank either way).
    """
    toolkit = toolkit_dir or str(package_data.package_dir())
    args = megatron_args.build(exp, run_dir)
    spec = job_spec(exp, args)
    common = dict(profile=exp.profile, recipe=exp.recipe, env=spec.env if script_env is None else script_env,
                  node_command=node_command(exp, run_dir, preflight))
    files = {"job.json": jobspec.dumps(spec)}
    if exp.profile.scheduler == "slurm":
        log = log_pattern(run_dir, bool(array))
        own = not preflight and _saves(args.argv)
        files["sbatch.sh"] = render_template(
            "sbatch.sh.j2", job_name=job_name or exp.recipe.name, nodes=exp.nodes, array=array,
            dependency=dependency, extra_sbatch=extra_sbatch or {}, segment=exp.segment, log_pattern=log,
            signal_margin_s=resilience.signal_margin_s(exp) if own else None,
            retry_command=resilience.retry_command(exp, f"{run_dir}/job.json", log) if own else None,
            watchdog_command=resilience.watchdog_command(exp, f"{run_dir}/job.json", log) if own else None,
            env_passthrough=spec.env_passthrough, toolkit_parent=str(Path(toolkit).parent),
            srun_flags=srun_flags(exp, run_root or run_dir, toolkit), **common)
    else:
        files["launch_local.sh"] = render_template("launch_local.sh.j2", world_size=exp.world_size,
                                                   master_port=master_port(zlib.crc32(run_dir.encode())),
                                                   **common)
    return Rendered(files, args, spec)

