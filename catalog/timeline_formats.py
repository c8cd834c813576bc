"""Writing a timeline in the format its file extension names, through the OpenTimelineIO adapters.

What each adapter needs, found by writing and opening the files with real consumers (see
docs/sections/timelines.md):
- FCP7 XML, FCPXML, AAF and EDL go to editors whose sequences run at SMPTE timecode rates: a clip at
  another rate (12 fps) is placed on the smallest multiple that is one (24), frame-exact.
- FCPXML's adapter only knows a few frame durations, keyed by rounded rates: the exact ones are added.
- AAF's writer needs a mob ID per clip: new ones are made (`use_empty_mob_ids`).
- Only the EDL adapter honours a disabled track; the others get the mute written into their own
  markup (FCP7 `<enabled>`, FCPXML `enabled="0"`, MLT `hide`, GES volume `mute`). AAF and EDL cannot
  hold a muted track: asking for one is refused.
- The cmx3600 adapter writes only the first track: the EDL is assembled from its events instead, the
  music as an audio-only event on channels AA.
Every file is written next to its target under a temporary name and moved in place, so a failed write
leaves nothing; every failure is one UserFacingError line.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from urllib.parse import unquote, urlparse

from viml.core.errors import UserFacingError

# The xges adapter's video restriction caps, e.g. `framerate\=\(fraction\)30/1` (GstStructure escapes).
_XGES_FRAMERATE = re.compile(r"(framerate\\=\\\(fraction\\\))\d+/\d+")
_SMPTE_RATES = (
    Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30),
    Fraction(48), Fraction(50), Fraction(60000, 1001), Fraction(60),
)  # fmt: skip


@dataclass(frozen=True)
class TimelineFormat:
    suffix: str
    label: str  # what the user reads, with the editors that open it
    adapter: str  # the OTIO adapter's name
    package: str  # the pip package that provides it ("" when built into opentimelineio)
    timecode_rate: bool  # the sequence must run at an SMPTE timecode rate
    mutes: bool  # can hold muted (disabled) alternative tracks


FORMATS = {
    f.suffix: f
    for f in (
        TimelineFormat(".otio", "OpenTimelineIO", "otio_json", "", False, True),
        TimelineFormat(".xml", "FCP7 XML (Premiere Pro, DaVinci Resolve)", "fcp_xml", "otio-fcp-adapter", True, True),
        TimelineFormat(".fcpxml", "FCPXML (Final Cut Pro, DaVinci Resolve)", "fcpx_xml", "otio-fcpx-xml-adapter", True, True),
        TimelineFormat(".kdenlive", "Kdenlive project (Kdenlive, melt)", "kdenlive", "otio-kdenlive-adapter", False, True),
        TimelineFormat(".xges", "GES project (Pitivi, ges-launch-1.0)", "xges", "otio-xges-adapter", False, True),
        TimelineFormat(".aaf", "AAF (Avid Media Composer, Pro Tools)", "AAF", "otio-aaf-adapter", True, False),
        TimelineFormat(".edl", "CMX 3600 EDL", "cmx_3600", "otio-cmx3600-adapter", True, False),
    )
}  # fmt: skip


def format_for(path: str | os.PathLike) -> TimelineFormat:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        known = " ".join(FORMATS)
        raise UserFacingError(
            f"{path}: unknown timeline format {suffix or '(no extension)'!r}; use one of {known}"
        )
    return FORMATS[suffix]


def edit_rate(rate: Fraction) -> Fraction | None:
    """The smallest SMPTE timecode rate that is a whole multiple of `rate` (so frames stay exact), or None."""
    for candidate in _SMPTE_RATES:
        if (candidate / rate).denominator == 1:
            return candidate
    return None


def write(timeline, path: str | os.PathLike) -> TimelineFormat:
    """Write `timeline` to `path` in the format its extension names; returns that format."""
    fmt = format_for(path)
    target = Path(path)
    if not target.parent.is_dir():
        raise UserFacingError(f"{target}: the folder {target.parent} does not exist")
    _require_adapter(fmt)
    prepared = _prepared(timeline, fmt)
    temporary = _temporary_beside(target, fmt.suffix)
    try:
        # The Kdenlive adapter prints a notice on stdout, which is the CLI's output channel.
        with contextlib.redirect_stdout(io.StringIO()):
            _WRITERS.get(fmt.suffix, _write_text)(prepared, temporary, fmt)
        os.replace(temporary, target)
    except UserFacingError:
        raise
    except Exception as error:  # adapters raise anything from ValueError to their own types
        raise UserFacingError(f"cannot write {target} as {fmt.label}: {_one_line(error)}") from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return fmt


def _temporary_beside(target: Path, suffix: str) -> str:
    """A new empty file in the target's folder (so os.replace is atomic), with the usual permissions."""
    for _ in range(100):
        name = target.parent / f".{target.name}.{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        except OSError as error:
            raise UserFacingError(f"cannot write {target}: {error.strerror or error}") from error
        return str(name)
    raise UserFacingError(f"cannot write {target}: no free temporary name in {target.parent}")


