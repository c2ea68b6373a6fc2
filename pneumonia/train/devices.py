"""Where training runs and at what precision: mixed float16 on a GPU, bf16 on a CPU that has it, float32 elsewhere."""
from __future__ import annotations

import os
from pathlib import Path

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# CPU features that make bf16 matrix products fast (AVX-512 BF16, AMX); without
# them TensorFlow emulates bf16 and training gets slower, not faster.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def choose_precision(gpus: list, cpu_flags: set[str]) -> str:
    """mixed_float16 where TensorFlow sees a GPU (its tensor cores; Keras scales
    the loss), mixed_bfloat16 on a CPU with bf16 instructions, float32 elsewhere.
    Weights and the saved model stay float32 in every case."""
    if gpus:
        return "mixed_float16"
    return "mixed_bfloat16" if BF16_CPU_FLAGS & set(cpu_flags) else "float32"


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (Linux; empty where /proc/cpuinfo is not there)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    line = next((l for l in text.splitlines() if l.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def resolve(precision: str) -> str:
    """`precision` itself, or for "auto" the choice for this machine."""
    if precision != "auto":
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be auto or one of {', '.join(PRECISIONS)}, not {precision!r}")
        return precision
    import tensorflow as tf
    return choose_precision(tf.config.list_physical_devices("GPU"), cpu_flags())


# The frozen stages' output cached per view (float16) when fine-tuning from a stage (model.cache_layer_for).
CACHED_SHAPE = {"conv3": (56, 56, 256), "conv4": (28, 28, 512), "conv5": (14, 14, 1024)}
# From the largest recipe down: (fine-tune from, augmented views per training image).
RECIPES = (("conv4", 2), ("conv4", 1), ("conv5", 2), ("conv5", 1))


def cache_bytes(fine_tune_from: str, n_train: int, n_val: int, views: int, stress_copies: int) -> int:
    """Memory the cached activations take: each training image's clean and
    augmented views, each validation image and its stressed copies."""
    h, w, c = CACHED_SHAPE[fine_tune_from]
    return (n_train * (1 + views) + n_val * (1 + stress_copies)) * h * w * c * 2


def recipe_for_memory(available: int, n_train: int, n_val: int, stress_copies: int,
                      share: float = 0.6) -> tuple[str, int]:
    """The largest recipe whose cache fits in `share` of `available` bytes (the
    rest: images, views, TensorFlow); the smallest if none does."""
    for stage, views in RECIPES:
        if cache_bytes(stage, n_train, n_val, views, stress_copies) <= share * available:
            return stage, views
    return RECIPES[-1]


def available_memory() -> int:
    """Bytes of memory free now (Linux; 0 where unknown)."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0
