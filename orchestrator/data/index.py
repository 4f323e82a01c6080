"""Megatron's indexed dataset (``PREFIX.idx`` + ``PREFIX.bin``) read without importing megatron-core: the header
(magic, version, dtype, sequence and document counts), the index's size against them, and the ``.bin``'s size
against where its last sequence ends (a few reads, whatever the corpus's size).
Standard library only (the submit side checks data on login nodes that have no torch)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = b"MMIDIDX\x00\x00"
"""The first bytes of a Megatron ``.idx`` (megatron.core.datasets.indexed_dataset._INDEX_HEADER)."""

DTYPES: dict[int, tuple[str, int, int]] = {
    1: ("uint8", 1, 2**8 - 1), 2: ("int8", 1, 2**7 - 1), 3: ("int16", 2, 2**15 - 1), 4: ("int32", 4, 2**31 - 1),
    5: ("int64", 8, 2**63 - 1), 6: ("float64", 8, 2**53), 7: ("float32", 4, 2**24), 8: ("uint16", 2, 2**16 - 1)}
"""megatron-core's DType codes: name, bytes per token, the largest token id it holds exactly."""


@dataclass(frozen=True)
class Index:
    """What a ``.idx`` says of its dataset."""

    dtype: str
    itemsize: int
    max_id: int
    sequences: int
    documents: int
    tokens: int


class DataError(ValueError):
    """A dataset that Megatron would fail on; the message names the file."""


HEADER = len(MAGIC) + 8 + 1 + 8 + 8
"""Magic, version (u64), dtype code (u8), sequence count (u64), document count (u64); then the sequence lengths
(i32 each), the sequences' byte offsets in the .bin (i64 each) and the document indices (i64 each)."""


def _last_sequence(fh: BinaryIO, sequences: int) -> tuple[int, int]:
    """The last sequence's byte offset in the .bin and its length in tokens, read from the index without reading
    every length (a corpus holds hundreds of millions); (0, 0) for an empty dataset."""
    if not sequences:
        return 0, 0
    fh.seek(HEADER + 4 * (sequences - 1))
    (length,) = struct.unpack("<i", fh.read(4))
    fh.seek(HEADER + 4 * sequences + 8 * (sequences - 1))
    (offset,) = struct.unpack("<q", fh.read(8))
    return offset, length


def read_index(prefix: Path) -> Index:
    """The ``.idx`` of ``prefix`` parsed, and the ``.bin`` checked against it."""
    if not prefix.name or "\0" in str(prefix):
        raise DataError(f"{str(prefix)[:80]!r} is not a dataset prefix")
    idx, bin_ = prefix.with_name(prefix.name + ".idx"), prefix.with_name(prefix.name + ".bin")
    for path in (idx, bin_):
        try:
            found = path.is_file()
        except OSError as err:
            raise DataError(f"{str(path)[:80]}: {err.strerror or err}") from None
        if not found:
            raise DataError(f"{path} does not exist")
    try:
        with idx.open("rb") as fh:
            head = fh.read(HEADER)
            if head[:len(MAGIC)] != MAGIC:
                raise DataError(f"{idx} is not a Megatron index (its first bytes are not {MAGIC!r})")
            version, code, sequences, documents = struct.unpack("<QBQQ", head[len(MAGIC):])
            if version != 1 or code not in DTYPES:
                raise DataError(f"{idx}: version {version}, dtype code {code}: not an index megatron-core reads")
            if idx.stat().st_size != HEADER + 12 * sequences + 8 * documents:
                raise DataError(f"{idx} is cut short: it announces {sequences} sequences and {documents - 1} "
                                "documents")
            offset, length = _last_sequence(fh, sequences)
        size = bin_.stat().st_size
    except PermissionError as err:
        raise DataError(f"{err.filename} cannot be read: permission denied") from None
    except OSError as err:   # a name too long, a directory named like the file, ...
        raise DataError(f"{str(prefix)[:80]}: {err.strerror or err}") from None
    name, itemsize, max_id = DTYPES[code]
    end = offset + length * itemsize
    if size != end:
        raise DataError(f"{bin_} holds {size} bytes; its index says {end // itemsize} {name} tokens ({end} bytes): "
                        "cut short or from another dataset")
    return Index(name, itemsize, max_id, sequences, documents - 1, end // itemsize)   # document_indices starts with a 0