def _require_adapter(fmt: TimelineFormat) -> None:
    import opentimelineio as otio

    try:
        otio.adapters.from_name(fmt.adapter)
    except Exception as error:  # NotSupportedError when the plugin is not installed
        raise UserFacingError(
            f"writing {fmt.suffix} needs the {fmt.package} package: pip install {fmt.package}"
        ) from error


def _prepared(timeline, fmt: TimelineFormat):
    """A copy at a rate the format's editors take; refuses what the format cannot hold."""
    muted = [t.name for t in timeline.tracks if not t.enabled]
    if muted and not fmt.mutes:
        raise UserFacingError(
            f"{fmt.label} cannot hold muted alternative tracks ({', '.join(muted)}): "
            "use --alternatives none, or .otio/.xml/.fcpxml/.kdenlive/.xges"
        )
    copy = timeline.deepcopy()
    rate = timeline_rate(timeline)
    if fmt.timecode_rate and rate not in _SMPTE_RATES:
        target = edit_rate(rate)
        if target is None:
            raise UserFacingError(
                f"{fmt.label} needs a timecode frame rate (23.976, 24, 25, 29.97, 30, 50, 59.94, 60) and the "
                f"clip's {float(rate):g} fps has no whole multiple among them: use .otio, .kdenlive or .xges"
            )
        _rescale(copy, target)
    return copy


def timeline_rate(timeline) -> Fraction:
    """The exact rate `build_timeline` recorded, else the float rate of the first track."""
    recorded = timeline.metadata.get("viml", {}).get("rate")
    if recorded:
        return Fraction(int(recorded[0]), int(recorded[1]))
    rate = timeline.tracks[0].duration().rate if len(timeline.tracks) else 25.0
    return Fraction(rate).limit_denominator(1001)


def _rescale(timeline, rate: Fraction) -> None:
    """Every time in `timeline` counted at `rate` (a whole multiple of its rate: frames map exactly)."""
    import opentimelineio as otio

    fps = float(rate)

    def scaled(time_range):
        return otio.opentime.TimeRange(
            time_range.start_time.rescaled_to(fps), time_range.duration.rescaled_to(fps)
        )

    def markers(item) -> None:
        for marker in item.markers:
            marker.marked_range = scaled(marker.marked_range)

    timeline.global_start_time = (
        timeline.global_start_time or otio.opentime.RationalTime(0, fps)
    ).rescaled_to(fps)
    timeline.metadata["viml"] = {
        **timeline.metadata.get("viml", {}),
        "rate": [rate.numerator, rate.denominator],
    }
    markers(timeline.tracks)
    # Every item, not only clips: a gap or a transition left at the old rate is refused by the AAF writer.
    for item in timeline.tracks.find_children():
        if isinstance(item, otio.schema.Transition):
            item.in_offset = item.in_offset.rescaled_to(fps)
            item.out_offset = item.out_offset.rescaled_to(fps)
            continue
        if item.source_range is not None:
            item.source_range = scaled(item.source_range)
        reference = getattr(item, "media_reference", None)
        if reference is not None and reference.available_range is not None:
            reference.available_range = scaled(reference.available_range)
        markers(item)


def _write_text(timeline, temporary: str, fmt: TimelineFormat) -> None:
    import opentimelineio as otio

    text = otio.adapters.write_to_string(timeline, adapter_name=fmt.adapter)
    muted = {index for index, track in enumerate(timeline.tracks) if not track.enabled}
    if muted and fmt.suffix in _MUTERS:
        text = _MUTERS[fmt.suffix](text, timeline, muted)
    Path(temporary).write_text(text, encoding="utf-8")


def _write_otio(timeline, temporary: str, fmt: TimelineFormat) -> None:
    import opentimelineio as otio

    otio.adapters.write_to_file(timeline, temporary, adapter_name=fmt.adapter)


