"""cpu_gpt: a small GPT that really trains on CPUs, behind Megatron-LM's ``pretrain_gpt.py`` contract.

``profile.megatron_path=tests/e2e/cpu_gpt`` makes the node entry run ``python -u <path>/pretrain_gpt.py <Megatron
args>`` as for a Megatron-LM checkout. Megatron's model, batch, schedule, logging and checkpoint flags are parsed
(``parse_known_args``); every other flag (MoE, MLA, parallelism, precision, fusions ...) is accepted and ignored,
and rank 0 prints one line listing them. Megatron's check that GBS is a multiple of MBS x data-parallel size stays.

Distributed: gloo from the node entry's RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK; rank 0 prints the
host and local rank of every rank and the all-reduced sum of rank + 1. Every rank is data-parallel (TP = PP = CP
= 1): gradient accumulation, one all-reduce of the gradients per step, clipping, AdamW, Megatron's LR schedule
(warm-up, then constant / linear / cosine from --lr to --min-lr). AdamW and the all-reduce are written out (as
Megatron has its own optimizer): torch.optim and DistributedDataParallel import torch._dynamo on first use, ~2 s
of CPU per rank. The AdamW update gives the same numbers as torch.optim.AdamW.

Caps, so an iteration costs well under a second on one CPU core per rank (torch runs 1 thread): at most 2 layers,
width 64, 4 heads, FFN 4 x width, sequence 64, vocabulary 1024. Rank 0 prints the caps applied; the ``arguments``
dump holds the values used, so the report's FLOPs formula describes the model that ran.

Data (mock; ``--data-path`` is not read): a noisy walk along a fixed random permutation of the first 128 token ids
(each token is followed by its successor 7 times in 8), so the loss falls from ln(vocab) towards ~1. Sample i
depends only on (--seed, i); rank r of W takes micro-batches r, r + W, ... of each global batch.

Before anything else rank 0 runs Megatron's own argument validation (megatron-core 0.19.2 under the Python >= 3.12
environment of ``scripts/megatron-env.sh``) on the full argv it was given, and exits 1 where Megatron refuses it: the
stand-in ignores the flags it does not implement, but a launch a real Megatron would refuse never trains here.

As Megatron: the ``arguments`` dump; ``iteration N/ M | ...`` lines (last rank, averaged over --log-interval);
``--save DIR``: DIR/iter_XXXXXXX/mp_rank_00/model_optim_rng.pt + DIR/latest_checkpointed_iteration.txt (rank 0) at
--save-interval and at the end; ``--load`` resumes model, optimizer, schedule and data position;
``--exit-duration-in-mins``: real minutes since the start, checked every iteration (the ranks agree by all-reduce),
then save and exit 0. Test hooks: ``CPU_GPT_FAIL_AT_ITER=N``: rank 1 (0 when alone) raises at iteration N.
``CPU_GPT_MS_PER_ITER=M``: the exit clock is simulated, M ms per iteration this process trained (start-up counts 0),
so a time-limited segment stops after the same iteration on a fast or a slow machine. ``CPU_GPT_SLEEP_MS=M``: every
rank sleeps M ms after each iteration, so a short run stays alive long enough to be disturbed.
``CPU_GPT_FAULT=kind@N[,...]``: at iteration N, ``nccl-timeout`` (every rank prints the line a real NCCL watchdog
timeout prints, then aborts), ``hang`` (every rank stops making progress), ``oom`` (rank 1 raises a CUDA-OOM-shaped
``torch.OutOfMemoryError``), ``exit`` (rank 1 exits 3); each fires once per run (remembered beside the checkpoints,
so the resumed run does not fire it again). As Megatron: ``--exit-signal-handler`` (``--exit-signal``, default
SIGTERM) saves at the end of the iteration the signal came in and exits 0; SIGUSR2 writes every thread's stack to
``$ORCHESTRATOR_STACKS`` (faulthandler) where the node entry names it.
"""
from __future__ import annotations

import argparse
import datetime
import faulthandler
import math
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

