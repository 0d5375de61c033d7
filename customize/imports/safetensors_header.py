"""Reading a ``.safetensors`` header without loading any tensor (and without torch).

The format is: 8 bytes little-endian header length N, N bytes of JSON mapping tensor names to
``{"dtype", "shape", "data_offsets"}`` (plus an optional ``__metadata__``), then the raw data.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

# Bytes per element for the dtypes safetensors defines.
DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
}  # fmt: skip
MAX_HEADER_BYTES = 100 * 1024 * 1024


class HeaderError(ValueError):
    pass


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    elements: int

    @property
    def nbytes(self) -> int:
        return self.elements * DTYPE_BYTES.get(self.dtype, 0)


@dataclass(frozen=True)
class SafetensorsHeader:
    tensors: tuple[TensorInfo, ...]
    metadata: dict[str, str]
    data_bytes: int  # the end offset of the last tensor: what the file must hold after the header


def read_header(path: Path) -> SafetensorsHeader:
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) != 8:
            raise HeaderError("file is shorter than a safetensors header")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise HeaderError(f"header length {length} does not fit in the file")
        try:
            header = json.loads(handle.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise HeaderError(f"header is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        raise HeaderError("header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    tensors = []
    end = 0
    for name, info in header.items():
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
            raise HeaderError(f"tensor {name!r} has no dtype/shape/data_offsets")
        tensors.append(
            TensorInfo(name, str(info["dtype"]), math.prod(int(d) for d in info["shape"]))
        )
        end = max(end, int(info["data_offsets"][1]))
    if 8 + length + end > size:
        raise HeaderError(
            f"header describes {end} bytes of tensors but the file holds {size - 8 - length}"
        )
    return SafetensorsHeader(tuple(tensors), dict(metadata), end)
