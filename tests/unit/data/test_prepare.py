"""``data prepare`` with a real tokenizer trained here (Hugging Face ``tokenizers``, BPE, from this repository's own
text), read back through megatron-core's ``IndexedDataset``; ``data check``; the prepared data through validate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main

ROOT = Path(__file__).parents[3]


@pytest.fixture
def tokenizer(tmp_path: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    texts = [p.read_text() for p in (ROOT / "README.md", ROOT / "SECURITY.md", ROOT / "docs" / "ARCHITECTURE.md")]
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=2000, special_tokens=["[UNK]"]))
    folder = tmp_path / "tok"
    folder.mkdir()
    tok.save(str(folder / "tokenizer.json"))
    return folder


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, list[str]]:
    lines = [line for line in (ROOT / "README.md").read_text().splitlines() if line.strip()][:300]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"text": line}) + "\n" for line in lines))
    return path, lines


def test_prepare_writes_what_megatron_reads(tmp_path: Path, tokenizer: Path, corpus: tuple[Path, list[str]]) -> None:
    from megatron.core.datasets.indexed_dataset import IndexedDataset
    from tokenizers import Tokenizer

    path, lines = corpus
    out = CliRunner().invoke(main, ["data", "prepare", str(path), "--tokenizer", str(tokenizer),
                                    "--output-prefix", str(tmp_path / "ds" / "readme"), "--workers", "2"])
    assert out.exit_code == 0, out.output
    found = json.loads(out.stdout)
    expected = [e.ids for e in Tokenizer.from_file(str(tokenizer / "tokenizer.json")).encode_batch(lines)]
    ds = IndexedDataset(str(tmp_path / "ds" / "readme"))
    assert len(ds) == len(lines) == found["documents"]
    assert [list(ds[i]) for i in range(len(ds))] == expected                     # token for token, in order
    assert found["tokens"] == sum(map(len, expected)) and found["dtype"] == "uint16"
    assert found["tokenizer_type"] == "HuggingFaceTokenizer" and found["max_id"] < found["vocab_size"] <= 2000
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["readme.bin", "readme.idx"]   # no leftovers
    check = CliRunner().invoke(main, ["data", "check", str(tmp_path / "ds" / "readme")])
    assert check.exit_code == 0 and f"{len(lines)} documents" in check.stdout and "uint16" in check.stdout
    validate = CliRunner().invoke(main, ["validate", "--profile", "local-slurm", "--no-megatron",
                                         "--set", f"training.data_path=[{tmp_path}/ds/readme]",
                                         "--set", "model.vocab_size=2000"])
    assert validate.exit_code == 0, validate.output
    assert f"note: training.data_path: 1 dataset(s), {found['tokens']:,} tokens" in validate.stderr


def test_bad_input_is_one_line_and_leaves_nothing(tmp_path: Path, tokenizer: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\nnot json\n')
    out = CliRunner().invoke(main, ["data", "prepare", str(bad), "--tokenizer", str(tokenizer),
                                    "--output-prefix", str(tmp_path / "ds" / "x")])
    assert out.exit_code == 2 and out.stderr.startswith(f"error: {bad}:2: not a JSON object"), out.output
    assert not list((tmp_path / "ds").glob("*x*"))                              # no pair that looks valid
    none = CliRunner().invoke(main, ["data", "prepare", str(bad), "--tokenizer", str(tmp_path / "nope"),
                                     "--output-prefix", str(tmp_path / "y")])
    assert none.exit_code == 2 and none.stderr.startswith("error: --tokenizer: ")