START = time.time()
CAPS = {"num_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "seq_length": 64, "vocab_size": 1024}
ALPHABET, NOISE = 128, 1 / 8
Batch = tuple[Tensor, Tensor]


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Megatron's arguments that cpu_gpt implements (its defaults), and the other flags given."""
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    for flag, kind, default in [
        ("num-layers", int, 2), ("hidden-size", int, 64), ("ffn-hidden-size", int, None),
        ("num-attention-heads", int, 4), ("seq-length", int, 64), ("max-position-embeddings", int, None),
        ("vocab-size", int, 1024), ("make-vocab-size-divisible-by", int, 128), ("micro-batch-size", int, 1),
        ("global-batch-size", int, None), ("min-lr", float, 0.0), ("lr-warmup-iters", int, 0),
        ("lr-decay-iters", int, None),
        ("weight-decay", float, 0.01), ("clip-grad", float, 1.0), ("adam-beta1", float, 0.9),
        ("adam-beta2", float, 0.999), ("adam-eps", float, 1e-8), ("seed", int, 1234), ("log-interval", int, 100),
        ("save", str, None), ("load", str, None), ("save-interval", int, None), ("exit-duration-in-mins", int, None),
    ]:
        p.add_argument(f"--{flag}", type=kind, default=default)
    p.add_argument("--train-iters", type=int, required=True)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--lr-decay-style", choices=["constant", "linear", "cosine"], default="linear")
    p.add_argument("--mock-data", action="store_true")
    p.add_argument("--exit-signal-handler", action="store_true")
    p.add_argument("--exit-signal", default="SIGTERM")
    p.add_argument("--data-path", nargs="*", default=None)
    args, unknown = p.parse_known_args(argv)
    return args, [t for t in unknown if t.startswith("--")]


def apply_caps(args: argparse.Namespace, world: int) -> list[str]:
    """Cap the model to CPU size and fill the derived values (in place); returns 'name a->b' per value capped."""
    changed = []
    for name, cap in CAPS.items():
        if getattr(args, name) > cap:
            changed.append(f"{name} {getattr(args, name)}->{cap}")
            setattr(args, name, cap)
    heads = max(h for h in range(1, args.num_attention_heads + 1) if args.hidden_size % h == 0)
    ffn = min(args.ffn_hidden_size or 4 * args.hidden_size, 4 * args.hidden_size)
    for name, value in (("num_attention_heads", heads), ("ffn_hidden_size", ffn),
                        ("max_position_embeddings", args.seq_length)):
        if getattr(args, name) not in (None, value):
            changed.append(f"{name} {getattr(args, name)}->{value}")
        setattr(args, name, value)
    multiple = args.make_vocab_size_divisible_by
    args.padded_vocab_size = min(math.ceil(args.vocab_size / multiple) * multiple, CAPS["vocab_size"])
    args.global_batch_size = args.global_batch_size or args.micro_batch_size * world
    args.world_size = args.data_parallel_size = world
    args.tensor_model_parallel_size = args.pipeline_model_parallel_size = args.context_parallel_size = 1
    args.lr_decay_iters = args.lr_decay_iters or args.train_iters
    args.rank, args.swiglu, args.multi_latent_attention, args.num_experts = 0, False, False, None
    args.untie_embeddings_and_output_weights, args.params_dtype = True, torch.float32
    assert args.global_batch_size % (args.micro_batch_size * world) == 0, (
        f"global batch size ({args.global_batch_size}) is not divisible by micro batch size "
        f"({args.micro_batch_size}) times data parallel size ({world})")
    return changed


class GPT(nn.Module):
    """Token + learned position embeddings, pre-LayerNorm causal transformer layers (GELU MLP), a final LayerNorm
    and an untied output layer; weights drawn from N(0, 0.02) (Megatron's --init-method-std default)."""

    def __init__(self, a: argparse.Namespace) -> None:
        super().__init__()
        h, s = a.hidden_size, a.seq_length
        self.tok, self.pos = nn.Embedding(a.padded_vocab_size, h), nn.Embedding(s, h)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(h, a.num_attention_heads, a.ffn_hidden_size, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True) for _ in range(a.num_layers))
        self.ln, self.head = nn.LayerNorm(h), nn.Linear(h, a.padded_vocab_size, bias=False)
        self.mask: Tensor
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(s), persistent=False)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.normal_(p, std=0.02)

    def forward(self, tokens: Tensor, labels: Tensor) -> Tensor:
        x = self.tok(tokens) + self.pos(torch.arange(tokens.shape[1]))
        for layer in self.layers:
            x = layer(x, src_mask=self.mask, is_causal=True)
        return F.cross_entropy(self.head(self.ln(x)).flatten(0, 1), labels.flatten())


