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
from ..spec import megatron_args, resources, secret_names
from ..spec.config import Experiment
from ..node import jobspec
from ..node.entry import master_port
from ..spec.typed import ConfigError

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SBATCH_SAFE = re.compile(r"^[A-Za-z0-9_.,:@%/+=\-\[\]]+$")


def shq(value: Any) -> str:
    """Quote one value for POSIX sh."""
    return shlex.quote(str(value))


def shjoin(values: list[Any]) -> str:
    """Quote and join an argv."""
    return " ".join(shq(v) for v in values)


def sbatch_value(value: Any) -> str:
    """A value for an ``#SBATCH`` line: refused when it holds spaces, quotes, newlines or shell syntax."""
    text = str(value)
    if not _SBATCH_SAFE.fullmatch(text):
        raise ConfigError("#SBATCH", f"{text!r} holds characters an #SBATCH line cannot carry",
                          "use letters, digits and . , : @ % / + = - _ [ ] only")
    return text


def envname(value: Any) -> str:
    """An environment variable name, refused unless it is a valid identifier."""
    text = str(value)
    if not _ENV_NAME.fullmatch(text):
        raise ConfigError("env", f"{text!r} is not a valid environment variable name", "use [A-Za-z_][A-Za-z0-9_]*")
    return text


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The one Jinja2 environment every template renders in (made once: it compiles each template once, so a
    sweep of 10,000 variants renders without compiling 10,000 times)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(resources.templates_dir())),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters.update(shq=shq, shjoin=shjoin, sbatch=sbatch_value, envname=envname)
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
        """Write the files into a new or empty directory (never over existing files)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        clashes = [name for name in self.files if (out_dir / name).exists()]
        if clashes:
            raise ConfigError("--out", f"{out_dir} already holds {', '.join(clashes)}", "choose a new directory")
        paths = []
        for name, text in self.files.items():
            path = out_dir / name
            path.write_text(text)
            if name.endswith(".sh"):
                path.chmod(0o755)
            paths.append(path)
        return paths


def job_env(exp: Experiment) -> dict[str, str]:
    """Recipe environment, then the cluster's (the cluster wins), refusing secrets written as values."""
    env = {**exp.recipe.env, **exp.profile.env}
    for name in env:
        envname(name)
        if secret_names.is_secret(name):
            raise ConfigError(f"env.{name}", "looks like a secret and would be written into rendered files",
                              f"remove it and export {name} in your shell: it is passed through by name")
    return env


def job_spec(exp: Experiment, args: megatron_args.MegatronArgs) -> jobspec.JobSpec:
    """The node entry's argument file (job.json), see docs/ARCHITECTURE.md."""
    return jobspec.JobSpec(
        name=exp.recipe.name, command=tuple(megatron_args.entry_command(exp) + args.argv), env=job_env(exp),
        env_passthrough=secret_names.PASSTHROUGH, bindpcie=exp.profile.bindpcie_path or None,
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


def log_pattern(run_dir: str, array: bool) -> str:
    """Where a Slurm job's log goes (``#SBATCH --output``): one file per job, or per array task."""
    return f"{run_dir}/logs/%x_%A_%a.log" if array else f"{run_dir}/logs/%x_%j.log"


def render(exp: Experiment, run_dir: str, *, job_name: str | None = None, array: str | None = None,
           dependency: str | None = None, extra_sbatch: dict[str, str] | None = None,
           preflight: bool = False, run_root: str | None = None, toolkit_dir: str | None = None) -> Rendered:
    """Render every file of one job for ``run_dir`` (which need not exist yet).

    ``run_root``: the run directory a container mounts (an array's ``run_dir`` is its ``tasks/<chunk>_%a``);
    ``toolkit_dir``: the toolkit's package directory a container mounts (default: this one).
    """
    toolkit = toolkit_dir or str(resources.package_dir())
    args = megatron_args.build(exp, run_dir)
    spec = job_spec(exp, args)
    common = dict(profile=exp.profile, recipe=exp.recipe, env=spec.env,
                  node_command=node_command(exp, run_dir, preflight))
    files = {"job.json": jobspec.dumps(spec)}
    if exp.profile.scheduler == "slurm":
        files["sbatch.sh"] = render_template(
            "sbatch.sh.j2", job_name=job_name or exp.recipe.name, nodes=exp.nodes, array=array,
            dependency=dependency, extra_sbatch=extra_sbatch or {},
            log_pattern=log_pattern(run_dir, bool(array)),
            env_passthrough=spec.env_passthrough, toolkit_parent=str(Path(toolkit).parent),
            srun_flags=srun_flags(exp, run_root or run_dir, toolkit), **common)
    else:
        files["launch_local.sh"] = render_template("launch_local.sh.j2", world_size=exp.world_size,
                                                   master_port=master_port(zlib.crc32(run_dir.encode())),
                                                   **common)
    return Rendered(files, args, spec)

