"""What a GGUF file's header says, read without llama.cpp and without loading weights.

A GGUF file starts with its metadata (key/value pairs) and the list of its tensors
(name, shape, type, offset); the weights follow. Summing the tensors' element counts
gives the model's parameter count, the number llama.cpp's ``llama_model_n_params``
reports once the model is loaded, here from a few megabytes of header (most of it the
vocabulary, which is skipped, not decoded). Only Python reads the file: a damaged one
raises :class:`~backends.local.errors.CorruptModelError`, it cannot crash the app.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import IO

from backends.errors import sentence
from backends.local.errors import CorruptModelError

MAGIC = b"GGUF"
MAX_DIMS = 8
"""ggml tensors have at most 4 dimensions; more means a damaged header."""
MAX_COUNT = 1 << 24
"""More tensors, metadata keys or array items than this means a damaged header."""

# Metadata value types (gguf.h): fixed sizes; 8 is a string, 9 an array.
_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING = 8
_ARRAY = 9


class _Reader:
    def __init__(self, handle: IO[bytes], path: Path) -> None:
        self._handle = handle
        self._path = path

    def bytes(self, count: int) -> bytes:
        data = self._handle.read(count)
        if len(data) != count:
            raise self.damaged("it ends inside its header")
        return data

    def u32(self) -> int:
        value: int = struct.unpack("<I", self.bytes(4))[0]
        return value

    def u64(self) -> int:
        value: int = struct.unpack("<Q", self.bytes(8))[0]
        return value

    def count(self, what: str) -> int:
        value = self.u64()
        if value > MAX_COUNT:
            raise self.damaged(f"it claims {value} {what}")
        return value

    def skip(self, count: int) -> None:
        self._handle.seek(count, 1)

    def skip_string(self) -> None:
        self.skip(self.u64())

    def skip_value(self, kind: int) -> None:
        if kind in _SIZES:
            self.skip(_SIZES[kind])
        elif kind == _STRING:
            self.skip_string()
        elif kind == _ARRAY:
            item = self.u32()
            length = self.count("array items")
            if item in _SIZES:
                self.skip(_SIZES[item] * length)
            else:
                for _ in range(length):
                    self.skip_value(item)
        else:
            raise self.damaged(f"it holds a metadata value of unknown type {kind}")

    def damaged(self, why: str) -> CorruptModelError:
        return CorruptModelError(
            reason=sentence(f"{self._path} is not a readable GGUF file: {why}")
        )


def parameter_count(path: Path) -> int:
    """The number of weights in the model (the elements of all its tensors)."""
    try:
        with path.open("rb") as handle:
            reader = _Reader(handle, path)
            if reader.bytes(4) != MAGIC:
                raise reader.damaged("it does not start with 'GGUF'")
            version = reader.u32()
            if version < 2:
                raise reader.damaged(f"GGUF version {version} is too old")
            tensors = reader.count("tensors")
            keys = reader.count("metadata keys")
            for _ in range(keys):
                reader.skip_string()
                reader.skip_value(reader.u32())
            total = 0
            for _ in range(tensors):
                reader.skip_string()
                dims = reader.u32()
                if dims > MAX_DIMS:
                    raise reader.damaged(f"a tensor claims {dims} dimensions")
                total += math.prod(reader.u64() for _ in range(dims))
                reader.skip(4 + 8)  # type, offset
            return total
    except OSError as exc:
        raise CorruptModelError(reason=f"{path} cannot be read: {exc.strerror or exc}.") from exc


def describe_count(count: int) -> str:
    """``268.1M`` / ``1.24B`` parameters, as model cards write them."""
    for unit, size in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if count >= size:
            value = count / size
            digits = 2 if value < 10 else 1
            return f"{value:.{digits}f}{unit}"
    return str(count)


__all__ = ["describe_count", "parameter_count"]