def sample(index: int, seq: int, seed: int, successor: list[int]) -> list[int]:
    """Synthetic sample ``index``: seq + 1 tokens walking ``successor``, a random token 1 time in 8."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + index)
    noise = (torch.rand(seq + 1, generator=g) < NOISE).tolist()
    jumps = torch.randint(ALPHABET, (seq + 1,), generator=g).tolist()
    out = [jumps[0]]
    for t in range(1, seq + 1):
        out.append(jumps[t] if noise[t] else successor[out[-1]])
    return out


def micro_batches(a: argparse.Namespace, consumed: int, rank: int, successor: list[int]) -> list[Batch]:
    """This rank's micro-batches (tokens, labels) of the global batch that starts at sample ``consumed``."""
    out = []
    for m in range(rank, a.global_batch_size // a.micro_batch_size, a.world_size):
        first = consumed + m * a.micro_batch_size
        data = torch.tensor([sample(first + i, a.seq_length, a.seed, successor) for i in range(a.micro_batch_size)])
        out.append((data[:, :-1], data[:, 1:]))
    return out


def lr_at(a: argparse.Namespace, steps: int) -> float:
    """Megatron's OptimizerParamScheduler.get_lr after ``steps`` iterations."""
    warm, decay = a.lr_warmup_iters, a.lr_decay_iters
    if warm > 0 and steps <= warm:
        return float(a.lr * steps / warm)
    if a.lr_decay_style == "constant":
        return float(a.lr)
    if steps > decay:
        return float(a.min_lr)
    ratio = (steps - warm) / max(1, decay - warm)
    coeff = 0.5 * (math.cos(math.pi * ratio) + 1.0) if a.lr_decay_style == "cosine" else 1.0 - ratio
    return float(a.min_lr + coeff * (a.lr - a.min_lr))


class AdamW:
    """torch.optim.AdamW's update (decoupled weight decay, bias-corrected moments); same numbers, no torch.optim."""

    def __init__(self, groups: list[tuple[list[Tensor], float]], betas: tuple[float, float], eps: float) -> None:
        self.params = [(p, decay) for params, decay in groups for p in params]
        self.betas, self.eps, self.steps = betas, eps, 0
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p, _ in self.params]

    @torch.no_grad()
    def step(self, lr: float) -> None:
        self.steps += 1
        (b1, b2), t = self.betas, self.steps
        for (p, decay), (m, v) in zip(self.params, self.moments):
            assert p.grad is not None
            p.mul_(1.0 - lr * decay)
            m.lerp_(p.grad, 1.0 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1.0 - b2)
            p.addcdiv_(m, (v.sqrt() / math.sqrt(1.0 - b2 ** t)).add_(self.eps), value=-lr / (1.0 - b1 ** t))

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.steps, "exp_avg": [m for m, _ in self.moments], "exp_avg_sq": [v for _, v in self.moments]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state["step"])
        for (m, v), saved_m, saved_v in zip(self.moments, state["exp_avg"], state["exp_avg_sq"]):
            m.copy_(saved_m)
            v.copy_(saved_v)


def train_step(model: GPT, opt: AdamW, batches: list[Batch], lr: float, clip: float) -> tuple[float, float]:
    """Accumulate this rank's micro-batches, all-reduce loss and gradients once (mean over the data-parallel ranks),
    clip, AdamW step (skipped when the gradient norm is not finite). Returns (lm loss, grad norm)."""
    params = [p for p, _ in opt.params]
    model.zero_grad(set_to_none=True)
    loss = torch.zeros(1)
    for tokens, labels in batches:
        micro = model(tokens, labels) / len(batches)
        micro.backward()
        loss += micro.detach()
    grads = [(torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1) for p in params]
    flat = torch.cat([loss, *grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for p, grad in zip(params, torch.split(flat[1:], [p.numel() for p in params])):
        p.grad = grad.view_as(p)
    norm = float(nn.utils.clip_grad_norm_(params, clip if clip > 0 else math.inf))
    if math.isfinite(norm):
        opt.step(lr)
    return float(flat[0]), norm


def print0(*parts: object) -> None:
    if dist.get_rank() == 0:
        print(*parts, flush=True)


def print_datetime(message: str) -> None:
    dist.barrier()
    print0(f"[{message}] datetime: {datetime.datetime.now():%Y-%m-%d %H:%M:%S.%f} ")


def save(a: argparse.Namespace, iteration: int, consumed: int, model: GPT, opt: AdamW) -> None:
    """Rank 0 writes the checkpoint, then (through a rename) the tracker file that points to it; every rank waits."""
    if dist.get_rank() == 0:
        print(f"saving checkpoint at iteration {iteration:7d} to {a.save} in torch format", flush=True)
        path = Path(a.save) / f"iter_{iteration:07d}" / "mp_rank_00" / "model_optim_rng.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"iteration": iteration, "consumed_train_samples": consumed, "checkpoint_version": 3.0,
                    "model": model.state_dict(), "optimizer": opt.state_dict()}, path)
        tracker = Path(a.save) / "latest_checkpointed_iteration.txt"
        tracker.with_suffix(".tmp").write_text(str(iteration))
        tracker.with_suffix(".tmp").replace(tracker)
        print(f"  successfully saved checkpoint from iteration {iteration:7d} to {a.save}", flush=True)
    dist.barrier()


