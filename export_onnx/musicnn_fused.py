"""Both musicnn taggers (MTT + MSD) as one inference graph that shares the expensive front end.

Same mathematics as two `Musicnn` modules run one after the other, reordered so the run time does less:
- The input batch-norm is a scalar affine `A * x + B` applied before zero time-padding. A convolution of
  it equals `A * conv(pad(x))` plus a constant `K[c, t]` (the bias, and `B` times the kernel rows that
  fall on real frames), so both models' front-end convolutions read the same raw padded patch and run
  as one wider convolution per kernel shape (408 timbral / 102 temporal filters instead of 2 x 204 / 51).
- TF's order conv -> ReLU -> batch-norm -> max over frequency applies monotone per-channel maps before
  the max. With `s = sign(gamma)` and the filter multiplied by `s`, `max_f BN(ReLU(z)) =
  G * ReLU(s * max_f(s * z)) + B'`, so ReLU and batch-norm run on [B, C, T] after the max instead of on
  [B, C, T, F] (the max of a negated channel is its min, which is what a negative gamma selects).
The mid and back ends run per model unchanged. Differences to the two-model path are float rounding
(measured ~1e-6 on the taggram).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from viml.export_onnx.musicnn_torch import TEMPORAL_KERNELS, Musicnn, _same_padding


def _bn_affine(bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode batch-norm as scale, shift."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


class _FusedFrontConv(nn.Module):
    """One kernel shape of the front end for several models: conv, max over frequency, ReLU, BN."""

    def __init__(
        self, models: list[Musicnn], convs: list[nn.Conv2d], bns: list, pad: tuple[int, int], frames: int
    ) -> None:
        super().__init__()
        self.pad = pad
        weights, offsets, signs, scales, shifts = [], [], [], [], []
        for model, conv, bn in zip(models, convs, bns, strict=True):
            in_scale, in_shift = _bn_affine(model.input_bn)
            scale, shift = _bn_affine(bn)
            sign = torch.where(scale < 0, -1.0, 1.0)
            weight = conv.weight * sign[:, None, None, None]
            # Constant part of conv(pad(A x + B)) - A conv(pad(x)): B over the real (unpadded) rows + bias.
            real_rows = F.pad(torch.ones(1, 1, frames, conv.kernel_size[1]), (0, 0, *pad))
            offset = in_shift * F.conv2d(real_rows, weight)[0, :, :, 0] + (conv.bias * sign)[:, None]
            weights.append(weight * in_scale)
            offsets.append(offset)
            signs.append(sign)
            scales.append(scale)
            shifts.append(shift)
        self.register_buffer("weight", torch.cat(weights))
        self.register_buffer("offset", torch.cat(offsets)[None])  # [1, C, T]
        self.register_buffer("sign", torch.cat(signs)[None, :, None])
        self.register_buffer("scale", torch.cat(scales)[None, :, None])
        self.register_buffer("shift", torch.cat(shifts)[None, :, None])

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Raw log-mel [B, 1, T, F] -> [B, models * filters, T]."""
        peak = F.conv2d(F.pad(patches, (0, 0, *self.pad)), self.weight).amax(dim=3) + self.offset
        return F.relu(peak * self.sign) * self.scale + self.shift


class FusedMusicnn(nn.Module):
    """patches [B, 187, 96] -> (probabilities, penultimate) per model, in the order of `models`."""

    def __init__(self, models: list[Musicnn], frames: int = 187) -> None:
        super().__init__()
        self.count = len(models)
        kinds = [
            ([m.timbral[i] for m in models], [m.timbral_bn[i] for m in models], (3, 3))
            for i in range(len(models[0].timbral))
        ]
        kinds += [
            ([m.temporal[i] for m in models], [m.temporal_bn[i] for m in models], _same_padding(k))
            for i, k in enumerate(TEMPORAL_KERNELS)
        ]
        self.front = nn.ModuleList(_FusedFrontConv(models, c, b, pad, frames) for c, b, pad in kinds)
        self.models = nn.ModuleList(models)

    def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = patches.unsqueeze(1)
        per_kind = [front(x).chunk(self.count, dim=1) for front in self.front]
        outputs = []
        for index, model in enumerate(self.models):
            frontend = torch.cat([kind[index] for kind in per_kind], dim=1)  # [B, 561, T]
            outputs.extend(model.mid_and_back(frontend))
        return tuple(outputs)
