"""The training data, checked where it will be read, before anything is submitted.

``training.data_path`` is Megatron's: one prefix, several prefixes, or a blend ``w1 p1 w2 p2 ...`` (read as
megatron-core's ``get_blend_from_list`` reads it). Each prefix names a Megatron indexed dataset, ``PREFIX.idx`` +
``PREFIX.bin``, looked up on this machine through the container's mounts (a ``/data/x`` the job sees under mount
``/lustre/ds:/data`` is ``/lustre/ds/x`` here). The ``.idx`` header is parsed (magic, version, dtype, sequence and
document counts, the sequence lengths) and the ``.bin`` size must be their tokens times the dtype's size; the dtype
must hold the model's vocabulary; then the run's token budget (GBS x sequence length x iterations) is set against
the data's tokens: how many epochs the run reads, and a warning when it repeats data.
"""

from __future__ import annotations

from pathlib import Path

from ..data.index import DataError, read_index
from ..spec.config import Experiment
from .problem import Problem

SETTING = "training.data_path"


def blend(data_path: list[str]) -> list[tuple[float | None, str]]:
    """(weight or None, prefix) as megatron-core reads ``--data-path``; DataError where its weights are half numbers
    (Megatron asserts then, after the allocation)."""
    if len(data_path) % 2 == 1:
        return [(None, p) for p in data_path]
    pairs = [(data_path[i], data_path[i + 1]) for i in range(0, len(data_path), 2)]
    weights = [_number(w) for w, _ in pairs]
    if all(w is None for w in weights):
        return [(None, p) for p in data_path]
    if any(w is None for w in weights):
        bad = next(w for (w, _), parsed in zip(pairs, weights) if parsed is None)
        raise DataError(f"the blend's weight {bad!r} is not a number (write 'w1 prefix1 w2 prefix2 ...')")
    return [(w, p) for w, (_, p) in zip(weights, pairs)]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def host_path(exp: Experiment, path: str) -> Path:
    """Where the job's ``path`` is on this machine: through the longest container mount that covers it. Megatron
    opens it as written (no shell expands it): a ``~`` is a DataError, not a home directory."""
    if path.startswith("~"):
        raise DataError(f"{path[:80]!r}: Megatron opens the path as written and does not expand ~ (write the "
                        "absolute path)")
    if not exp.profile.container.image:
        return Path(path)
    best: tuple[int, str] | None = None
    for mount in exp.profile.container.mounts:
        src, _, dst = mount.partition(":")
        dst = (dst.split(":")[0] or src).rstrip("/")
        if (path == dst or path.startswith(dst + "/")) and (best is None or len(dst) > best[0]):
            best = (len(dst), src.rstrip("/") + path[len(dst):])
    return Path(best[1] if best else path)


def problems(exp: Experiment) -> list[Problem]:
    """Every problem of the run's data, then one note: its tokens and how many epochs the run reads."""
    t, m = exp.recipe.training, exp.recipe.model
    if not t.data_path:
        return []
    try:
        datasets = [(w, p, read_index(host_path(exp, p))) for w, p in blend(t.data_path)]
    except DataError as err:
        return [Problem(SETTING, str(err), "point training.data_path (or DATA_PATH) at Megatron indexed datasets "
                        "(PREFIX.bin + PREFIX.idx; `orchestrator data prepare` makes them)")]
    out = [Problem(SETTING, f"{p}: {index.dtype} token ids hold at most {index.max_id}, the model's vocabulary is "
                   f"{m.vocab_size}", "prepare the data again with a wider dtype (int32)")
           for _, p, index in datasets if index.max_id < m.vocab_size - 1]
    budget = t.global_batch_size * m.seq_length * t.train_iters
    total_weight = sum(w or 0.0 for w, _, _ in datasets) or float(len(datasets))
    epochs = [(p, budget * ((w if w is not None else 1.0) / total_weight) / max(1, index.tokens))
              for w, p, index in datasets]
    tokens = sum(index.tokens for _, _, index in datasets)
    if repeated := [(p, e) for p, e in epochs if e > 1.0]:
        p, e = max(repeated, key=lambda pe: pe[1])
        out.append(Problem(SETTING, f"the run reads {budget:,} tokens: {p} ({e:.1f} epochs) is repeated",
                           "more data, fewer iterations, or accept the repetition", "warning"))
    most = max(e for _, e in epochs)
    out.append(Problem(SETTING, f"{len(datasets)} dataset(s), {tokens:,} tokens; the run reads {budget:,} "
                       f"({most:.3g} epochs of the most read)", "-", "note"))
    return out