def _write_fcpxml(timeline, temporary: str, fmt: TimelineFormat) -> None:
    import opentimelineio as otio

    # The adapter looks frame durations up by int(rate) or float(rate) in a table of rounded rates
    # (23.98, 29.97): give it the exact one for this timeline's rate. (The plugin system loads the
    # adapter as its own module object, so the table is reached through it, not by import.)
    table = otio.adapters.from_name(fmt.adapter).module().FRAMERATE_FRAMEDURATION
    rate = timeline_rate(timeline)
    table.setdefault(float(rate), f"{rate.denominator}/{rate.numerator}s")
    _write_text(timeline, temporary, fmt)


def _write_aaf(timeline, temporary: str, fmt: TimelineFormat) -> None:
    import opentimelineio as otio

    # Our clips come from plain files, not from an Avid bin: the writer makes new mob IDs for them.
    otio.adapters.write_to_file(timeline, temporary, adapter_name=fmt.adapter, use_empty_mob_ids=True)


def _write_edl(timeline, temporary: str, fmt: TimelineFormat) -> None:
    """The picture as a video event, the chosen music as an audio-only event on channels AA (A1+A2)."""
    from otio_cmx3600_adapter import cmx_3600

    rate = float(timeline_rate(timeline))
    events = []
    for track in timeline.tracks:
        if not track.enabled:
            continue
        for clip in track.find_clips():
            events.append((track.kind, cmx_3600.Event(clip, timeline.tracks, track.kind, rate, "avid", 8)))
    if not events:
        raise UserFacingError("the timeline has no clip for an EDL event")
    lines = [f"TITLE: {timeline.name}", "FCM: NON-DROP FRAME", ""]
    for number, (kind, event) in enumerate(events, 1):
        event.edit_number = number
        text = event.to_edl_format()
        if kind == "Audio":
            # The adapter writes channel "A" (A1 only); stereo music belongs on A1 and A2.
            text = re.sub(r"^(\d{3}  \S+\s+)A    ", r"\1AA   ", text, count=1)
        lines.append(text)
    Path(temporary).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _mute_fcp_xml(text: str, timeline, muted: set[int]) -> str:
    """FCP7 XML: <enabled>FALSE</enabled> on the muted audio <track>s (in the timeline's audio order)."""
    root = ET.fromstring(text)
    audio = [i for i, t in enumerate(timeline.tracks) if t.kind == "Audio"]
    sequence = next(root.iter("sequence"))
    for index, element in zip(audio, sequence.findall("./media/audio/track"), strict=False):
        if index in muted:
            enabled = element.find("enabled")
            if enabled is None:
                enabled = ET.SubElement(element, "enabled")
            enabled.text = "FALSE"
    return _xml(root, "<!DOCTYPE xmeml>\n")


def _mute_fcpxml(text: str, timeline, muted: set[int]) -> str:
    """FCPXML: enabled="0" on the muted tracks' connected clips (the adapter puts audio track k on lane -k)."""
    root = ET.fromstring(text)
    audio = [i for i, t in enumerate(timeline.tracks) if t.kind == "Audio"]
    lanes = {str(-(k + 1)) for k, index in enumerate(audio) if index in muted}
    for element in root.iter():
        if element.tag in ("asset-clip", "clip") and element.get("lane") in lanes:
            element.set("enabled", "0")
    return _xml(root, "<!DOCTYPE fcpxml>\n")


def _write_kdenlive(timeline, temporary: str, fmt: TimelineFormat) -> None:
    """The adapter's project, bounded and with the mutes: its black background track has no end, so
    melt renders 10 minutes (15000 frames) whatever the clips; the project ends with the timeline."""
    import opentimelineio as otio

    root = ET.fromstring(otio.adapters.write_to_string(timeline, adapter_name=fmt.adapter))
    last = str(max(1, round(timeline.duration().to_frames())) - 1)
    for producer in root.findall("producer[@id='black_track']"):
        producer.set("in", "0")
        producer.set("out", last)
        ET.SubElement(producer, "property", name="length").text = str(int(last) + 1)
    for tractor in root.findall("tractor[@global_feed='1']"):
        tractor.set("in", "0")
        tractor.set("out", last)
    # A muted track is one whose playlists are hidden for both picture and sound (Kdenlive's own mute).
    muted_names = {track.name for track in timeline.tracks if not track.enabled}
    for tractor in root.findall("tractor"):
        if tractor.findtext("property[@name='kdenlive:track_name']") in muted_names:
            for track in tractor.findall("track"):
                track.set("hide", "both")
    Path(temporary).write_text(_xml(root), encoding="utf-8")


