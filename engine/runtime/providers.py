"""onnxruntime sessions on the best provider: CUDA when it really works, else CPU, said once in the log.

onnxruntime-gpu lists CUDAExecutionProvider in `get_available_providers()` even on a machine without a
GPU or without the CUDA/cuDNN libraries; creating a session then logs a library error and silently falls
back to CPU. So the provider actually used is read back from `session.get_providers()`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from viml.core.errors import UserFacingError

if TYPE_CHECKING:
    import onnxruntime

log = logging.getLogger(__name__)

PROVIDER_CHOICES = ("auto", "cuda", "cpu")
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"
_reported: set[str] = set()
# Set once a CUDA session fell back to CPU: later sessions skip the slow, failing CUDA library load.
_cuda_unusable = False


def requested_providers(choice: str = "auto") -> list[str]:
    """Provider list for onnxruntime from a user choice ("auto", "cuda", "cpu"); VIML_PROVIDER wins, and
    "auto" reads the settings file's `provider` first."""
    import onnxruntime

    if choice == "auto":  # the settings file's choice (the desktop's "Run models on"), then auto
        from viml.core.settings import get_setting

        choice = str(get_setting("provider", "auto"))
    choice = (os.environ.get("VIML_PROVIDER") or choice).lower()
    if choice not in PROVIDER_CHOICES:
        raise UserFacingError(f"unknown provider {choice!r}: choose one of {', '.join(PROVIDER_CHOICES)}")
    if choice == "cpu" or (choice == "auto" and _cuda_unusable):
        return [_CPU]
    available = onnxruntime.get_available_providers()
    if _CUDA not in available:
        if choice == "cuda":
            raise UserFacingError(
                "provider 'cuda' asked for, but this onnxruntime has no CUDA support: install "
                "onnxruntime-gpu (and only it: having both onnxruntime and onnxruntime-gpu breaks CUDA)"
            )
        return [_CPU]
    return [_CUDA, _CPU]


def session_options(threads: int | None = None) -> onnxruntime.SessionOptions:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # the CUDA fallback is reported by us, once, in plain words
    options.intra_op_num_threads = threads or 0  # 0: onnxruntime picks the physical core count
    options.inter_op_num_threads = 1
    return options


def create_session(
    path: Path, choice: str = "auto", threads: int | None = None
) -> onnxruntime.InferenceSession:
    """An InferenceSession for `path`; logs once per model kind which provider runs it and why."""
    import onnxruntime

    global _cuda_unusable
    providers = requested_providers(choice)
    # onnxruntime's own logger prints the failed CUDA library load (at ERROR) before any session option
    # applies; silence it (FATAL only) and report the fallback once, in plain words, below.
    onnxruntime.set_default_logger_severity(4)
    try:
        session = onnxruntime.InferenceSession(str(path), session_options(threads), providers=providers)
    except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph types
        raise UserFacingError(f"{path}: onnxruntime cannot load this model ({error})") from error
    finally:
        onnxruntime.set_default_logger_severity(2)
    used = session.get_providers()
    if _CUDA in providers and _CUDA not in used:
        _cuda_unusable = True
        if has_nvidia_gpu():
            message = (
                "an NVIDIA GPU is present but CUDA was not usable: the CUDA 12 / cuDNN 9 libraries that "
                "onnxruntime-gpu needs are missing from the library path; running on CPU"
            )
            level = logging.WARNING
        else:  # the normal case on a machine without a GPU: nothing to fix
            message, level = "no NVIDIA GPU found; running models on CPU", logging.INFO
        if choice == "cuda" and not os.environ.get("VIML_PROVIDER"):
            raise UserFacingError(
                message.replace("; running models on CPU", "").replace("; running on CPU", "")
            )
        _report(message, level)
    elif not _cuda_unusable:  # after a fallback, CPU sessions were already explained
        _report(f"running models on {used[0].replace('ExecutionProvider', '')}")
    return session


def has_nvidia_gpu() -> bool:
    """Whether the NVIDIA driver exposes a device (without loading any CUDA library)."""
    return any(Path("/dev").glob("nvidia[0-9]*")) or Path("/proc/driver/nvidia/gpus").is_dir()


def _report(message: str, level: int = logging.INFO) -> None:
    """Say each provider decision once per process."""
    if message not in _reported:
        _reported.add(message)
        log.log(level, message)