def load(a: argparse.Namespace, model: GPT, opt: AdamW) -> tuple[int, int]:
    """(iteration, consumed samples) of the latest checkpoint in --load, loaded into model and optimizer."""
    tracker = Path(a.load or "") / "latest_checkpointed_iteration.txt"
    if not a.load or not tracker.is_file():
        if a.load:
            print0(f"WARNING: could not find the metadata file {tracker}\n"
                   "    will not load any checkpoints and will start from random")
        return 0, 0
    iteration = int(tracker.read_text().strip())
    print0(f" loading checkpoint from {a.load} at iteration {iteration}")
    state = torch.load(Path(a.load) / f"iter_{iteration:07d}" / "mp_rank_00" / "model_optim_rng.pt",
                       map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    dist.barrier()
    print0(f"  successfully loaded checkpoint from {a.load} [ t 1/1, p 1/1 ] at iteration {iteration}")
    return int(state["iteration"]), int(state["consumed_train_samples"])


JOB_MACHINE = {"capability": [9, 0], "memory_gb": 85.0, "name": "NVIDIA H100 80GB HBM3", "te_version": "2.20.2"}
"""What Megatron's check is told the job's GPUs and TE are: the launch is judged as on an H100 node."""


def megatron_verdict(argv: list[str], world: int) -> str | None:
    """Megatron's own parse_args + validate_args + TransformerConfig on ``argv`` as given (the toolkit's harness
    under the Python >= 3.12 environment): None when it accepts, else why it refuses or could not run."""
    from orchestrator.node import megatron_check  # the node entry puts the toolkit on PYTHONPATH

    python = megatron_check.megatron_python()
    if python is None:
        return "no Python >= 3.12 with megatron.training (scripts/megatron-env.sh)"
    machine = {**JOB_MACHINE, "gpus_per_node": int(os.environ.get("LOCAL_WORLD_SIZE", world))}
    results = megatron_check.run_jobs(python, [{"world_size": world, "machine": machine, "argv": argv}])
    if isinstance(results, str):
        return f"the check did not run ({python}): {results}"
    result = results[0]
    return None if result["ok"] else f"{result['error']} at `{result['failed_at']}`"


def setup(argv: list[str]) -> argparse.Namespace:
    """Megatron's own argument check (rank 0, before the rendezvous: a refusal exits 1 as Megatron would, and
    srun's --kill-on-bad-exit ends the others), the rendezvous and its check, the argument notices and dump;
    returns the arguments as used."""
    a, ignored = parse(argv)
    env = os.environ
    rank, world = int(env.setdefault("RANK", "0")), int(env.setdefault("WORLD_SIZE", "1"))
    if rank == 0:
        if (refused := megatron_verdict(argv, world)) is not None:
            print(f"cpu_gpt: Megatron's own argument check refuses the launch: {refused}", file=sys.stderr, flush=True)
            sys.exit(1)
        print(f"cpu_gpt: Megatron's own argument check accepts the arguments (world size {world})", flush=True)
    env.setdefault("MASTER_ADDR", "127.0.0.1")
    env.setdefault("MASTER_PORT", "29500")
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=120))
    check = torch.tensor([float(rank + 1)])
    dist.all_reduce(check)
    where: list[tuple[str, int]] = [("", 0)] * world
    dist.all_gather_object(where, (env.get("SLURMD_NODENAME") or socket.gethostname(), int(env.get("LOCAL_RANK", 0))))
    if int(check.item()) != world * (world + 1) // 2:
        raise RuntimeError(f"all-reduce of rank+1 gave {check.item()}, expected {world * (world + 1) // 2}")
    print0(f"cpu_gpt: rendezvous world_size={world} sum={int(check.item())} hosts={[h for h, _ in where]} "
           f"local_ranks={[r for _, r in where]} master={env['MASTER_ADDR']}:{env['MASTER_PORT']}")
    changed = apply_caps(a, world)
    print0(f"cpu_gpt: ignoring {len(ignored)} Megatron flags it does not implement: {' '.join(ignored) or '-'}")
    print0(f"cpu_gpt: CPU caps {CAPS}, ffn_hidden_size <= 4 x hidden_size; applied: {', '.join(changed) or 'none'}")
    print0("------------------------ arguments ------------------------")
    for line in sorted((f"  {k} {'.' * (48 - len(k))} {v}" for k, v in vars(a).items()), key=str.lower):
        print0(line)
    print0("-------------------- end of arguments ---------------------")
    vocab = min(a.vocab_size, a.padded_vocab_size)
    print0(f" > padded vocab (size: {vocab}) with {a.padded_vocab_size - vocab} dummy tokens "
           f"(new size: {a.padded_vocab_size})")
    return a


