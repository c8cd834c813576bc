"""Read a TensorFlow tensor-bundle checkpoint (`.index` + `.data-00000-of-00001`) with numpy only.

The `.index` file is a LevelDB-style SSTable (uncompressed blocks) mapping each variable name to a
`BundleEntryProto` (dtype, shape, shard, byte offset, size); the `.data` shard holds the raw
little-endian tensor bytes. Parsing these two small formats by hand keeps TensorFlow out of the
conversion entirely while reading the weights bit-exactly.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER_SIZE = 5  # 1 byte compression type + 4 bytes CRC
# TensorFlow DataType enum values we can meet in these checkpoints.
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 10: np.bool_}


class CheckpointFormatError(ValueError):
    """The files are not a TensorFlow tensor bundle this reader understands."""


@dataclass(frozen=True)
class BundleEntry:
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int


def _varint(buffer: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(buffer):
            raise CheckpointFormatError("truncated varint")
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _proto_fields(buffer: bytes) -> list[tuple[int, int | bytes]]:
    """Decode one protobuf message into (field number, value) pairs; enough for BundleEntryProto."""
    fields: list[tuple[int, int | bytes]] = []
    position = 0
    while position < len(buffer):
        tag, position = _varint(buffer, position)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            value, position = _varint(buffer, position)
        elif wire_type == 2:
            length, position = _varint(buffer, position)
            value = buffer[position : position + length]
            position += length
        elif wire_type == 5:
            value = struct.unpack_from("<I", buffer, position)[0]
            position += 4
        elif wire_type == 1:
            value = struct.unpack_from("<Q", buffer, position)[0]
            position += 8
        else:
            raise CheckpointFormatError(f"unsupported protobuf wire type {wire_type}")
        fields.append((number, value))
    return fields


def _parse_entry(buffer: bytes) -> BundleEntry:
    dtype = shard_id = offset = size = 0
    shape: list[int] = []
    for number, value in _proto_fields(buffer):
        if number == 1:
            dtype = int(value)
        elif number == 2:  # TensorShapeProto: repeated Dim (field 2) with size in field 1
            for dim_number, dim in _proto_fields(bytes(value)):
                if dim_number == 2:
                    shape += [int(v) for n, v in _proto_fields(bytes(dim)) if n == 1] or [0]
        elif number == 3:
            shard_id = int(value)
        elif number == 4:
            offset = int(value)
        elif number == 5:
            size = int(value)
        elif number == 7:
            raise CheckpointFormatError("sliced (partitioned) variables are not supported")
    return BundleEntry(dtype, tuple(shape), shard_id, offset, size)


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """Entries of one SSTable block; keys are prefix-compressed against the previous key."""
    (restart_count,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * restart_count
    entries: list[tuple[bytes, bytes]] = []
    key = b""
    position = 0
    while position < end:
        shared, position = _varint(block, position)
        non_shared, position = _varint(block, position)
        value_length, position = _varint(block, position)
        key = key[:shared] + block[position : position + non_shared]
        position += non_shared
        entries.append((key, block[position : position + value_length]))
        position += value_length
    return entries


def _read_block(table: bytes, offset: int, size: int) -> bytes:
    if offset + size + _BLOCK_TRAILER_SIZE > len(table):
        raise CheckpointFormatError("block handle points past the end of the index")
    if table[offset + size] != 0:
        raise CheckpointFormatError("compressed index blocks are not supported")
    return table[offset : offset + size]


def read_index(index_bytes: bytes) -> dict[str, BundleEntry]:
    """Map variable name -> BundleEntry from the bytes of a `.index` file."""
    if len(index_bytes) < _FOOTER_SIZE:
        raise CheckpointFormatError("index file too short")
    footer = index_bytes[-_FOOTER_SIZE:]
    if struct.unpack_from("<Q", footer, _FOOTER_SIZE - 8)[0] != _TABLE_MAGIC:
        raise CheckpointFormatError("not an SSTable (bad magic number)")
    _, position = _varint(footer, 0)  # metaindex handle offset (unused)
    _, position = _varint(footer, position)
    index_offset, position = _varint(footer, position)
    index_size, _ = _varint(footer, position)
    entries: dict[str, BundleEntry] = {}
    for _, handle in _block_entries(_read_block(index_bytes, index_offset, index_size)):
        block_offset, position = _varint(handle, 0)
        block_size, _ = _varint(handle, position)
        for key, value in _block_entries(_read_block(index_bytes, block_offset, block_size)):
            if key:  # the empty key holds the BundleHeaderProto
                entries[key.decode("utf-8")] = _parse_entry(value)
    return entries


def read_tensors(index_bytes: bytes, data_bytes: bytes) -> dict[str, np.ndarray]:
    """All tensors of a single-shard bundle, as numpy arrays (copies, little-endian)."""
    tensors: dict[str, np.ndarray] = {}
    for name, entry in read_index(index_bytes).items():
        if entry.shard_id != 0:
            raise CheckpointFormatError(f"{name}: multi-shard bundles are not supported")
        dtype = _DTYPES.get(entry.dtype)
        if dtype is None:
            raise CheckpointFormatError(f"{name}: unsupported dtype enum {entry.dtype}")
        raw = data_bytes[entry.offset : entry.offset + entry.size]
        if len(raw) != entry.size:
            raise CheckpointFormatError(f"{name}: data shard is truncated")
        array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).copy()
        tensors[name] = array.reshape(entry.shape)
    return tensors
