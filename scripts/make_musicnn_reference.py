"""Regenerate tests/data/musicnn_reference.npz: outputs of the ORIGINAL TensorFlow musicnn on rendered music.

    python scripts/make_musicnn_reference.py [--tf-python /root/.cache/viml/tf-venv/bin/python]

Renders the reference pieces (`demo.reference_audio`) in this venv, then runs
`scripts/musicnn_tf.py reference` in the TensorFlow venv on exactly those samples. The regression test
`tests/test_music_parity.py` compares the converted ONNX models against the stored values.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from viml.demo.reference_audio import PIECES, render_piece
from viml.export_onnx.musicnn import find_musicnn

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TF_PYTHON = Path.home() / ".cache" / "viml" / "tf-venv" / "bin" / "python"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tf-python", type=Path, default=DEFAULT_TF_PYTHON)
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "musicnn_reference.npz")
    args = parser.parse_args()
    wheel = find_musicnn().path
    with tempfile.TemporaryDirectory() as tmp:
        audio_path = Path(tmp) / "audio.npz"
        np.savez(audio_path, **{piece: render_piece(piece) for piece in PIECES})
        script = ROOT / "scripts" / "musicnn_tf.py"
        args.out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [str(args.tf_python), str(script), "reference", str(wheel), str(audio_path), str(args.out)],
            check=True,
        )
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