FAULT_KINDS = ("nccl-timeout", "hang", "oom", "exit")


def faults_planned(spec: str) -> dict[int, str]:
    """``CPU_GPT_FAULT=kind@iteration[,...]`` as {iteration: kind}; a bad item stops the run at once."""
    out = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        kind, _, at = item.partition("@")
        if kind not in FAULT_KINDS or not at.isdigit():
            raise SystemExit(f"cpu_gpt: CPU_GPT_FAULT item {item!r}: write kind@iteration, kind one of {FAULT_KINDS}")
        out[int(at)] = kind
    return out


def fault_marker(a: argparse.Namespace) -> Path | None:
    """Where fired faults are remembered (beside the checkpoints), so a resumed run does not fire them again."""
    return Path(a.save) / "cpu_gpt_faults_fired.txt" if a.save else None


def fire(kind: str, iteration: int, rank: int, world: int, marker: Path | None) -> None:
    """The fault, as the real failure shows it: an NCCL watchdog timeout on every rank (then abort), a hang of every
    rank, a CUDA out-of-memory error or a plain exit on one rank."""
    if rank == 0 and marker is not None:
        with open(marker, "a") as fh:
            fh.write(f"{kind}@{iteration}\n")
    dist.barrier()
    if kind == "nccl-timeout":
        stamp = datetime.datetime.now().strftime("%m%d %H:%M:%S.%f")
        print(f"[rank{rank}]:[E{stamp} ProcessGroupNCCL.cpp:632] [Rank {rank}] Watchdog caught collective operation "
              f"timeout: WorkNCCL(SeqNum={iteration * 3}, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, "
              f"Timeout(ms)=600000) ran for 600042 milliseconds before timing out.", file=sys.stderr, flush=True)
        os._exit(134)
    if kind == "hang":
        print0(f"cpu_gpt: hanging at iteration {iteration} (CPU_GPT_FAULT)")
        while True:
            time.sleep(1.0)
    if rank == min(1, world - 1):
        if kind == "oom":
            raise torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.10 GiB of which "
                "1.05 GiB is free. Of the allocated memory 74.2 GiB is allocated by PyTorch (CPU_GPT_FAULT)")
        print(f"cpu_gpt: exiting with status 3 at iteration {iteration} (CPU_GPT_FAULT)", flush=True)
        os._exit(3)


SIGNALLED = [False]
"""Megatron's --exit-signal-handler: set by the signal, read after each iteration (the ranks agree)."""


def handle_exit_signal(a: argparse.Namespace) -> None:
    if a.exit_signal_handler:
        signal.signal(getattr(signal, a.exit_signal), lambda *_: SIGNALLED.__setitem__(0, True))
    if path := os.environ.get("ORCHESTRATOR_STACKS"):  # the node entry's place for this rank's stacks
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        faulthandler.register(signal.SIGUSR2, file=open(path, "a"), all_threads=True)  # noqa: SIM115 (kept open)


