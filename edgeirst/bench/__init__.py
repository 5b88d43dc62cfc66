"""edgeirst.bench: compare models by params, GMACs, latency, memory, accuracy and power.

``run_bench(BenchConfig(...))`` -> ``BenchResult`` (rows + machine stamp); ``edgeirst bench``
is its command. Modules: ``timing`` (statistics and the interleaved schedule), ``models``
(what ``--models`` names and the files rows run), ``rows`` (one row per model x backend x
precision), ``measure`` (the run), ``report`` (JSON/CSV/markdown/terminal), ``plot``,
``pipeline`` (end to end through ``edgeirst run``), ``mtl`` (MTUNet's multi-task ratio),
``power`` (tegrastats), ``memory`` (peak RSS per row). torch is imported only where a row needs it.
"""

from edgeirst.bench.measure import BenchConfig, BenchResult, run_bench
from edgeirst.bench.rows import Row

__all__ = ["BenchConfig", "BenchResult", "Row", "run_bench"]