def _write_xges(timeline, temporary: str, fmt: TimelineFormat) -> None:
    import opentimelineio as otio

    root = ET.fromstring(otio.adapters.write_to_string(timeline, adapter_name=fmt.adapter))
    # The adapter fixes the video track at 30 fps; GES renders at the restriction's rate: the clip's own.
    rate = timeline_rate(timeline)
    for track in root.iter("track"):
        properties = track.get("properties", "")
        fixed = _XGES_FRAMERATE.sub(lambda m: f"{m[1]}{rate.numerator}/{rate.denominator}", properties)
        track.set("properties", fixed)
    _compensate_mp3(root, timeline)
    muted = {index for index, track in enumerate(timeline.tracks) if not track.enabled}
    if muted:
        _mute_xges(root, timeline, muted)
    Path(temporary).write_text(_xml(root), encoding="utf-8")


def _compensate_mp3(root, timeline) -> None:
    """GStreamer plays an MP3's encoder delay (LAME tag; ~23 ms at 48 kHz) instead of skipping it, so
    the music would start that much early: each MP3 clip's in point moves later by it (GES counts ns)."""
    delays = {}
    for clip in timeline.find_clips():
        url = getattr(clip.media_reference, "target_url", "") or ""
        if url.lower().endswith(".mp3") and url not in delays:
            delays[url] = mp3_decoder_delay(unquote(urlparse(url).path))
    for clip in root.iter("clip"):
        delay = delays.get(clip.get("asset-id", ""))
        if delay:
            clip.set("inpoint", str(int(clip.get("inpoint", "0")) + round(delay * 1e9)))


def mp3_decoder_delay(path: str | os.PathLike) -> float | None:
    """Seconds of encoder + decoder delay at the start of an MP3 with a LAME/Info tag, else None.

    Decoders that honour the tag (FFmpeg, hence Blender) skip these samples; GStreamer and MLT do not.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(64 * 1024)
    except OSError:
        return None
    offset = 0
    if head[:3] == b"ID3" and len(head) >= 10:  # ID3v2 tag: a 28-bit "syncsafe" size after 6 bytes
        offset = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
    if len(head) < offset + 4 or head[offset] != 0xFF or head[offset + 1] & 0xE0 != 0xE0:
        return None
    version = (head[offset + 1] >> 3) & 0x3  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    rate_index = (head[offset + 2] >> 2) & 0x3
    mono = (head[offset + 3] >> 6) == 3
    rates = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
    if version not in rates or rate_index == 3:
        return None
    side_info = (17 if mono else 32) if version == 3 else (9 if mono else 17)
    xing = offset + 4 + side_info
    if head[xing : xing + 4] not in (b"Xing", b"Info"):
        return None
    flags = int.from_bytes(head[xing + 4 : xing + 8], "big")
    lame = xing + 8 + 4 * bool(flags & 1) + 4 * bool(flags & 2) + 100 * bool(flags & 4) + 4 * bool(flags & 8)
    if head[lame : lame + 4] not in (b"LAME", b"Lavc", b"Lavf"):
        return None
    packed = int.from_bytes(head[lame + 21 : lame + 24], "big")
    encoder_delay = packed >> 12
    # MP3 decoders add 529 samples of their own (FFmpeg skips delay + 529; so does LAME's --decode).
    return (encoder_delay + 529) / rates[version][rate_index]


def _mute_xges(root, timeline, muted: set[int]) -> None:
    """GES: the volume element of the muted layers' clips set to mute (layer priority = reversed order)."""
    count = len(timeline.tracks)
    priorities = {str(count - 1 - i) for i in muted}
    for layer in root.iter("layer"):
        if layer.get("priority") in priorities:
            for clip in layer.iter("clip"):
                clip.set("children-properties", "properties, mute=(boolean)true, volume=(double)0;")


def _xml(root, doctype: str = "") -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + doctype + ET.tostring(root, encoding="unicode") + "\n"


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


_WRITERS: dict[str, Callable] = {
    ".otio": _write_otio, ".fcpxml": _write_fcpxml, ".kdenlive": _write_kdenlive, ".xges": _write_xges, ".aaf": _write_aaf, ".edl": _write_edl,
}  # fmt: skip
_MUTERS: dict[str, Callable] = {".xml": _mute_fcp_xml, ".fcpxml": _mute_fcpxml}