def signal_received() -> bool:
    flag = torch.tensor([1.0 if SIGNALLED[0] else 0.0])
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def minutes_since_start() -> float:
    """Real minutes since the longest-running rank started (the ranks agree by all-reduce, so the figure printed is
    the one that decided)."""
    longest = torch.tensor([(time.time() - START) / 60.0], dtype=torch.float64)
    dist.all_reduce(longest, op=dist.ReduceOp.MAX)
    return float(longest.item())


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    a = setup(argv)
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(a.seed)
    successor = torch.randperm(ALPHABET, generator=torch.Generator().manual_seed(a.seed)).tolist()
    net = GPT(a)
    print0(f" > number of parameters on (tensor, pipeline) model parallel rank (0, 0): "
           f"{sum(p.numel() for p in net.parameters())}")
    opt = AdamW([([p for p in net.parameters() if p.dim() > 1], a.weight_decay),
                 ([p for p in net.parameters() if p.dim() <= 1], 0.0)], (a.adam_beta1, a.adam_beta2), a.adam_eps)
    iteration, consumed = load(a, net, opt)
    handle_exit_signal(a)
    planned = faults_planned(os.environ.get("CPU_GPT_FAULT", ""))
    marker = fault_marker(a)
    fired = set(marker.read_text().split()) if marker is not None and marker.is_file() else set()
    fail_at = int(os.environ.get("CPU_GPT_FAIL_AT_ITER", "0"))
    ms_per_iter = int(os.environ.get("CPU_GPT_MS_PER_ITER", "0"))
    sleep_s = int(os.environ.get("CPU_GPT_SLEEP_MS", "0")) / 1000.0
    if ms_per_iter:
        print0(f"cpu_gpt: simulated exit clock, {ms_per_iter} ms per iteration (CPU_GPT_MS_PER_ITER)")
    saved_at, loss_sum, nans, logged, tick = iteration, 0.0, 0, 0, time.time()
    first = iteration
    print_datetime("before the start of training step")
    while iteration < a.train_iters:
        if (kind := planned.get(iteration + 1)) and f"{kind}@{iteration + 1}" not in fired:
            fire(kind, iteration + 1, rank, world, marker)
        if iteration + 1 == fail_at and rank == min(1, world - 1):
            raise RuntimeError(f"cpu_gpt: failure injected at iteration {fail_at} (CPU_GPT_FAIL_AT_ITER)")
        batches = micro_batches(a, consumed, rank, successor)
        loss, norm = train_step(net, opt, batches, lr_at(a, iteration), a.clip_grad)
        iteration, consumed = iteration + 1, consumed + a.global_batch_size
        time.sleep(sleep_s)
        loss_sum, nans, logged = loss_sum + loss, nans + (not math.isfinite(norm)), logged + 1
        if iteration % a.log_interval == 0:
            if rank == world - 1:
                ms = (time.time() - tick) * 1000.0 / logged
                print(f" [{datetime.datetime.now()}] iteration {iteration:8d}/{a.train_iters:8d} |"
                      f" consumed samples: {consumed:12d} | elapsed time per iteration (ms): {ms:.1f} |"
                      f" learning rate: {lr_at(a, iteration):.6E} | global batch size: {a.global_batch_size:5d} |"
                      f" lm loss: {loss_sum / logged:.6E} | loss scale: 1.0 | grad norm: {norm:.3f} |"
                      f" number of skipped iterations: {0:3d} | number of nan iterations: {nans:3d} |", flush=True)
            loss_sum, nans, logged, tick = 0.0, 0, 0, time.time()
        if a.save and a.save_interval and iteration % a.save_interval == 0:
            save(a, iteration, consumed, net, opt)
            saved_at = iteration
        if a.exit_signal_handler and signal_received():
            if a.save and saved_at != iteration:
                save(a, iteration, consumed, net, opt)
            print_datetime("exiting program after receiving SIGTERM.")
            dist.destroy_process_group()
            return 0
        if a.exit_duration_in_mins:
            train_time = (iteration - first) * ms_per_iter / 60000.0 if ms_per_iter else minutes_since_start()
            if train_time > a.exit_duration_in_mins:
                if a.save and saved_at != iteration:
                    save(a, iteration, consumed, net, opt)
                print_datetime(f"exiting program after {train_time} minutes")
                dist.destroy_process_group()
                return 0
    print_datetime("after training is done")
    if a.save and saved_at != iteration:
        save(a, iteration, consumed, net, opt)
    dist.destroy_process_group()
    return 0


def run(argv: list[str]) -> int:
    """main, and on an error its traceback (through the excepthook torch.distributed installs, as Megatron's would
    print it), then exit 1 at once: an ordinary interpreter exit with gloo's threads alive may abort (exit 134,
    "terminate called without an active exception") and hide the failing rank's own exit code."""
    try:
        return main(argv)
    except Exception:  # noqa: BLE001 -- every error of a rank: shown, then a plain exit code
        sys.excepthook(*sys.exc_info())
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
