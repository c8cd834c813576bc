"""musicnn's front end in torch (for training and feature extraction on GPU); matches `frontend` (numpy).

Same STFT (periodic Hann, centred, reflect padding), power 2, the numpy module's Slaney mel bank and
log10(10000 * mel + 1). Imports torch: never import this from the run time.
"""

from __future__ import annotations

import torch
from viml.engine.music.frontend import FRONT_END, FrontEndConfig, mel_filterbank


def log_mel_spectrogram(audio: torch.Tensor, config: FrontEndConfig = FRONT_END) -> torch.Tensor:
    """[..., samples] float audio at config.sample_rate -> [..., frames, n_mels] float32 log-mel."""
    window = torch.hann_window(config.n_fft, periodic=True, dtype=torch.float32, device=audio.device)
    spectrum = torch.stft(
        audio.float(),
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        window=window,
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    power = spectrum.abs().pow(config.power)  # [..., freq, frames]
    bank = torch.from_numpy(mel_filterbank(config).copy()).to(audio.device)
    mel = torch.matmul(bank, power).transpose(-1, -2)
    return torch.log10(config.log_scale * mel + 1.0)
