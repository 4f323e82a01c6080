"""``orchestrator data prepare`` (JSONL → a Megatron indexed dataset) and ``orchestrator data check`` (what one
holds)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..data import index, prepare as prepare_mod
from .output import fail


@click.group("data")
def data() -> None:
    """Make and check the indexed datasets Megatron reads."""


@data.command("prepare")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="INPUT.jsonl...")
@click.option("--tokenizer", required=True, metavar="MODEL_OR_DIR",
              help="a SentencePiece .model, or a directory with a Hugging Face tokenizer.json")
@click.option("--tokenizer-type", type=click.Choice(["HuggingFaceTokenizer", "SentencePieceTokenizer"]),
              default=None, help="when the path does not say (default: inferred)")
@click.option("--output-prefix", required=True, type=click.Path(path_type=Path), help="writes PREFIX.bin, PREFIX.idx")
@click.option("--workers", type=click.IntRange(1, 256), default=2, show_default=True)
@click.option("--json-key", default="text", show_default=True, help="the field of each line that holds the text")
def prepare(inputs: tuple[Path, ...], tokenizer: str, tokenizer_type: prepare_mod.TokenizerType | None,
            output_prefix: Path, workers: int, json_key: str) -> None:
    """Tokenize INPUT.jsonl files into one indexed dataset (megatron-core's IndexedDatasetBuilder)."""
    try:
        tok = prepare_mod.tokenizer_of(tokenizer, tokenizer_type)
        found = prepare_mod.prepare(list(inputs), tok, output_prefix, workers, key=json_key)
    except prepare_mod.PrepareError as exc:
        fail(str(exc))
    except ImportError as exc:
        fail(f"--tokenizer: {exc.name} is not installed (fix: pip install {exc.name})")
    click.echo(json.dumps(found, indent=1))


@data.command("check")
@click.argument("prefixes", nargs=-1, required=True, metavar="PREFIX...")
def check(prefixes: tuple[str, ...]) -> None:
    """Documents, tokens and dtype of each dataset (its .idx read, its .bin checked against it)."""
    for prefix in prefixes:
        try:
            found = index.read_index(Path(prefix))
        except index.DataError as exc:
            fail(f"data check: {exc} (fix: a Megatron indexed dataset, PREFIX.bin + PREFIX.idx)")
        click.echo(f"{prefix}: {found.documents} documents, {found.sequences} sequences, {found.tokens} tokens, "
                   f"{found.dtype} (ids up to {found.max_id})")
