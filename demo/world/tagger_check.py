"""Does a real tagger hear the demo world's styles? Runs the converted musicnn taggers on fresh renders.

    python -m viml.demo.world.tagger_check [--per-style 3] [--seconds 20]

For each style it renders a few pieces (different seeds: tempo, mode, key, energy vary), averages the
MTT and MSD tag probabilities over the piece and prints the top tags, plus whether any of the top
`--top` tags is one of the style's expected words. Needs the converted models (`viml convert-musicnn`).
"""

from __future__ import annotations

import argparse

import numpy as np
from viml.demo.world.render import render_piece_audio
from viml.demo.world.styles import STYLE_NAMES

# Words of the MTT / MSD vocabularies that a listener would accept for each style.
EXPECTED = {
    "piano": {"piano", "classical", "classic", "harpsichord"},
    "strings": {"strings", "violin", "cello", "classical", "classic", "string", "violins", "orchestra"},
    "rock": {"rock", "guitar", "hard rock", "metal", "punk", "heavy metal", "alternative", "indie"},
    "electronic": {"electronic", "techno", "synth", "dance", "electronica", "electro", "House", "trance"},
    "folk": {"guitar", "folk", "country", "acoustic", "acoustic guitar", "Country"},
    "flute": {"flute", "classical", "classic", "harp", "soft", "woodwind"},
    "jazz": {"jazz", "piano", "bass", "easy listening", "blues", "instrumental"},
    "ambient": {"ambient", "new age", "synth", "electronic", "slow", "chillout", "soft", "quiet", "chill"},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-style", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--top", type=int, default=5, help="top tags per vocabulary that count as heard")
    args = parser.parse_args(argv)

    from viml.engine.music.runtime import MusicModel

    model = MusicModel.load(device="cpu")
    heard_total = first_total = 0
    for style in STYLE_NAMES:
        heard = first = 0
        for seed in range(args.per_style):
            audio = render_piece_audio(style, args.seconds, seed=seed, sample_rate=16000)
            result = model.analyze(audio, 16000)
            top = []
            for vocabulary, probabilities in result.tag_probabilities.items():
                mean = probabilities.mean(axis=0)
                names = result.tag_names[vocabulary]
                top += [(vocabulary, names[i], float(mean[i])) for i in np.argsort(mean)[::-1][: args.top]]
            hit = any(name in EXPECTED[style] for _, name, _ in top)
            heard += hit
            first += top[0][1] in EXPECTED[style]  # the single most probable MTT tag
            words = ", ".join(f"{name} {p:.2f}" for _, name, p in top)
            print(f"{style:10s} seed {seed} {'ok  ' if hit else 'MISS'} {words}")
        heard_total += heard
        first_total += first
        print(
            f"{style:10s} heard in {heard}/{args.per_style}, as the top MTT tag in {first}/{args.per_style}"
        )
    total = args.per_style * len(STYLE_NAMES)
    print(
        f"all styles: an expected word in the top {args.top} tags in {heard_total}/{total} renders, ", end=""
    )
    print(f"as the top MTT tag in {first_total}/{total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
