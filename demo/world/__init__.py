"""The embedded demo world: music tracks and videos generated from shared hidden attributes.

`render_piece_audio` renders one piece's music; `generate_world` / `load_world` write and read a whole
world (music/, video/, world.json). Needs the `train` extra (pretty_midi) and tinysoundfont.
"""
