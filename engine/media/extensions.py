"""File-name extensions of music files: what `viml scan`, `viml tag` and the desktop treat as music."""

AUDIO_EXTENSIONS = frozenset(
    {
        ".mp3", ".wav", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".m4b", ".mp4", ".aac", ".aif", ".aiff",
        ".aifc", ".wma", ".wv", ".ape", ".mka", ".webm", ".mpc", ".alac",
    }
)  # fmt: skip
