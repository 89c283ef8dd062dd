"""Which precision the network computes in: bfloat16 where it is measured to be faster, float32 otherwise.

A CPU flag is not enough to decide.  Two CPUs that both report AVX-512 BF16 can differ: on one oneDNN's bfloat16
convolutions ran about twice as fast as float32, on another (an Intel Xeon without AMX exposed) 1.6 times *slower*
(docs/performance.md, "Mixed precision").  So on a CPU with native bfloat16 the automatic choice is decided by a
short probe, the same convolutions timed in both precisions, run once and cached per CPU model, torch version and
thread count.  An explicit choice always wins, and a run records the resolved choice (in its options, so in its
checkpoint and trace), so a resumed run computes as it began.

CUDA GPUs with bfloat16 keep the rule "bfloat16 where supported" unmeasured: no GPU was at hand to probe on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from painterly.io.atomic import atomic_write_bytes

__all__ = [
    "PROBE_LAYERS",
    "REQUIRED_SPEEDUP",
    "PrecisionProbe",
    "cached_cpu_probe",
    "compute_dtype",
    "cpu_description",
    "cpu_has_native_bfloat16",
    "cpu_model",
    "flag_rule",
    "measure_cpu_precisions",
    "probe_cache_file",
    "probe_cache_key",
    "read_cached_probe",
    "resolve_mixed_precision",
]

log = logging.getLogger("painterly")

#: bfloat16 is chosen automatically only if the probe finds it at least this many times faster than float32: the
#: probe is short and this machine's timings are noisy, so a near tie stays with float32 (exact, never slower).
REQUIRED_SPEEDUP = 1.1
#: Long side of the probe's image and the layers it computes: the paper's style and content layers, whose
#: convolutions are most of every evaluation.
PROBE_SIZE = 192
PROBE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")
#: Timed passes per precision (after one warm-up pass each); the fastest counts.
PROBE_ROUNDS = 2
CACHE_NAME = "precision-probe.json"


def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX); elsewhere bfloat16 is emulated (slower).

    Uses PyTorch's own CPU feature probes (private; absent in some versions, then False).
    """
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, probe, lambda: False)()) for probe in probes)


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (``lscpu``'s "Model name"), or the platform's guess."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    import platform

    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_description() -> str:
    """The CPU model with the flags that decide how fast bfloat16 is, e.g. "Intel(R) Xeon(R) Processor (avx512_bf16,
    amx_bf16, amx_tile)": the label every timing needs, since the same run differs several times between CPUs."""
    flags: set[str] = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.partition(":")[2].split())
                break
    native = [flag for flag in ("avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16") if flag in flags]
    return f"{cpu_model()} ({', '.join(native) if native else 'no avx512_bf16 or amx'})"


def probe_cache_key(threads: int | None = None) -> str:
    """What a probe's answer depends on: the CPU model, its native bfloat16 support, torch and the thread count."""
    threads = torch.get_num_threads() if threads is None else threads
    native = "native bf16" if cpu_has_native_bfloat16() else "no native bf16"
    return f"{cpu_model()} ({native}) | torch {torch.__version__} | {threads} threads"


@dataclass(frozen=True)
class PrecisionProbe:
    """Seconds of one forward and backward pass of the probe network in each precision."""

    float32_seconds: float
    bfloat16_seconds: float

    @property
    def speedup(self) -> float:
        """How many times faster bfloat16 was (below 1: slower)."""
        return self.float32_seconds / self.bfloat16_seconds if self.bfloat16_seconds > 0 else 0.0

    @property
    def bfloat16_wins(self) -> bool:
        return self.speedup >= REQUIRED_SPEEDUP


def _probe_pass() -> Callable[[torch.dtype | None], None]:
    """One forward and backward pass through VGG-19's convolutions (random weights: speed, not values, is measured)."""
    from painterly.nets.encoder import VGGEncoder
    from painterly.nets.vgg import VGG19_CONV_LAYERS, VGG19_LAYERS
    from painterly.nets.weights import VGGWeights

    widths = {info.name: info.channels for info in VGG19_LAYERS}
    generator = torch.Generator().manual_seed(0)
    state: dict[str, torch.Tensor] = {}
    in_channels = 3
    for name in VGG19_CONV_LAYERS:
        width = widths[name]
        scale = (2 / (9 * in_channels)) ** 0.5  # He initialisation: activations keep their magnitude
        state[f"{name}.weight"] = torch.randn(width, in_channels, 3, 3, generator=generator) * scale
        state[f"{name}.bias"] = torch.zeros(width)
        in_channels = width
    weights = VGGWeights(state=state, preprocessing="torchvision", source="probe")
    encoder = VGGEncoder(weights, PROBE_LAYERS, normalize=False)
    encoder = encoder.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # as run.py
    image = torch.rand(1, 3, PROBE_SIZE, PROBE_SIZE, generator=generator)

    def run(dtype: torch.dtype | None) -> None:
        encoder.compute_dtype = dtype
        start = image.clone().requires_grad_(True)
        features = encoder(start, in_compute_dtype=True)
        total = sum(feature.float().pow(2).mean() for feature in features.values())
        assert isinstance(total, torch.Tensor)
        total.backward()

    return run


