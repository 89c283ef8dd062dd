"""The optimisation of one stage (loop), the optimisers (optim), how freed memory is kept while a run lasts
(allocator), and the compute precision chosen for this machine (precision).

Its modules' public names are re-exported here for users; the modules themselves import each other by
module (``painterly.engine.<module>``), never this file, so the re-exports make no import loop.
"""

from __future__ import annotations

from painterly.engine.allocator import active_runs, release_free_memory, reuse_freed_memory, user_tuned_malloc
from painterly.engine.loop import (
    BLOWUP_FACTOR,
    MAX_RESTARTS,
    Evaluator,
    NumericalError,
    RestartCallback,
    StageResult,
    StepCallback,
    StepInfo,
    optimize,
)
from painterly.engine.optim import (
    DEFAULT_LEARNING_RATES,
    OPTIMIZER_OPTIONS,
    OptimizerName,
    OptimizerSettings,
    auto_history_size,
    check_optimizer_options,
    learning_rate_at,
    make_optimizer,
    unused_optimizer_options,
)
from painterly.engine.precision import (
    PROBE_LAYERS,
    REQUIRED_SPEEDUP,
    PrecisionProbe,
    cached_cpu_probe,
    compute_dtype,
    cpu_description,
    cpu_has_native_bfloat16,
    cpu_model,
    flag_rule,
    measure_cpu_precisions,
    probe_cache_file,
    probe_cache_key,
    read_cached_probe,
    resolve_mixed_precision,
)

__all__ = [
    "BLOWUP_FACTOR",
    "DEFAULT_LEARNING_RATES",
    "MAX_RESTARTS",
    "OPTIMIZER_OPTIONS",
    "PROBE_LAYERS",
    "REQUIRED_SPEEDUP",
    "Evaluator",
    "NumericalError",
    "OptimizerName",
    "OptimizerSettings",
    "PrecisionProbe",
    "RestartCallback",
    "StageResult",
    "StepCallback",
    "StepInfo",
    "active_runs",
    "auto_history_size",
    "cached_cpu_probe",
    "check_optimizer_options",
    "compute_dtype",
    "cpu_description",
    "cpu_has_native_bfloat16",
    "cpu_model",
    "flag_rule",
    "learning_rate_at",
    "make_optimizer",
    "measure_cpu_precisions",
    "optimize",
    "probe_cache_file",
    "probe_cache_key",
    "read_cached_probe",
    "release_free_memory",
    "resolve_mixed_precision",
    "reuse_freed_memory",
    "unused_optimizer_options",
    "user_tuned_malloc",
]
