"""The hostile-input corpus (issue 9, categories 1-8; round 2, category 9): inputs a careless or hostile user gives the CLI, profiles,
recipes, sweeps, ``--set``, run.sh's variables and run directories. Every case must be refused with exit status 2
and one ``error:`` line naming ``setting`` and its fix, with no traceback, nothing written and nothing submitted
(``test_hostile_corpus.py``); ``validate`` and ``submit --dry-run`` must give the same verdict on each.

``argv`` and file texts may hold ``{tmp}`` (the test's directory). ``files`` are written before the run (relative
to ``{tmp}``; bytes as they are). The CLI runs in ``{tmp}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

BASE = ("--profile", "local-slurm", "--recipe", "dsv3-proxy-3l", "--set", "profile.output_root={tmp}/runs")
"""A valid Slurm experiment (the base every --set case changes)."""


@dataclass(frozen=True)
class Case:
    category: int
    name: str
    argv: tuple[str, ...]
    """After ``orchestrator``; the first item is the verb."""
    setting: str
    """Text the error line must hold: the setting (or file) at fault."""
    files: dict[str, str | bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.category}-{self.name}"

    @property
    def checkable(self) -> bool:
        """Whether ``validate`` takes the same arguments (a submit of --profile/--recipe/--set, no sweep/--from)."""
        return self.argv[0] == "submit" and "--sweep" not in self.argv and "--from" not in self.argv


def sets(category: int, name: str, setting: str, *overrides: str, env: dict[str, str] | None = None,
         files: dict[str, str | bytes] | None = None) -> Case:
    """A submit of the base experiment with these --set overrides."""
    argv = ("submit", *BASE, *[a for o in overrides for a in ("--set", o)])
    return Case(category, name, argv, setting, env=env or {}, files=files or {})


def with_profile(category: int, name: str, setting: str, text: str | bytes, *extra: str) -> Case:
    """A submit with the profile file ``{tmp}/mine/p.yaml`` holding ``text``."""
    argv = ("submit", "--profile", "p", "--profiles-dir", "{tmp}/mine", "--recipe", "dsv3-proxy-3l",
            "--set", "profile.output_root={tmp}/runs", *extra)
    return Case(category, name, argv, setting, files={"mine/p.yaml": text})


def with_recipe(category: int, name: str, setting: str, text: str | bytes) -> Case:
    argv = ("submit", "--profile", "local-slurm", "--recipe", "r", "--recipes-dir", "{tmp}/rec",
            "--set", "profile.output_root={tmp}/runs")
    return Case(category, name, argv, setting, files={"rec/r.yaml": text})


def with_sweep(category: int, name: str, setting: str, text: str | bytes) -> Case:
    argv = ("submit", *BASE, "--sweep", "{tmp}/s.yaml")
    return Case(category, name, argv, setting, files={"s.yaml": text})


def runsh(category: int, name: str, setting: str, **env: str) -> Case:
    """run.sh's hand-off (`orchestrator runsh`) with these variables."""
    base = {"PROFILE": "local-slurm", "RECIPE": "dsv3-proxy-3l", "OUTPUT_DIR": "{tmp}/runs"}
    return Case(category, name, ("runsh",), setting, env={**base, **env})


def record(**changes: object) -> str:
    """A record.json of a submitted local-slurm run, with some top-level keys changed (None: removed)."""
    data: dict[str, object] = {
        "run_id": "r1", "kind": "single", "backend": "slurm",
        "profile": {"name": "local-slurm", "resolved": {"name": "local-slurm", "scheduler": "slurm", "nodes": 2,
                                                         "gpus_per_node": 2, "gpu_request": "gres",
                                                         "partition": "debug", "output_root": "{tmp}/runs"}},
        "recipe": {"name": "dsv3-proxy-3l", "resolved": {"name": "dsv3-proxy-3l"}},
        "overrides": [], "command": [], "env": {}, "versions": {}, "files": ["sbatch.sh"],
        "jobs": [{"job_id": "12", "role": "run", "script": "sbatch.sh"}], "tasks": []}
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return json.dumps(data)


def with_run(category: int, name: str, setting: str, text: str | bytes, verb: str = "status") -> Case:
    """``verb`` on the run directory ``{tmp}/runs/r1`` whose record.json holds ``text``."""
    argv = ("submit", "--from", "{tmp}/runs/r1") if verb == "submit" else (verb, "{tmp}/runs/r1")
    return Case(category, name, argv, setting, files={"runs/r1/record.json": text, "runs/r1/logs/x_12.log": "x\n"})


