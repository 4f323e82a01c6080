"""``orchestrator data prepare``: JSONL text (``{"text": ...}`` per line) → a Megatron indexed dataset, written with
megatron-core's own ``IndexedDatasetBuilder`` (the format Megatron reads), tokenized in parallel workers.

The tokenizer is a Hugging Face ``tokenizer.json`` (a directory holding one, or the file; the ``tokenizers``
package) or a SentencePiece ``.model`` (the ``sentencepiece`` package): inferred from what the path is, or given.
The output is atomic: both files are written under temporary names and renamed index last, after any old index is
removed, so an interrupted run never leaves a ``.bin``/``.idx`` pair that looks valid.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

TokenizerType = Literal["HuggingFaceTokenizer", "SentencePieceTokenizer"]


class PrepareError(ValueError):
    """Bad input to ``data prepare``; the message names it and the fix."""


@dataclass(frozen=True)
class Tokenizer:
    """What the workers load: the tokenizer's file and kind."""

    path: str
    kind: TokenizerType


def tokenizer_of(path: str, kind: TokenizerType | None = None) -> Tokenizer:
    """The tokenizer at ``path``: a ``.model`` is SentencePiece, a directory with ``tokenizer.json`` (or that file)
    is Hugging Face; ``kind`` says so where the path does not."""
    given = Path(path)
    if given.is_dir() and (given / "tokenizer.json").is_file():
        return Tokenizer(str(given / "tokenizer.json"), kind or "HuggingFaceTokenizer")
    if given.is_file():
        inferred: TokenizerType = "SentencePieceTokenizer" if given.suffix == ".model" else "HuggingFaceTokenizer"
        return Tokenizer(str(given), kind or inferred)
    raise PrepareError(f"--tokenizer: {path} is neither a .model file nor a directory with tokenizer.json (fix: "
                       "give a local tokenizer; a hub name needs the network, download it first)")


_LOADED: Any = None


def _load(tok: Tokenizer) -> Any:
    global _LOADED
    if _LOADED is None:
        if tok.kind == "SentencePieceTokenizer":
            import sentencepiece  # type: ignore[import-not-found]

            _LOADED = sentencepiece.SentencePieceProcessor(model_file=tok.path)
        else:
            from tokenizers import Tokenizer as HF

            _LOADED = HF.from_file(tok.path)
    return _LOADED


def vocab_size(tok: Tokenizer) -> int:
    loaded = _load(tok)
    return int(loaded.get_piece_size() if tok.kind == "SentencePieceTokenizer" else loaded.get_vocab_size())


def _encode(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    loaded = _load(tok)
    if tok.kind == "SentencePieceTokenizer":
        return [list(loaded.encode(t)) for t in texts]
    return [e.ids for e in loaded.encode_batch(texts)]


def documents(paths: Sequence[Path], key: str = "text") -> Iterator[str]:
    """The ``key`` field of every JSON line of every input, in order; PrepareError naming file and line."""
    for path in paths:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    text = json.loads(line)[key]
                except (ValueError, KeyError, TypeError):
                    raise PrepareError(f"{path}:{number}: not a JSON object with a {key!r} string (fix: one "
                                       f'{{"{key}": "..."}} per line)') from None
                if not isinstance(text, str):
                    raise PrepareError(f"{path}:{number}: {key!r} is not a string")
                yield text


def _chunks(texts: Iterator[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for text in texts:
        chunk.append(text)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def prepare(inputs: Sequence[Path], tok: Tokenizer, prefix: Path, workers: int = 2, chunk: int = 256,
            progress: bool = True, key: str = "text") -> dict[str, Any]:
    """Tokenize ``inputs`` into ``prefix.bin``/``prefix.idx``; what was written."""
    import numpy
    import torch
    from megatron.core.datasets.indexed_dataset import DType, IndexedDatasetBuilder

    for path in inputs:
        if not path.is_file():
            raise PrepareError(f"{path}: no such file (fix: give JSONL files)")
    vocab = vocab_size(tok)
    dtype = DType.optimal_dtype(vocab)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    tmp = prefix.with_name(f".{prefix.name}.{os.getpid()}.partial")
    builder = IndexedDatasetBuilder(f"{tmp}.bin", dtype=dtype)
    count = tokens = top = 0
    try:
        with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
            for ids_of in pool.map(_encode, _repeat(tok), _chunks(documents(inputs, key), chunk)):
                for ids in ids_of:
                    builder.add_document(torch.tensor(ids, dtype=torch.int64), [len(ids)])
                    count, tokens, top = count + 1, tokens + len(ids), max([top, *ids])
                if progress:
                    print(f"data prepare: {count} documents, {tokens} tokens", file=sys.stderr, flush=True)
        builder.finalize(f"{tmp}.idx")
        Path(f"{prefix}.idx").unlink(missing_ok=True)       # no old index beside a new .bin, ever
        os.replace(f"{tmp}.bin", f"{prefix}.bin")
        os.replace(f"{tmp}.idx", f"{prefix}.idx")
    finally:
        for leftover in (Path(f"{tmp}.bin"), Path(f"{tmp}.idx")):
            leftover.unlink(missing_ok=True)
    return {"prefix": str(prefix), "documents": count, "tokens": tokens, "dtype": numpy.dtype(dtype).name,
            "vocab_size": vocab, "max_id": top, "tokenizer": tok.path, "tokenizer_type": tok.kind}


def _repeat(tok: Tokenizer) -> Iterator[Tokenizer]:
    while True:
        yield tok
