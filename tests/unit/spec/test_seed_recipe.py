"""The `deepseek-v3` recipe rendered for `h100-eos` against what the seed's own repository passes to Megatron.

`tests/fixtures/seed/deepseek-v3-h100.args` is transcribed from Megatron-MoE-ModelZoo (its header says from which
files). Every model, parallelism, precision, optimizer and performance flag must match; flags about paths, data,
logging, evaluation, checkpoint handling and run length are left aside (``ASIDE``); each difference kept on purpose
is in ``KEPT`` with its reason, and the README lists the same flags.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.spec import megatron_args
from orchestrator.spec.config import load_experiment
from orchestrator.submit.render import job_env

SEED = Path(__file__).parents[2] / "fixtures" / "seed" / "deepseek-v3-h100.args"
README = Path(__file__).parents[3] / "README.md"

ASIDE = {
    # data, tokenizer and paths: the user's (data_path, tokenizer_*); mock data when empty
    "--data-cache-path", "--data-path", "--split", "--tokenizer-type", "--tokenizer-model", "--no-mmap-bin-files",
    "--make-vocab-size-divisible-by", "--mock-data", "--vocab-size",
    # run length: the seed counts samples, the toolkit iterations (the schedule is compared in samples below);
    # the exit time follows the profile's time limit; Slurm's pre-limit signal (USR1) saves and exits at once
    "--train-samples", "--lr-decay-samples", "--lr-warmup-samples", "--train-iters", "--lr-warmup-iters",
    "--lr-decay-iters",
    "--exit-duration-in-mins", "--exit-signal-handler", "--exit-signal", "--seed",
    # evaluation
    "--eval-iters", "--eval-interval",
    # checkpoint handling (the toolkit saves into the run directory and resumes from it)
    "--no-save-optim", "--no-load-optim", "--no-load-rng", "--auto-detect-ckpt-format", "--load", "--save",
    "--save-interval", "--dist-ckpt-strictness",
    # logging
    "--log-timers-to-tensorboard", "--log-memory-to-tensorboard", "--log-validation-ppl-to-tensorboard",
    "--log-throughput", "--log-interval", "--logging-level", "--tensorboard-dir", "--wandb-project",
    "--wandb-exp-name", "--wandb-save-dir",
}
ENV_ASIDE = {"NCCL_DEBUG"}  # logging: the seed's VERSION, the recipe's WARN

KEPT = {
    "--use-mcore-models": "deprecated and ignored by Megatron-Core (mcore models are the only ones)",
    "--use-flash-attn": "read by nothing in megatron-core 0.19; TE's fused attention is chosen by NVTE_FUSED_ATTN=1",
    "--moe-router-padding-for-fp8": "deprecated alias since 0.16: the toolkit passes "
                                    "--moe-router-padding-for-quantization (the drift table)",
    "--moe-router-padding-for-quantization": "the new name of --moe-router-padding-for-fp8",
}


def flags(argv: list[str]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    flag = ""
    for token in argv:
        if token.startswith("--"):
            flag = token
            out[flag] = ()
        else:
            out[flag] += (token,)
    return out


def seed() -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    argv: list[str] = []
    env: dict[str, str] = {}
    for line in SEED.read_text().splitlines():
        if line.startswith("## env "):
            name, _, value = line[len("## env "):].partition("=")
            env[name] = value
        elif line.startswith("--"):
            argv += line.split()
    return flags(argv), env


def normal(values: tuple[str, ...]) -> tuple[str, ...]:
    """Numbers compared as numbers (the seed writes 1e-4 and 40, the toolkit 0.0001 and 40)."""
    def one(v: str) -> str:
        try:
            return repr(float(v))
        except ValueError:
            return v
    return tuple(one(v) for v in values)


def rendered() -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    exp = load_experiment("h100-eos", "deepseek-v3", ["profile.account=acct"])
    return flags(megatron_args.build(exp, "/runs/x").argv), job_env(exp)


def test_every_seed_flag_is_rendered_with_the_seed_value() -> None:
    ours, _ = rendered()
    theirs, _ = seed()
    wrong = {f: (v, ours.get(f)) for f, v in theirs.items()
             if f not in ASIDE and f not in KEPT and normal(ours.get(f, ("<missing>",))) != normal(v)}
    assert wrong == {}, f"seed flag -> (seed value, rendered value): {wrong}"


def test_the_recipe_adds_no_flag_the_seed_does_not_pass() -> None:
    ours, _ = rendered()
    theirs, _ = seed()
    extra = sorted(f for f in ours if f not in theirs and f not in ASIDE and f not in KEPT)
    assert extra == []


def test_the_learning_rate_schedule_is_the_seeds_in_samples() -> None:
    """The seed warms up over 1,536,000 samples and decays over 584,765,624; the recipe counts iterations of its
    global batch: each within one batch of the seed's."""
    ours, _ = rendered()
    theirs, _ = seed()
    gbs = int(ours["--global-batch-size"][0])
    for mine, seeds in (("--lr-warmup-iters", "--lr-warmup-samples"), ("--lr-decay-iters", "--lr-decay-samples")):
        assert abs(int(ours[mine][0]) * gbs - int(theirs[seeds][0])) < gbs, (mine, ours[mine], theirs[seeds])


def test_a_checkpoint_directory_always_comes_with_a_save_interval() -> None:
    """Megatron 0.19 asserts save_interval whenever --save is given: every Slurm launch renders both."""
    exp = load_experiment("h100-eos", "deepseek-v3", ["profile.account=acct"])
    ours = flags(megatron_args.build(exp, "/runs/x").argv)
    assert "--save" in ours and ours["--save-interval"] == (str(exp.recipe.training.train_iters),)
    ours = flags(megatron_args.build(load_experiment("h100-eos", "deepseek-v3", [
        "profile.account=acct", "training.save_interval=250"]), "/runs/x").argv)
    assert ours["--save-interval"] == ("250",)


def test_the_environment_matches_the_seed() -> None:
    _, env = rendered()
    _, seed_env = seed()
    wrong = {k: (v, env.get(k)) for k, v in seed_env.items() if k not in ENV_ASIDE and env.get(k) != v}
    assert wrong == {}


def test_each_kept_difference_is_in_the_readme_with_its_reason() -> None:
    text = README.read_text()
    assert [f for f in KEPT if f"`{f}`" not in text] == []


def test_without_a2a_overlap_the_environment_follows_the_seed_launch() -> None:
    exp = load_experiment("h100-eos", "deepseek-v3", ["profile.account=acct", "switches.ep_a2a_overlap=false",
                                                       "switches.delay_wgrad_compute=false"])
    env = job_env(exp)
    assert (env["CUDA_DEVICE_MAX_CONNECTIONS"], env["NVTE_FWD_LAYERNORM_SM_MARGIN"]) == ("1", "0")


def test_the_proxies_keep_their_benchmark_schedule() -> None:
    """The proxies extend deepseek-v3 but not its 71,383-iteration schedule: no warm-up, the decay over their own
    run (seen on the GPU: a proxy that inherited the seed's warm-up trained at 1e-6-scale learning rates)."""
    for recipe in ("dsv3-proxy-3l", "dsv3-proxy-14l", "dsv3-proxy-3l-fast", "dsv3-proxy-small"):
        ours = flags(megatron_args.build(load_experiment("local", recipe, []), "/runs/x").argv)
        assert (ours["--lr-warmup-iters"], ours["--lr-decay-iters"]) == (("0",), ours["--train-iters"]), recipe
