"""kill -9 while writing tags, at every progress point of the write, never loses audio or original tags.

A child process writes a genre and is SIGKILLed at a chosen point: each step of the backup, the n-th
write() mutagen makes into the file (mutagen moves the audio in 4 KiB steps here, so kills land while the
audio is half moved), after the change, after fsync, after verification, and in the middle of putting
the original bytes back after a failed write; a few kills come after random delays instead. The next
run (`recover`) must leave the audio byte-identical and the tags exactly the old or the new ones.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import av
import numpy as np
import pytest
from media_factory import _add_audio_stream, _encode_audio, write_audio
from viml.engine.music import filetags
from viml.engine.music.filetags import TagValues, read_file

CHILD = r"""
import os, signal, sys
import mutagen._util as util
from viml.engine.music import filetags
from viml.engine.music.filetags import inplace

path, genre, point, nth = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
for function in (util.insert_bytes, util.delete_bytes, util.resize_file, util.move_bytes):
    function.__defaults__ = (4096,)  # many small writes, so kills land inside mutagen's byte moves
count = 0

def counted(name):
    global count
    if name == point.removeprefix("fail:"):
        count += 1
        if count == nth:
            os.kill(os.getpid(), signal.SIGKILL)
    if point.startswith("fail:") and name == "synced":
        raise RuntimeError("a failed verification, on purpose")

class Killing:
    def __init__(self, handle):
        self._handle = handle

    def write(self, data):
        written = self._handle.write(data)
        self._handle.flush()
        counted("write")
        return written

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self._handle.close()

if point == "write":
    plain_open = open
    util.open = lambda name, mode="r", *a, **k: (
        Killing(plain_open(name, mode, *a, **k)) if "+" in mode else plain_open(name, mode, *a, **k))
else:
    inplace._reached = counted
try:
    filetags.write_tags(path, filetags.TagValues((genre,), ()))
except filetags.TagWriteError as error:
    sys.exit(f"tag write failed: {error}")
"""

POINTS = [
    ("none", 0),  # a write that completes: the new tags are in, the next kill must keep them
    *[("backup-copying", 1), ("backup-written", 1), ("backup-ready", 1), ("changed", 1)],
    *[("synced", 1), ("verified", 1), ("fail:restoring", 1), ("fail:restored", 1)],
    *[("write", n) for n in (1, 2, 3, 5, 8, 13, 21, 34)],
    ("none", 0),
    *[("delay", 0)] * 4,
]


def audio_payload(path):
    """The audio bytes, tags stripped: after the ID3v2 tag (MP3), the metadata blocks (FLAC), mdat (MP4)."""
    data = path.read_bytes()
    if path.suffix == ".mp3":
        assert data[:3] == b"ID3"
        size = (data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | data[9] & 0x7F
        body = data[10 + size + (10 if data[5] & 0x10 else 0) :]
        return body[:-128] if body[-128:-125] == b"TAG" else body
    if path.suffix == ".flac":
        assert data[:4] == b"fLaC"
        position = 4
        while True:
            header, length = data[position], int.from_bytes(data[position + 1 : position + 4], "big")
            position += 4 + length
            if header & 0x80:
                return data[position:]
    position = 0
    while position < len(data):
        size, kind = int.from_bytes(data[position : position + 4], "big"), data[position + 4 : position + 8]
        if kind == b"mdat":
            return data[position : position + size]
        position += size
    raise AssertionError("no mdat atom")


def broken(path, payload, genres, genre):
    """Audio moved or cut, or tags neither the old nor the new ones: what recovery has to repair."""
    try:
        info = read_file(path)
        return audio_payload(path) != payload or info.tags.genres not in (genres, (*genres, genre))
    except Exception:
        return True


@pytest.mark.parametrize("suffix", [".mp3", ".flac", ".m4a"])
def test_kill_9_at_every_point_of_a_tag_write_loses_nothing(tmp_path, suffix, capsys):
    rng = random.Random(19)
    noise = np.random.default_rng(19).uniform(-0.5, 0.5, (2, 44100 * 3)).astype(np.float32)
    path = tmp_path / f"song{suffix}"
    if suffix == ".m4a":  # moov before mdat, so growing the tags moves the audio
        with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
            _encode_audio(container, _add_audio_stream(container, "aac", 44100, 2), noise)
    else:
        write_audio(path, sample_rate=44100, signal=noise)
    filetags.write_tags(path, TagValues(("existing",), ("calm",)))
    link = tmp_path / f"hard{suffix}"
    os.link(path, link)
    payload, inode = audio_payload(path), path.stat().st_ino
    genres = read_file(path).tags.genres
    figures = {"runs": 0, "killed": 0, "completed": 0, "broken before recovery": 0, "undone": 0}
    for index, (point, nth) in enumerate(POINTS):
        genre = f"g{index:02d} " + "x" * 8000  # grows the tag past its padding: mutagen moves the audio
        command = [sys.executable, "-c", CHILD, str(path), genre, point, str(nth)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if point == "delay":
            time.sleep(rng.uniform(0.0, 0.25))
            process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=60)
        figures["runs"] += 1
        killed = process.returncode == -signal.SIGKILL
        if point != "delay" and not killed:  # a kill point past the end of this write: it completed
            assert point in ("write", "none") and process.returncode == 0, (
                point,
                nth,
                process.returncode,
                stderr,
            )
        figures["killed" if killed else "completed"] += 1
        figures["broken before recovery"] += broken(path, payload, genres, genre)
        lines = filetags.recover([path])  # the next run
        figures["undone"] += any("undid" in line for line in lines)
        after = read_file(path)
        assert audio_payload(path) == payload, (point, nth)
        assert after.tags.genres in (genres, (*genres, genre)), (point, nth)
        assert after.tags.moods == ("calm",)
        assert path.stat().st_ino == link.stat().st_ino == inode and path.read_bytes() == link.read_bytes()
        assert sorted(os.listdir(tmp_path)) == sorted([path.name, link.name]), (point, lines)
        genres = after.tags.genres
    with capsys.disabled():
        print(f"\n{suffix} kill loop: {figures}, data lost 0")
    assert figures["killed"] >= 12 and figures["broken before recovery"] >= 3
    assert figures["completed"] >= 2
