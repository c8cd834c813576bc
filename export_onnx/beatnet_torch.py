"""BeatNet's beat/downbeat CRNN rebuilt in torch for ONNX export (conversion time only).

The same layers and parameter names as BeatNet 1.1.3's `model.BDA(272, 150, 2)`, so its state dicts load
with strict=True: per frame, Conv1d(1 -> 2, kernel 10) over the 272 feature values, ReLU, max-pool 2,
flatten (channel-major, 2 x 131), Linear(262 -> 150) without activation; then a 2-layer unidirectional
LSTM(150) over time and Linear(150 -> 3). BDA's own forward keeps the LSTM state in attributes and
leaves the softmax to the caller; here the state is an explicit input and output (zeros reproduce
BeatNet's whole-track run; a carried state continues a track exactly) and the graph ends with the
softmax over the 3 classes, returning BeatNet's columns [beat, downbeat] (class 2, "no beat", dropped).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_DIM = 272
HIDDEN = 150
LAYERS = 2
KERNEL = 10
# Parameter names of BDA, all of which the conversion requires (BeatNet loads with strict=False, which
# would silently keep random weights for a missing one).
STATE_KEYS = frozenset(
    {"conv1.weight", "conv1.bias", "linear0.weight", "linear0.bias", "linear.weight", "linear.bias"}
    | {
        f"lstm.{kind}_{part}_l{layer}"
        for kind in ("weight", "bias")
        for part in ("ih", "hh")
        for layer in (0, 1)
    }
)


class BeatNetCRNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, 2, KERNEL)
        pooled = (FEATURE_DIM - KERNEL + 1) // 2
        self.linear0 = nn.Linear(2 * pooled, HIDDEN)
        self.lstm = nn.LSTM(HIDDEN, HIDDEN, num_layers=LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, 3)

    def forward(
        self, features: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """features [B, T, 272], hidden/cell [2, B, 150] -> ([B, T, 2] beat/downbeat, hidden, cell)."""
        batch, time = features.shape[0], features.shape[1]
        x = features.reshape(-1, 1, FEATURE_DIM)
        x = F.max_pool1d(F.relu(self.conv1(x)), 2).flatten(1)
        x = self.linear0(x).reshape(batch, time, HIDDEN)
        x, (hidden, cell) = self.lstm(x, (hidden, cell))
        probabilities = torch.softmax(self.linear(x), dim=-1)
        return probabilities[..., :2], hidden, cell


def zero_state(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(LAYERS, batch, HIDDEN), torch.zeros(LAYERS, batch, HIDDEN)


def from_state_dict(state: dict[str, torch.Tensor]) -> BeatNetCRNN:
    """The CRNN with BeatNet's weights; refuses a state dict without exactly BDA's parameters."""
    missing, unexpected = STATE_KEYS - set(state), set(state) - STATE_KEYS
    if missing or unexpected:
        raise ValueError(
            f"not a BeatNet BDA state dict (missing {sorted(missing)}, unexpected {sorted(unexpected)})"
        )
    model = BeatNetCRNN()
    model.load_state_dict(state, strict=True)  # shapes are checked too
    return model.eval()
