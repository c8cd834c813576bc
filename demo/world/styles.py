"""The musical styles of the demo world: General MIDI instrumentation and the words that describe them.

Each style is data (programs, drum kit, tempo range, tags) so that adding one is a table entry. The GM
programs are the ones the bundled TimGM6mb soundfont renders recognisably (see measured-facts.md: real
taggers hear piano, strings, distorted guitar + drums, synth + drums, acoustic guitar and flute).
`visual_family` ties a style only loosely to the picture (see `attributes.sample_attributes`), so the
exact instrumentation stays mostly invisible in the video and a text prompt adds information.
"""

from __future__ import annotations

from dataclasses import dataclass

# GM percussion keys (channel 10).
KICK, SNARE, CLAP, CLOSED_HAT, PEDAL_HAT, OPEN_HAT, CRASH, RIDE, TAMBOURINE, SIDE_STICK = (
    36,
    38,
    39,
    42,
    44,
    46,
    49,
    51,
    54,
    37,
)


@dataclass(frozen=True)
class Style:
    name: str
    lead: int | None  # GM program of the melody, None = no separate melody line
    harmony: int  # GM program of the chords
    bass: int | None  # GM program of the bass line, None = no bass instrument
    drum_kit: int | None  # GM drum kit (bank 128 preset), None = no drums
    tempo_range: tuple[float, float]  # BPM
    lead_octave: int  # MIDI octave of the melody's centre (4 = middle C)
    comping: str  # how the harmony instrument plays: block, arpeggio, strum, pad, power, offbeat
    bass_pattern: str  # root, eighths, walking, offbeat, root_fifth, drone
    drum_pattern: str  # rock, four_on_floor, swing, light, none
    visual_family: str  # organic | geometric: the shapes its video most often shows
    genre: str  # one genre word written into file tags
    tags: tuple[str, ...]  # ground-truth descriptive words (instrument and genre)


STYLES: dict[str, Style] = {
    style.name: style
    for style in (
        Style("piano", None, 0, None, None, (60, 100), 5, "arpeggio", "none", "none", "organic",
              "Classical", ("piano", "solo piano", "classical", "instrumental")),
        Style("strings", 48, 49, 42, None, (60, 96), 5, "pad", "root", "none", "organic",
              "Classical", ("strings", "violin", "cello", "orchestral", "classical")),
        Style("rock", 30, 30, 34, 16, (120, 160), 5, "power", "eighths", "rock", "geometric",
              "Rock", ("rock", "electric guitar", "distorted guitar", "guitar", "bass", "drums")),
        Style("electronic", 81, 89, 38, 25, (118, 136), 5, "pad", "offbeat", "four_on_floor", "geometric",
              "Electronic", ("electronic", "techno", "dance", "synth", "drums")),
        Style("folk", None, 25, 32, None, (84, 124), 5, "strum", "root_fifth", "light", "organic",
              "Folk", ("folk", "acoustic guitar", "acoustic", "guitar", "country")),
        Style("flute", 73, 46, None, None, (66, 104), 6, "arpeggio", "none", "none", "organic",
              "Classical", ("flute", "woodwind", "harp", "soft", "classical")),
        Style("jazz", None, 0, 32, 40, (92, 150), 5, "offbeat", "walking", "swing", "geometric",
              "Jazz", ("jazz", "piano", "double bass", "swing", "drums")),
        Style("ambient", 98, 94, None, None, (56, 84), 6, "pad", "drone", "none", "organic",
              "Ambient", ("ambient", "synth pad", "atmospheric", "new age", "calm")),
    )
}  # fmt: skip

STYLE_NAMES: tuple[str, ...] = tuple(STYLES)
