"""Reading Ogg Vorbis files whose header packets repeat inside the stream, which FFmpeg refuses.

Some tag editors write a fresh header set (identification, comment, setup) and leave the old one in
the same logical stream, on an ordinary page with no beginning-of-stream flag (e.g. three files of
Debian's hyperrogue-music: `hr-savino-ocean.ogg`). When the repeat directly follows the first set,
FFmpeg's Ogg demuxer is still collecting headers and fails ("Header processing failed: Invalid data");
repeats after the first audio packet are fine (its Vorbis decoder takes in-band headers). libvorbis
players and mutagen read such files.

`repaired_ogg` presents the file without those repeated packets, as a seekable file object for PyAV:
only the few header pages are rebuilt (in memory, with their CRCs); every other byte is read from
disk. A repeat whose identification or setup differs from the first would change how the audio is
decoded, so that case is refused with the reason rather than guessed.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, field

from viml.core.errors import MediaError

_CAPTURE = b"OggS"
_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, sequence, crc, segments
_CONTINUED, _FIRST = 0x01, 0x02
# Header pages come first; a file whose headers are not settled within this many pages is left alone.
_MAX_HEADER_PAGES = 64
_NO_GRANULE = -1  # "no packet ends on this page"


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_CRC_TABLE = _crc_table()


def ogg_crc(data: bytes) -> int:
    """The Ogg page checksum (CRC-32, polynomial 0x04C11DB7, not reflected, no final xor)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[(crc >> 24) ^ byte]
    return crc


@dataclass
class _Page:
    offset: int  # in the file
    size: int  # header + segment table + body
    flags: int
    granule: int
    serial: int
    sequence: int
    lacing: list[int]
    body: bytes
    dropped: set[int] = field(default_factory=set)  # indexes of lacing values to remove

    def rebuilt(self) -> bytes:
        """The page without its dropped segments, with a fresh checksum."""
        kept, body, position = [], bytearray(), 0
        for index, length in enumerate(self.lacing):
            if index not in self.dropped:
                kept.append(length)
                body += self.body[position : position + length]
            position += length
        # Whole packets are dropped: if the first segment went, so did the packet this page continued.
        flags = self.flags & ~_CONTINUED if 0 in self.dropped else self.flags
        # The granule belongs to the last packet that ends here; none may be left.
        granule = self.granule if any(length < 255 for length in kept) else _NO_GRANULE
        header = _HEADER.pack(_CAPTURE, 0, flags, granule, self.serial, self.sequence, 0, len(kept))
        page = bytearray(header + bytes(kept) + body)
        struct.pack_into("<I", page, 22, ogg_crc(page))
        return bytes(page)


def _read_page(file, offset: int) -> _Page | None:
    file.seek(offset)
    header = file.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    capture, _version, flags, granule, serial, sequence, _crc, count = _HEADER.unpack(header)
    if capture != _CAPTURE:
        return None
    lacing = list(file.read(count))
    body = file.read(sum(lacing))
    if len(lacing) < count or len(body) < sum(lacing):
        return None
    return _Page(offset, _HEADER.size + count + len(body), flags, granule, serial, sequence, lacing, body)


@dataclass
class _VorbisHeaders:
    seen: dict[int, bytes] = field(default_factory=dict)  # packet type (1, 3, 5) -> first packet
    done: bool = False  # the first audio packet has been seen
    parts: list[tuple[_Page, int]] = field(default_factory=list)  # (page, lacing index) of the packet
    data: bytearray = field(default_factory=bytearray)


def _repeated_header_pages(path: str | os.PathLike, file) -> list[_Page]:
    """Header pages holding repeated Vorbis header packets (marked in `dropped`); [] when none."""
    streams: dict[int, _VorbisHeaders] = {}
    pages: list[_Page] = []
    offset = 0
    for _ in range(_MAX_HEADER_PAGES):
        page = _read_page(file, offset)
        if page is None:
            break
        pages.append(page)
        offset += page.size
        if page.flags & _FIRST and page.body.startswith(b"\x01vorbis"):
            streams[page.serial] = _VorbisHeaders()
        state = streams.get(page.serial)
        if state is None or state.done:
            if streams and all(s.done for s in streams.values()):
                break
            continue
        position = 0
        for index, length in enumerate(page.lacing):
            state.parts.append((page, index))
            state.data += page.body[position : position + length]
            position += length
            if length == 255 or state.done:
                continue  # the packet goes on (or headers are settled: nothing more to inspect)
            _classify(path, state, bytes(state.data))
            state.parts, state.data = [], bytearray()
    return [page for page in pages if page.dropped]


def _classify(path, state: _VorbisHeaders, packet: bytes) -> None:
    kind = packet[0] if packet else 0
    if not kind & 1 or packet[1:7] != b"vorbis":
        state.done = True  # the first audio packet: FFmpeg stops collecting headers here
        return
    first = state.seen.get(kind)
    if first is None:
        state.seen[kind] = packet
        return
    if kind != 3 and packet != first:
        name = "identification" if kind == 1 else "setup"
        raise MediaError(
            path,
            f"Ogg Vorbis stream repeats its {name} header with different contents before any audio "
            "(a broken concatenation); FFmpeg cannot open it",
        )
    for page, index in state.parts:  # a repeat: drop every segment of it
        page.dropped.add(index)


class _SplicedFile(io.RawIOBase):
    """The file with some byte ranges replaced by other bytes: read from disk, never copied whole."""

    def __init__(self, path: str | os.PathLike, replacements: list[tuple[int, int, bytes]]) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        size = os.fstat(self._file.fileno()).st_size
        # Pieces in order: (virtual start, length, file offset or replacement bytes).
        self._pieces: list[tuple[int, int, int | bytes]] = []
        virtual = source = 0
        for start, length, data in sorted(replacements, key=lambda r: r[0]):
            if start > source:
                self._pieces.append((virtual, start - source, source))
                virtual += start - source
            self._pieces.append((virtual, len(data), data))
            virtual += len(data)
            source = start + length
        if size > source:
            self._pieces.append((virtual, size - source, source))
            virtual += size - source
        self._size = virtual
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        filled = 0
        for start, length, source in self._pieces:
            if filled == len(view) or self._position >= self._size:
                break
            if not start <= self._position < start + length:
                continue
            inside = self._position - start
            count = min(length - inside, len(view) - filled)
            if isinstance(source, bytes):
                chunk = source[inside : inside + count]
            else:
                self._file.seek(source + inside)
                chunk = self._file.read(count)
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
            self._position += len(chunk)
            if len(chunk) < count:
                break  # the file shrank under us
        return filled

    def close(self) -> None:
        self._file.close()
        super().close()


def repaired_ogg(path: str | os.PathLike) -> io.RawIOBase | None:
    """A file object of `path` without repeated Vorbis header packets, or None when the file is not
    Ogg or has none (then the repair cannot explain why FFmpeg failed). Raises MediaError when the
    repeats differ from the first headers."""
    with open(path, "rb") as file:
        if file.read(4) != _CAPTURE:
            return None
        pages = _repeated_header_pages(path, file)
    if not pages:
        return None
    return _SplicedFile(path, [(page.offset, page.size, page.rebuilt()) for page in pages])