def measure_cpu_precisions(
    run_pass: Callable[[torch.dtype | None], None] | None = None,
    *,
    timer: Callable[[], float] = time.perf_counter,
    rounds: int = PROBE_ROUNDS,
) -> PrecisionProbe:
    """Time ``run_pass`` in float32 (None) and bfloat16, alternating so drift hits both alike; the fastest counts.

    ``run_pass`` defaults to VGG-19's convolutions on a :data:`PROBE_SIZE` px image (about 2 s in all on a 2-core
    CPU); tests pass a stand-in and a fake ``timer``.
    """
    run_pass = _probe_pass() if run_pass is None else run_pass
    dtypes: tuple[torch.dtype | None, torch.dtype | None] = (None, torch.bfloat16)
    for dtype in dtypes:  # warm-up: oneDNN builds its kernels for each shape and dtype on first use
        run_pass(dtype)
    best = {dtype: float("inf") for dtype in dtypes}
    for _ in range(rounds):
        for dtype in dtypes:
            began = timer()
            run_pass(dtype)
            best[dtype] = min(best[dtype], timer() - began)
    return PrecisionProbe(float32_seconds=best[None], bfloat16_seconds=best[torch.bfloat16])


def _read_cache(path: Path) -> dict[str, dict[str, float]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def probe_cache_file() -> Path:
    """The cache: a small JSON file beside the weights (``PAINTERLY_CACHE_DIR``); delete it to measure again."""
    from painterly.nets.weights import cache_dir

    return cache_dir() / CACHE_NAME


def read_cached_probe(cache_file: Path | None = None) -> PrecisionProbe | None:
    """This CPU's cached probe (for its torch version and thread count), or None when it has not been measured."""
    entry = _read_cache(cache_file or probe_cache_file()).get(probe_cache_key())
    if isinstance(entry, dict):
        with contextlib.suppress(KeyError, TypeError, ValueError):
            return PrecisionProbe(float(entry["float32_seconds"]), float(entry["bfloat16_seconds"]))
    return None


def cached_cpu_probe(
    measure: Callable[[], PrecisionProbe] | None = None, *, cache_file: Path | None = None, refresh: bool = False
) -> PrecisionProbe:
    """The probe for this CPU, torch and thread count: from the cache (unless ``refresh``), else measured now and
    cached.  A cache that cannot be read or written only costs a new probe.
    """
    cache_file = cache_file or probe_cache_file()
    cached = None if refresh else read_cached_probe(cache_file)
    if cached is not None:
        return cached
    key = probe_cache_key()
    entries = _read_cache(cache_file)
    probe = (measure or measure_cpu_precisions)()
    log.info(
        f"precision probe on {key}: float32 {probe.float32_seconds:.3f} s, bfloat16 {probe.bfloat16_seconds:.3f} s"
    )
    entries[key] = asdict(probe)
    try:
        atomic_write_bytes(cache_file, (json.dumps(entries, indent=1) + "\n").encode())
    except OSError as error:
        log.warning(f"could not cache the precision probe in {cache_file}: {error}")
    return probe


def resolve_mixed_precision(
    device: torch.device, requested: bool | None, *, probe: Callable[[], PrecisionProbe] | None = None
) -> bool:
    """Whether a run on ``device`` computes its convolutions in bfloat16.

    An explicit ``requested`` wins (except on a GPU without bfloat16, which runs float32: float16 would underflow
    the small gradients of large images).  Unset: CUDA GPUs with bfloat16 use it; CPUs use it only where the
    hardware has it *and* the probe measured it faster by :data:`REQUIRED_SPEEDUP`; everything else is float32.
    """
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        if requested:
            log.warning("this GPU has no bfloat16 support; running in float32 (float16 would lose small gradients)")
        return False
    if requested is not None:
        return bool(requested)
    if device.type == "cuda":
        return True
    if device.type == "cpu" and cpu_has_native_bfloat16():
        return (probe or cached_cpu_probe)().bfloat16_wins
    return False


def flag_rule(device: torch.device) -> bool:
    """The automatic choice before the probe existed (CPU flags alone): what a checkpoint that left the choice unset
    was computed with, on the machine that wrote it."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return device.type == "cpu" and cpu_has_native_bfloat16()


def compute_dtype(mixed_precision: bool) -> torch.dtype | None:
    """The encoder's compute dtype for a resolved choice: bfloat16, or None (float32)."""
    return torch.bfloat16 if mixed_precision else None
