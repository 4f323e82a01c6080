"""CPU stand-in for Megatron-LM's ``pretrain_gpt.py``, for end-to-end tests of the launcher on this machine.

Megatron cannot train here (no GPU, megatron-core 0.16.1 has no megatron.training), so the e2e tests point
``profile.megatron_path`` at this directory. It keeps the parts of Megatron's contract the launcher relies on:

* joins torch.distributed (gloo) with the variables the node entry mapped, all-reduces rank+1 and prints
  ``stand-in: rendezvous world_size=N sum=S hosts=[...]`` on rank 0;
* runs ``--train-iters`` iterations (one all-reduce each) printing Megatron-format ``iteration N/ M |`` lines;
* resumes from ``--load``/``--save`` (``latest_checkpointed_iteration.txt``, as Megatron writes it);
* stops after ``--exit-duration-in-mins`` with a checkpoint and exit status 0, like Megatron;
* test knobs from the environment: ``STAND_IN_ITER_S`` (seconds per iteration, default 0.2),
  ``STAND_IN_FAIL_AT`` (iteration at which rank 1, or rank 0 of a single rank, raises RuntimeError),
  ``STAND_IN_MINUTE_S`` (seconds a "minute" of --exit-duration-in-mins lasts, default 60).

Every other Megatron argument is accepted and ignored.
"""

from __future__ import annotations

import argparse
import datetime
import os
import socket
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--train-iters", type=int, default=10)
    parser.add_argument("--global-batch-size", type=int, default=8)
    parser.add_argument("--save")
    parser.add_argument("--load")
    parser.add_argument("--save-interval", type=int)
    parser.add_argument("--exit-duration-in-mins", type=int)
    args, _unknown = parser.parse_known_args()
    return args


def start_iteration(load: str | None) -> int:
    marker = Path(load or "/nonexistent") / "latest_checkpointed_iteration.txt"
    return int(marker.read_text().strip()) if marker.is_file() else 0


def save(path: str | None, iteration: int, rank: int) -> None:
    if path and rank == 0:
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "latest_checkpointed_iteration.txt").write_text(f"{iteration}\n")
        print(f"  successfully saved checkpoint from iteration {iteration:7d} to {path}", flush=True)


def main() -> int:
    args = parse()
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=120))
    rank, world = dist.get_rank(), dist.get_world_size()
    value = torch.tensor([float(rank + 1)])
    dist.all_reduce(value)
    hosts: list[object] = [None] * world
    dist.all_gather_object(hosts, os.environ.get("SLURMD_NODENAME") or socket.gethostname())
    if rank == 0:
        print(f"stand-in: rendezvous world_size={world} sum={int(value.item())} hosts={hosts}", flush=True)
    iter_s = float(os.environ.get("STAND_IN_ITER_S", "0.2"))
    fail_at = int(os.environ.get("STAND_IN_FAIL_AT", "0"))
    minute_s = float(os.environ.get("STAND_IN_MINUTE_S", "60"))
    began = time.monotonic()
    iteration = start_iteration(args.load)
    if rank == 0 and iteration:
        print(f"stand-in: resuming from iteration {iteration}", flush=True)
    while iteration < args.train_iters:
        t0 = time.monotonic()
        time.sleep(iter_s)
        iteration += 1
        if fail_at and iteration == fail_at and rank == min(1, world - 1):
            raise RuntimeError(f"stand-in failure injected at iteration {iteration}")
        loss = torch.tensor([10.0 / iteration])
        dist.all_reduce(loss)
        if rank == 0:
            ms = (time.monotonic() - t0) * 1000
            print(f" [{datetime.datetime.now():%Y-%m-%d %H:%M:%S}] iteration {iteration:8d}/{args.train_iters:8d} |"
                  f" consumed samples: {iteration * args.global_batch_size:12d} |"
                  f" elapsed time per iteration (ms): {ms:.1f} | learning rate: 1.000000E-04 |"
                  f" global batch size: {args.global_batch_size:5d} | lm loss: {loss.item() / world:.6E} |"
                  f" loss scale: 1.0 | grad norm: 1.000 | number of skipped iterations:   0 |"
                  f" number of nan iterations:   0 |", flush=True)
        if args.save_interval and iteration % args.save_interval == 0:
            save(args.save, iteration, rank)
        if args.exit_duration_in_mins and time.monotonic() - began >= args.exit_duration_in_mins * minute_s:
            save(args.save, iteration, rank)
            if rank == 0:
                print(f"exiting program after {args.exit_duration_in_mins} minutes", flush=True)
            dist.barrier()
            dist.destroy_process_group()
            return 0
    save(args.save, iteration, rank)
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