SWEEP = "name: s\nvariants:\n  - name: a\n    set: [{}]\n"

BOMB = "".join(["a0: &a0 [x, x, x, x, x, x, x, x, x]\n"]
               + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)])
"""A 'billion laughs': nine aliases of nine, eight deep (about 430 million values once expanded)."""


def edited_record(section: str, key: str, value: object) -> str:
    """The record a real submit of ``BASE`` writes (its resolved profile and recipe as the toolkit resolves them
    now), with one resolved value edited."""
    from orchestrator.spec.config import load_experiment
    from orchestrator.spec.schema import to_dict

    exp = load_experiment("local-slurm", "dsv3-proxy-3l", ["profile.output_root={tmp}/runs"])
    sections = {"profile": to_dict(exp.profile), "recipe": to_dict(exp.recipe)}
    sections[section][key] = value
    return record(profile={"name": "local-slurm", "resolved": sections["profile"]},
                  recipe={"name": "dsv3-proxy-3l", "resolved": sections["recipe"]},
                  overrides=["profile.output_root={tmp}/runs"])

CASES: list[Case] = [
    # 1. injection through names ---------------------------------------------------------------------------
    sets(1, "profile-name-newline-command", "profile.name", 'profile.name="x\\ntouch pwned\\n#"'),
    sets(1, "recipe-name-newline-command", "recipe.name", 'name="x\\ntouch pwned\\n#"'),
    sets(1, "recipe-name-semicolon", "recipe.name", "name=x;touch pwned"),
    sets(1, "recipe-name-command-substitution", "recipe.name", "name=$(touch pwned)"),
    sets(1, "recipe-name-backticks", "recipe.name", "name=`touch pwned`"),
    sets(1, "profile-name-space", "profile.name", "profile.name=a b"),
    sets(1, "recipe-name-too-long", "recipe.name", "name=" + "a" * 65),
    sets(1, "recipe-name-unicode", "recipe.name", "name=modèle"),
    sets(1, "recipe-name-empty", "recipe.name", 'name=""'),
    with_profile(1, "profile-file-name-newline", "profile.name",
                 'name: "x\\ntouch pwned\\n#"\nscheduler: slurm\nnodes: 2\ngpus_per_node: 2\ngpu_request: gres\n'),
    Case(1, "profile-file-stem-with-space", ("submit", "--profile", "{tmp}/my prof.yaml", *BASE[2:]),
         "profile.name", files={"my prof.yaml": "scheduler: slurm\nnodes: 2\ngpus_per_node: 2\n"}),
    with_recipe(1, "recipe-file-name-quote", "recipe.name", "extends: dsv3-proxy-3l\nname: \"r'; touch pwned; '\"\n"),
    with_sweep(1, "sweep-name-command", "sweep.name", "name: s$(touch pwned)\nvariants:\n  - name: a\n"),
    with_sweep(1, "variant-name-newline", "sweep.variants[0].name", 'name: s\nvariants:\n  - name: "a\\ntouch pwned"\n'),
    sets(1, "setup-line-with-newline", "profile.setup[0]", 'profile.setup=["echo ok\\ntouch pwned"]'),
    sets(1, "env-value-carriage-return", "recipe.env.FOO", 'env.FOO="a\\rtouch pwned"'),
    with_run(1, "from-record-name-newline", "profile.name",
             record(profile={"name": "x", "resolved": {"name": "x\ntouch pwned\n#", "scheduler": "slurm"}}),
             verb="submit"),
    # 2. YAML 1.1 implicit types and Slurm times --------------------------------------------------------------
    sets(2, "time-limit-not-slurm", "profile.time_limit", "profile.time_limit=14400x"),
    sets(2, "time-limit-four-fields", "profile.time_limit", "profile.time_limit=1:2:3:4"),
    sets(2, "time-limit-minutes-61", "profile.time_limit", "profile.time_limit=4:61:00"),
    sets(2, "time-limit-zero", "profile.time_limit", "profile.time_limit=0"),
    sets(2, "time-limit-day-hours-25", "profile.time_limit", "profile.time_limit=1-25"),
    sets(2, "time-limit-date", "profile.time_limit", "profile.time_limit=2026-01-01"),
    sets(2, "time-limit-bool", "profile.time_limit", "profile.time_limit=true"),
    sets(2, "account-bool", "profile.account", "profile.account=true"),
    sets(2, "account-list", "profile.account", "profile.account=[a, b]"),
    sets(2, "tp-hex", "recipe.parallel.tp", "parallel.tp=0x2"),
    sets(2, "tp-octal", "recipe.parallel.tp", "parallel.tp=010"),
    sets(2, "lr-sexagesimal", "recipe.training.lr", "training.lr=1:30"),
    sets(2, "switch-yes", "recipe.switches.mtp", "switches.mtp=yes"),
    with_profile(2, "profile-file-time-limit-unknown-form", "profile.time_limit",
                 "scheduler: slurm\nnodes: 2\ngpus_per_node: 2\ngpu_request: gres\ntime_limit: 12:00:00:00\n"),
    # 3. validate must equal submit (each said `ok` in validate before) ----------------------------------------
    sets(3, "account-with-space", "profile.account", "profile.account=my acct"),
    sets(3, "env-name-digit-first", "recipe.env.1BAD", "env.1BAD=x"),
    sets(3, "env-name-with-space", "recipe.env.A B", "env.A B=x"),
    sets(3, "env-secret", "recipe.env.SERVICE_TOKEN", "env.SERVICE_TOKEN=x"),
    sets(3, "output-root-with-space", "profile.output_root", "profile.output_root={tmp}/my runs"),
    sets(3, "account-unicode", "profile.account", "profile.account=cömpte"),
    sets(3, "partition-semicolon", "profile.partition", "profile.partition=a;b"),
    sets(3, "qos-command", "profile.qos", "profile.qos=$(id)"),
    sets(3, "reservation-backticks", "profile.reservation", "profile.reservation=r`id`"),
    sets(3, "mem-with-space", "profile.mem", "profile.mem=10 G"),
    sets(3, "passthrough-bad-name", "profile.env_passthrough", "profile.env_passthrough=[1BAD]"),
    sets(3, "profile-env-name-dash", "profile.env.BAD-NAME", "profile.env.BAD-NAME=x"),
    # 4. silent fallbacks ---------------------------------------------------------------------------------------
    Case(4, "profiles-dir-missing", ("submit", "--profile", "local-slurm", "--profiles-dir", "/no/such"),
         "--profiles-dir"),
    Case(4, "profiles-dir-is-file", ("submit", "--profile", "local-slurm", "--profiles-dir", "{tmp}/f"),
         "--profiles-dir", files={"f": "x"}),
    Case(4, "profiles-dir-env-missing", ("submit", *BASE), "$ORCHESTRATOR_PROFILES_DIR",
         env={"ORCHESTRATOR_PROFILES_DIR": "/no/such"}),
    Case(4, "recipes-dir-missing", ("submit", *BASE, "--recipes-dir", "/no/such"), "--recipes-dir"),
    Case(4, "recipes-dir-env-is-file", ("submit", *BASE), "$ORCHESTRATOR_RECIPES_DIR", files={"f": "x"},
         env={"ORCHESTRATOR_RECIPES_DIR": "{tmp}/f"}),
    sets(4, "recipe-nodes-zero", "recipe.nodes", "nodes=0"),
    sets(4, "profile-nodes-zero", "profile.nodes", "profile.nodes=0"),
    Case(4, "profile-nodes-against-recipe-nodes", ("submit", "--profile", "h100-eos", "--set", "profile.nodes=16",
                                                   "--set", "profile.account=a", "--set",
                                                   "profile.output_root={tmp}/runs"), "nodes: recipe deepseek-v3"),
    with_profile(4, "empty-profile-file", "p.yaml", ""),
    with_profile(4, "profile-file-only-comments", "p.yaml", "# nothing here\n"),
    Case(4, "profile-path-missing", ("submit", "--profile", "{tmp}/none.yaml"), "--profile"),
    Case(4, "profile-unknown", ("submit", "--profile", "no-such-cluster"), "--profile"),
    runsh(4, "container-mounts-only-commas", "CONTAINER_MOUNTS", CONTAINER_MOUNTS=",,,"),
    runsh(4, "container-mounts-empty-item", "CONTAINER_MOUNTS", CONTAINER_MOUNTS="/a:/a,,/b:/b"),
    runsh(4, "nnodes-zero", "profile.nodes", NNODES="0"),
    runsh(4, "nnodes-word", "profile.nodes", NNODES="two"),
    # 5. ranges ---------------------------------------------------------------------------------------------------
    sets(5, "gbs-zero", "recipe.training.global_batch_size", "training.global_batch_size=0"),
    sets(5, "gbs-negative", "recipe.training.global_batch_size", "training.global_batch_size=-8"),
    sets(5, "train-iters-negative", "recipe.training.train_iters", "training.train_iters=-1"),
    sets(5, "lr-negative", "recipe.training.lr", "training.lr=-0.1"),
    sets(5, "lr-nan", "recipe.training.lr", "training.lr=.nan"),
    sets(5, "lr-inf", "recipe.training.lr", "training.lr=.inf"),
    sets(5, "seq-length-zero", "recipe.model.seq_length", "model.seq_length=0"),
    sets(5, "micro-batch-zero", "recipe.training.micro_batch_size", "training.micro_batch_size=0"),
    sets(5, "tp-zero", "recipe.parallel.tp", "parallel.tp=0"),
    sets(5, "vpp-zero", "recipe.parallel.vpp", "parallel.vpp=0"),
    sets(5, "ep-negative", "recipe.parallel.ep", "parallel.ep=-2"),
    sets(5, "num-experts-zero", "recipe.model.num_experts", "model.num_experts=0"),
    sets(5, "max-array-parallel-negative", "profile.max_array_parallel", "profile.max_array_parallel=-1"),
    sets(5, "gpus-per-node-huge", "profile.gpus_per_node", "profile.gpus_per_node=100000"),
    sets(5, "nodes-10-to-30", "profile.nodes", "profile.nodes=1000000000000000000000000000000"),
    sets(5, "layout-repeat-huge", "parallel.pipeline_layout", 'parallel.pipeline_layout="t*1000000000000"'),
    sets(5, "lr-too-large-for-a-float", "recipe.training.lr", "training.lr=1" + "0" * 400),
    sets(5, "seed-negative", "recipe.training.seed", "training.seed=-1"),
    sets(5, "exit-margin-negative", "recipe.training.exit_margin_minutes", "training.exit_margin_minutes=-5"),
    sets(5, "manual-gc-interval-zero", "recipe.switches.manual_gc_interval", "switches.manual_gc_interval=0"),
    sets(5, "log-interval-zero", "recipe.training.log_interval", "training.log_interval=0"),
    sets(5, "cpus-per-task-zero", "profile.cpus_per_task", "profile.cpus_per_task=0"),
    with_sweep(5, "sweep-max-parallel-zero", "sweep.max_parallel", "name: s\nmax_parallel: 0\nvariants:\n  - name: a\n"),
    # 6. secrets ---------------------------------------------------------------------------------------------------
    sets(6, "service-credential", "recipe.env.SERVICE_CREDENTIAL", "env.SERVICE_CREDENTIAL=hunter2"),
    sets(6, "db-pass", "recipe.env.DB_PASS", "env.DB_PASS=hunter2"),
    sets(6, "github-pat", "recipe.env.GITHUB_PAT", "env.GITHUB_PAT=hunter2"),
    sets(6, "aws-secret-access-key", "recipe.env.AWS_SECRET_ACCESS_KEY", "env.AWS_SECRET_ACCESS_KEY=hunter2"),
    sets(6, "db-password-lowercase", "recipe.env.db_password", "env.db_password=hunter2"),
    sets(6, "profile-env-hf-token", "profile.env.HF_TOKEN", "profile.env.HF_TOKEN=hunter2"),
    sets(6, "apikey-inside-word", "recipe.env.OPENAIAPIKEY", "env.OPENAIAPIKEY=hunter2"),
    with_profile(6, "profile-file-ngc-key", "profile.env.NGC_API_KEY",
                 "scheduler: slurm\nnodes: 2\ngpus_per_node: 2\ngpu_request: gres\nenv: {NGC_API_KEY: hunter2}\n"),
    with_recipe(6, "recipe-file-slack-token", "recipe.env.SLACK_TOKEN", "extends: dsv3-proxy-3l\nenv: {SLACK_TOKEN: hunter2}\n"),
    with_sweep(6, "sweep-variant-wandb-key", "sweep.variants.a: recipe.env.WANDB_API_KEY",
               SWEEP.format("env.WANDB_API_KEY=hunter2")),
    # 7. run directories are untrusted input ------------------------------------------------------------------
    with_run(7, "jobs-a-string", "record.jobs", record(jobs="abc")),
    with_run(7, "record-empty-object", "record.run_id", "{}"),
    with_run(7, "record-a-list", "record.json", "[]"),
    with_run(7, "record-binary", "record.json", b"\xff\xfe\x00garbage"),
    with_run(7, "job-id-not-a-number-cancel", "record.jobs[0].job_id",
             record(jobs=[{"job_id": "abc", "role": "run", "script": "sbatch.sh"}]), verb="cancel"),
    with_run(7, "job-entry-missing-role-logs", "record.jobs[0].role",
             record(jobs=[{"job_id": "12", "script": "sbatch.sh"}]), verb="logs"),
    with_run(7, "backend-unknown", "record.backend", record(backend="evil")),
    with_run(7, "tasks-not-a-list", "record.tasks", record(tasks={"a": 1})),
    with_run(7, "from-no-resolved", "profile.resolved", record(profile={"name": "local-slurm"}), verb="submit"),
    with_run(7, "from-resolved-wrong-type", "profile.nodes",
             record(profile={"name": "p", "resolved": {"name": "p", "nodes": "many"}}), verb="submit"),
    # 8. I/O errors as one line --------------------------------------------------------------------------------------
    with_profile(8, "binary-profile", "p.yaml", b"\xff\xfe\x00\x01binary"),
    Case(8, "profile-path-is-directory", ("submit", "--profile", "{tmp}/d.yaml", *BASE[2:]), "d.yaml",
         files={"d.yaml/x": "x"}),
    with_profile(8, "profile-bad-yaml", "p.yaml", "scheduler: [slurm\n"),
    with_profile(8, "profile-top-level-list", "p.yaml", "- a\n- b\n"),
    with_profile(8, "extends-missing", "p.yaml: extends", "extends: missing\nscheduler: slurm\n"),
    Case(8, "extends-cycle", ("submit", "--profile", "p", "--profiles-dir", "{tmp}/mine"), "extends",
         files={"mine/p.yaml": "extends: q\n", "mine/q.yaml": "extends: p\n"}),
    with_recipe(8, "binary-recipe", "r.yaml", b"\x00\x9f\x92\x96"),
    with_sweep(8, "binary-sweep", "s.yaml", b"\xff\xd8\xff\xe0"),
    with_sweep(8, "sweep-variant-fails-validation", "sweep.variants.a: parallel.tp/cp/pp",
               SWEEP.format("parallel.tp=3")),
    with_sweep(8, "sweep-variant-bad-type", "sweep.variants.a: recipe.parallel.tp", SWEEP.format("parallel.tp=x")),
    Case(8, "render-out-onto-file", ("render", *BASE, "--out", "{tmp}/f"), "--out", files={"f": "keep\n"}),
    Case(8, "render-run-sh-missing-dir", ("render", *BASE, "--run-sh", "{tmp}/no/such/run.sh"), "--run-sh"),
    Case(8, "render-run-sh-existing", ("render", *BASE, "--run-sh", "{tmp}/run.sh"), "--run-sh",
         files={"run.sh": "keep\n"}),
    sets(8, "output-root-is-file", "profile.output_root", "profile.output_root={tmp}/f", files={"f": "x"}),
    sets(8, "output-root-under-file", "profile.output_root", "profile.output_root={tmp}/g/runs", files={"g": "x"}),
    sets(8, "set-without-equals", "--set", "parallel.tp"),
    sets(8, "set-nested-too-deeply", "--set", "parallel.tp=" + "[" * 3000 + "]" * 3000),
    with_profile(8, "profile-nested-too-deeply", "p.yaml", "a: " + "[" * 5000 + "]" * 5000),
    # 9. round 2: records that run code, secrets in files, Slurm's patterns, YAML and numbers ----------------------
    with_run(9, "from-record-setup-runs-a-command", "profile.setup",
             edited_record("profile", "setup", ["touch /tmp/orchestrator-pwned"]), verb="submit"),
    with_run(9, "from-record-python-is-a-script", "profile.python",
             edited_record("profile", "python", "/tmp/evil.sh"), verb="submit"),
    with_run(9, "from-record-bindpcie-is-a-script", "profile.bindpcie_path",
             edited_record("profile", "bindpcie_path", "/tmp/evil.sh"), verb="submit"),
    with_run(9, "from-record-megatron-path-elsewhere", "profile.megatron_path",
             edited_record("profile", "megatron_path", "/tmp/evil"), verb="submit"),
    with_run(9, "from-record-env-added", "recipe.env",
             edited_record("recipe", "env", {"LD_PRELOAD": "/tmp/evil.so"}), verb="submit"),
    sets(9, "setup-exports-a-secret", "profile.setup[0]", 'profile.setup=["export HF_TOKEN=hf_abc123"]'),
    sets(9, "setup-inline-secret", "profile.setup[1]", 'profile.setup=["echo ok", "MY_API_KEY=abc python x.py"]'),
    sets(9, "passthrough-name-given-a-value", "recipe.env.MYKEY", "profile.env_passthrough=[MYKEY]", "env.MYKEY=v"),
    sets(9, "output-root-slurm-pattern", "profile.output_root", "profile.output_root={tmp}/runs%j"),
    sets(9, "output-root-backslash", "profile.output_root", "profile.output_root={tmp}/ru\\ns"),
    sets(9, "set-value-alias-bomb", "profile.setup", "profile.setup=" + BOMB.replace("\n", " ")),
    with_profile(9, "profile-alias-bomb", "p.yaml", "extends: local-slurm\n" + BOMB),
    with_recipe(9, "recipe-alias-bomb", "r.yaml", "extends: dsv3-proxy-3l\n" + BOMB),
    with_sweep(9, "sweep-alias-bomb", "s.yaml", "name: s\n" + BOMB + "variants:\n  - name: a\n"),
    with_profile(9, "profile-duplicate-key", "p.yaml", "extends: local-slurm\nnodes: 1\nnodes: 2\n"),
    with_recipe(9, "recipe-duplicate-nested-key", "r.yaml",
                "extends: dsv3-proxy-3l\ntraining:\n  lr: 1.0e-4\n  lr: 1.0e-3\n"),
    sets(9, "integer-of-5000-digits", "recipe.training.train_iters", "training.train_iters=" + "9" * 5000),
    sets(9, "negative-integer-of-5000-digits", "recipe.parallel.tp", "parallel.tp=-" + "9" * 5000),
    sets(9, "extra-args-override-tp", "training.extra_args",
         'training.extra_args=["--tensor-model-parallel-size", "4"]'),
    sets(9, "extra-args-second-save", "training.extra_args", 'training.extra_args=["--save=/elsewhere"]'),
    sets(9, "profile-steps-backwards", "profiling.steps", "profiling.steps=9-3"),
    Case(9, "status-interval-negative", ("status", "--interval", "-1", "--root", "{tmp}/runs"), "--interval"),
    Case(9, "plan-margin-nan", ("plan", "--profile", "h100", "--margin", "nan"), "--margin"),
    sets(9, "lr-underflows-to-zero", "recipe.training.lr", "training.lr=1e-400"),
    sets(9, "mem-not-a-size", "profile.mem", "profile.mem=lots"),
    sets(9, "python-empty", "profile.python", "profile.python=''"),
    sets(9, "tokenizer-type-empty", "training.tokenizer_type", "training.tokenizer_type=''"),
    sets(9, "fp8-on-a100", "switches.fp8_blockwise", "profile.gpu=a100"),
    Case(9, "local-ignores-image", ("submit", "--profile", "local", "--recipe", "dsv3-proxy-3l", "--set",
                                    "profile.output_root={tmp}/runs", "--set", "profile.container.image=/i.sqsh"),
         "profile.container.image"),
    with_sweep(9, "variant-named-like-a-task-index", "sweep.variants[0].name",
               "name: s\nvariants:\n  - name: '1'\n  - name: '0'\n"),
    with_sweep(9, "variant-names-differ-in-case", "sweep.variants[1].name",
               "name: s\nvariants:\n  - name: Best\n  - name: best\n"),
    Case(9, "profiles-dir-empty", ("submit", "--profiles-dir", "", *BASE), "--profiles-dir"),
]
