"""musicnn (Pons & Serra 2019) rebuilt in torch, loading the TensorFlow checkpoint weights.

Architecture of MTT_musicnn / MSD_musicnn, read top to bottom (TF names in brackets):
  log-mel patch [B, 187 frames, 96 mels] -> batch-norm over the single input channel
  front end: timbral convs 7x38 and 7x67 (204 filters) on the time-padded input, temporal convs
             128x1, 64x1, 32x1 (51 filters, TF 'same' padding); each conv -> ReLU -> batch-norm ->
             max over frequency; concatenated to 561 channels per frame
  mid end:   three 7-wide convs of 64 filters over time (as 1-D convs), ReLU -> batch-norm, with
             residual sums; dense concatenation -> 753 channels per frame
  back end:  max and mean over time, interleaved (TF flattens [753, 2]) -> 1506 -> batch-norm ->
             dense 200 + ReLU -> batch-norm ("penultimate") -> dense 50 -> sigmoid
TF layers apply ReLU *before* batch-norm, and `tf.layers.batch_normalization` uses epsilon 1e-3.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

BATCH_NORM_EPSILON = 1e-3
TIMBRAL_KERNELS = ((7, 38), (7, 67))
TEMPORAL_KERNELS = (128, 64, 32)


def _same_padding(kernel: int) -> tuple[int, int]:
    """TF 'same' padding for stride 1: the extra row of an even kernel goes after."""
    total = kernel - 1
    return total // 2, total - total // 2


class Musicnn(nn.Module):
    def __init__(
        self,
        n_mels: int = 96,
        num_classes: int = 50,
        timbral_filters: int = 204,
        temporal_filters: int = 51,
        midend_filters: int = 64,
        backend_units: int = 200,
    ) -> None:
        super().__init__()
        eps = BATCH_NORM_EPSILON
        self.input_bn = nn.BatchNorm2d(1, eps=eps)
        self.timbral = nn.ModuleList(nn.Conv2d(1, timbral_filters, k) for k in TIMBRAL_KERNELS)
        self.timbral_bn = nn.ModuleList(nn.BatchNorm2d(timbral_filters, eps=eps) for _ in TIMBRAL_KERNELS)
        self.temporal = nn.ModuleList(nn.Conv2d(1, temporal_filters, (k, 1)) for k in TEMPORAL_KERNELS)
        self.temporal_bn = nn.ModuleList(nn.BatchNorm2d(temporal_filters, eps=eps) for _ in TEMPORAL_KERNELS)
        frontend_channels = len(TIMBRAL_KERNELS) * timbral_filters + len(TEMPORAL_KERNELS) * temporal_filters
        self.midend = nn.ModuleList(
            nn.Conv1d(frontend_channels if i == 0 else midend_filters, midend_filters, 7) for i in range(3)
        )
        self.midend_bn = nn.ModuleList(nn.BatchNorm1d(midend_filters, eps=eps) for _ in range(3))
        pooled = 2 * (frontend_channels + 3 * midend_filters)
        self.pool_bn = nn.BatchNorm1d(pooled, eps=eps)
        self.dense = nn.Linear(pooled, backend_units)
        self.dense_bn = nn.BatchNorm1d(backend_units, eps=eps)
        self.classifier = nn.Linear(backend_units, num_classes)

    def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """patches [B, T, n_mels] log-mel -> (tag probabilities [B, 50], penultimate [B, 200])."""
        x = self.input_bn(patches.unsqueeze(1))  # [B, 1, T, F]
        features = []
        padded = F.pad(x, (0, 0, 3, 3))  # time padding only: frequency is pooled away afterwards
        for conv, bn in zip(self.timbral, self.timbral_bn, strict=True):
            features.append(bn(F.relu(conv(padded))).amax(dim=3))
        for conv, bn, kernel in zip(self.temporal, self.temporal_bn, TEMPORAL_KERNELS, strict=True):
            features.append(bn(F.relu(conv(F.pad(x, (0, 0, *_same_padding(kernel)))))).amax(dim=3))
        frontend = torch.cat(features, dim=1)  # [B, 561, T]
        return self.mid_and_back(frontend)

    def mid_and_back(self, frontend: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """From the concatenated front end [B, 561, T] to (tag probabilities, penultimate)."""
        midend = [frontend]
        current = frontend
        for i, (conv, bn) in enumerate(zip(self.midend, self.midend_bn, strict=True)):
            out = bn(F.relu(conv(F.pad(current, (3, 3)))))
            current = out if i == 0 else out + current
            midend.append(current)
        stacked = torch.cat(midend, dim=1)  # [B, 753, T]

        # TF concatenates [max, mean] on a trailing axis then flattens: features interleave.
        pooled = torch.stack([stacked.amax(dim=2), stacked.mean(dim=2)], dim=2).flatten(1)
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        return torch.sigmoid(self.classifier(penultimate)), penultimate


def _tf_batch_norm(module: nn.modules.batchnorm._BatchNorm, tensors: dict, name: str) -> None:
    module.weight.data = torch.from_numpy(tensors[f"{name}/gamma"])
    module.bias.data = torch.from_numpy(tensors[f"{name}/beta"])
    module.running_mean.data = torch.from_numpy(tensors[f"{name}/moving_mean"])
    module.running_var.data = torch.from_numpy(tensors[f"{name}/moving_variance"])


def _tf_conv(module: nn.Module, tensors: dict, name: str) -> None:
    kernel = tensors[f"{name}/kernel"]  # TF HWIO
    weight = np.transpose(kernel, (3, 2, 0, 1))  # torch OIHW
    if isinstance(module, nn.Conv1d):  # TF [7, C_in, 1, C_out] over (time, channels-as-width)
        weight = np.transpose(kernel[:, :, 0, :], (2, 1, 0))
    if tuple(weight.shape) != tuple(module.weight.shape):
        raise ValueError(
            f"{name}: checkpoint kernel {kernel.shape} does not fit {tuple(module.weight.shape)}"
        )
    module.weight.data = torch.from_numpy(np.ascontiguousarray(weight))
    module.bias.data = torch.from_numpy(tensors[f"{name}/bias"])


def from_tf_tensors(tensors: dict[str, np.ndarray]) -> Musicnn:
    """Build an eval-mode Musicnn from the variables of an MTT_/MSD_musicnn checkpoint.

    TF names layers by creation order (conv2d, conv2d_1, ...; batch_normalization, _1, ...), which
    follows musicnn's `models.build_musicnn`: the order below mirrors it.
    """
    classes = tensors["dense_1/bias"].shape[0]
    model = Musicnn(num_classes=classes)
    convs = list(model.timbral) + list(model.temporal) + list(model.midend)
    bns = [
        model.input_bn,
        *model.timbral_bn,
        *model.temporal_bn,
        *model.midend_bn,
        model.pool_bn,
        model.dense_bn,
    ]
    for i, conv in enumerate(convs):
        _tf_conv(conv, tensors, "conv2d" if i == 0 else f"conv2d_{i}")
    for i, bn in enumerate(bns):
        _tf_batch_norm(bn, tensors, "batch_normalization" if i == 0 else f"batch_normalization_{i}")
    for layer, name in ((model.dense, "dense"), (model.classifier, "dense_1")):
        layer.weight.data = torch.from_numpy(np.ascontiguousarray(tensors[f"{name}/kernel"].T))
        layer.bias.data = torch.from_numpy(tensors[f"{name}/bias"])
    return model.eval()
