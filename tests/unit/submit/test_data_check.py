"""The data checked before submit, on indexed datasets written by megatron-core's own IndexedDatasetBuilder (the
format Megatron reads): the header parsed, the .bin checked against it, the dtype against the vocabulary, the
run's token budget against the data."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.spec.config import load_experiment
from orchestrator.submit import data_check

np = pytest.importorskip("numpy")


def dataset(prefix: Path, documents: int, length: int, dtype: object = None) -> Path:
    """An indexed dataset of ``documents`` documents of ``length`` tokens, by megatron-core's builder."""
    import torch
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    prefix.parent.mkdir(parents=True, exist_ok=True)
    builder = IndexedDatasetBuilder(f"{prefix}.bin", dtype=dtype or np.int32)
    for i in range(documents):
        builder.add_document(torch.arange(i, i + length) % 1000, [length])
    builder.finalize(f"{prefix}.idx")
    return prefix


def check(tmp_path: Path, *overrides: str) -> list[str]:
    exp = load_experiment("local-slurm", "dsv3-proxy-3l", list(overrides))
    return [str(p) for p in data_check.problems(exp)]


def test_a_dataset_is_read_back_as_megatron_writes_it(tmp_path: Path) -> None:
    prefix = dataset(tmp_path / "a", documents=100, length=4096)
    index = data_check.read_index(prefix)
    assert (index.dtype, index.sequences, index.documents, index.tokens) == ("int32", 100, 100, 409_600)
    # GBS 8 x 4096 x 20 iterations = 655,360 tokens of 409,600: 1.6 epochs, a warning, then the note
    found = check(tmp_path, f"training.data_path=[{prefix}]")
    assert found[0].startswith(f"warning: training.data_path: the run reads 655,360 tokens: {prefix} (1.6 epochs)")
    assert found[1] == f"note: training.data_path: 1 dataset(s), 409,600 tokens; the run reads 655,360 (1.6 epochs " \
                       "of the most read)"
    assert check(tmp_path, f"training.data_path=[{prefix}]", "training.train_iters=10")[0].startswith("note:")


@pytest.mark.parametrize("spoil,message", [
    (lambda p: Path(f"{p}.idx").unlink(), "a.idx does not exist"),
    (lambda p: Path(f"{p}.bin").write_bytes(Path(f"{p}.bin").read_bytes()[:-8]), "a.bin holds"),
    (lambda p: Path(f"{p}.idx").write_bytes(b"not an index at all, sorry"), "is not a Megatron index"),
])
def test_a_broken_dataset_is_refused_in_one_line(tmp_path: Path, spoil: object, message: str) -> None:
    prefix = dataset(tmp_path / "a", documents=10, length=64)
    spoil(prefix)  # type: ignore[operator]
    [found] = check(tmp_path, f"training.data_path=[{prefix}]")
    assert found.startswith("error: training.data_path: ") and message in found, found
    assert "(fix: point training.data_path" in found


def test_a_dtype_too_small_for_the_vocabulary_is_refused(tmp_path: Path) -> None:
    prefix = dataset(tmp_path / "a", documents=10, length=64, dtype=np.uint16)
    found = check(tmp_path, f"training.data_path=[{prefix}]", "model.vocab_size=129280")
    assert found[0] == f"error: training.data_path: {prefix}: uint16 token ids hold at most 65535, the model's " \
                       "vocabulary is 129280 (fix: prepare the data again with a wider dtype (int32))"


def test_a_blend_through_the_containers_mounts(tmp_path: Path) -> None:
    dataset(tmp_path / "lustre" / "a", documents=100, length=4096)
    dataset(tmp_path / "lustre" / "b", documents=300, length=4096)
    mounts = f'profile.container.mounts=["{tmp_path}/lustre:/data"]'
    found = check(tmp_path, "profile.container.image=/i.sqsh", mounts, "training.data_path=[0.25, /data/a, 0.75, /data/b]",
                  "training.train_iters=10")
    assert found == ["note: training.data_path: 2 dataset(s), 1,638,400 tokens; the run reads 327,680 (0.2 epochs of "
                     "the most read)"]


def test_a_blend_whose_weights_do_not_parse_is_refused() -> None:
    with pytest.raises(data_check.DataError, match="weight 'x' is not a number"):
        data_check.blend(["0.5", "/d/a", "x", "/d/b"])
    assert data_check.blend(["/d/a", "/d/b"]) == [(None, "/d/a"), (None, "/d/b")]


def test_validate_says_it_and_submit_refuses_before_anything_is_written(tmp_path: Path) -> None:
    out = CliRunner().invoke(main, ["validate", "--profile", "local-slurm", "--no-megatron",
                                    "--set", f"training.data_path=[{tmp_path}/missing]"])
    assert out.exit_code == 2 and f"error: training.data_path: {tmp_path}/missing.idx does not exist" in out.stderr


def test_a_home_relative_path_is_refused_not_expanded(tmp_path: Path) -> None:
    """Megatron opens --data-path as written: '~/data/a' would not be found by the job even where it exists here
    (hypothesis found '~$(touch PWNED)' raising from Path.expanduser)."""
    for path in ("~/data/a", "~$(touch PWNED)"):
        [found] = check(tmp_path, f"training.data_path=['{path}']")
        assert found.startswith("error: training.data_path: ") and "does not expand ~" in found, found
