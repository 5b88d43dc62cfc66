"""edgeirst.bench units: statistics, the interleaved schedule, writers, machine stamp, plot
helpers, power matching, MTL ratios. Nothing here is a timed test: sleeps only make one row
measurably slower than another by a wide margin."""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import time

import numpy as np
import pytest

from edgeirst.bench.memory import PeakMemory, reset_peak_rss
from edgeirst.bench.mtl import MTL_SETS, attach_mtl, describe_mtl
from edgeirst.bench.plot import pareto_front, plot_available, plotted_accuracy, write_plot
from edgeirst.bench.report import CSV_FIELDS, check_outputs, format_table, to_csv, to_json, to_markdown, write_atomic
from edgeirst.bench.rows import Row
from edgeirst.bench.timing import chunk_sizes, latency_stats, run_interleaved, schedule
from edgeirst.errors import EdgeirstError
from edgeirst.machine import cpu_flags, cpu_model, describe, library_versions, machine_stamp


# -- statistics ------------------------------------------------------------------------------------
def test_latency_stats_on_known_data():
    st = latency_stats(range(1, 101))  # 1..100
    assert st["n"] == 100 and st["min"] == 1 and st["max"] == 100 and st["mean"] == 50.5
    assert st["median"] == pytest.approx(50.5)
    assert st["p90"] == pytest.approx(90.1)  # linear interpolation: 1 + 0.9 * 99
    assert st["p99"] == pytest.approx(99.01)
    assert st["iqr"] == pytest.approx(75.25 - 25.75)
    odd = latency_stats([7.0, 1.0, 3.0])
    assert odd["median"] == 3.0 and odd["iqr"] == pytest.approx(5.0 - 2.0)  # q25 = 2, q75 = 5


def test_latency_stats_match_numpy_on_skewed_samples():
    a = np.random.default_rng(3).lognormal(3.0, 0.4, 257)
    st = latency_stats(a.tolist())
    for key, q in (("median", 50), ("p90", 90), ("p99", 99)):
        assert st[key] == pytest.approx(float(np.percentile(a, q)))
    assert st["iqr"] == pytest.approx(float(np.subtract(*np.percentile(a, [75, 25]))))
    assert st["min"] <= st["median"] <= st["p90"] <= st["p99"] <= st["max"]
    with pytest.raises(ValueError):
        latency_stats([])


# -- interleaving ----------------------------------------------------------------------------------
def test_chunk_sizes_split_runs_evenly():
    assert chunk_sizes(10, 3) == [4, 3, 3]
    assert chunk_sizes(5, 5) == [1] * 5
    assert chunk_sizes(2, 10) == [1, 1]  # never more rounds than runs
    with pytest.raises(EdgeirstError):
        chunk_sizes(0, 3)


@pytest.mark.parametrize("n_rows, runs, rounds", [(4, 12, 4), (5, 7, 3), (1, 3, 3), (9, 5, 5)])
def test_schedule_gives_every_row_the_same_runs_and_rotates(n_rows, runs, rounds):
    plan = schedule(n_rows, runs, rounds, seed=1)
    assert len(plan) == min(runs, rounds)
    for chunk in plan:
        assert sorted(row for row, _ in chunk) == list(range(n_rows))  # every row once per round
        assert len({count for _, count in chunk}) == 1  # the same chunk size for every row
    totals = {row: sum(c for chunk in plan for r, c in chunk if r == row) for row in range(n_rows)}
    assert set(totals.values()) == {runs}
    first = [row for row, _ in plan[0]]
    for r, chunk in enumerate(plan):
        k = r % n_rows
        assert [row for row, _ in chunk] == first[k:] + first[:k]


def test_schedule_puts_each_row_in_each_position_over_n_rounds():
    n = 5
    plan = schedule(n, runs=n, rounds=n, seed=7)
    positions = {row: {[r for r, _ in chunk].index(row) for chunk in plan} for row in range(n)}
    assert all(p == set(range(n)) for p in positions.values())


def test_schedule_order_depends_on_the_seed_only():
    assert schedule(6, 6, 6, seed=0) == schedule(6, 6, 6, seed=0)
    assert any(schedule(6, 6, 6, seed=0)[0] != schedule(6, 6, 6, seed=s)[0] for s in range(1, 6))


def test_a_slow_row_changes_neither_the_order_nor_the_counts():
    calls = []

    def make(i, delay):
        def call():
            calls.append(i)
            if delay:
                time.sleep(delay)
        return call

    plan = schedule(3, runs=4, rounds=2, seed=5)
    fast = run_interleaved([make(i, 0) for i in range(3)], plan)
    order_fast, calls[:] = list(calls), []
    slow = run_interleaved([make(0, 0), make(1, 0.03), make(2, 0)], plan)
    assert calls == order_fast == [row for chunk in plan for row, count in chunk for _ in range(count)]
    for timed in (fast, slow):
        assert [len(timed.flat(i)) for i in range(3)] == [4, 4, 4]
        assert [len(s) for s in timed.samples[1]] == [2, 2]
        assert [w[0] for w in timed.windows] == [row for chunk in plan for row, _ in chunk]
    assert min(slow.flat(1)) >= 30.0 > max(slow.flat(0) + slow.flat(2))
    assert len(slow.round_medians(1)) == 2


def test_progress_hook_sees_each_chunk_before_and_after():
    seen = []
    plan = schedule(2, runs=2, rounds=2)
    run_interleaved([lambda: None] * 2, plan, lambda r, row, n, done: seen.append((r, row, n, done)))
    assert seen == [(r, row, n, done) for r, chunk in enumerate(plan) for row, n in chunk for done in (False, True)]


# -- rows and writers -------------------------------------------------------------------------------
STAMP = machine_stamp()


def _row(model="mshnet", backend="onnxruntime", precision="fp32", median=10.0, **kw) -> Row:
    r = Row(model, kw.pop("weights", "random"), backend, precision, 256, network=model, params=1_000_000,
            gflops=1.5, file="/tmp/x.onnx", file_mb=4.0, machine=STAMP)
    if median is not None:
        r.runs, r.latency_ms, r.p90_ms, r.p99_ms, r.min_ms, r.max_ms, r.iqr_ms, r.mean_ms = \
            5, median, median * 1.1, median * 1.2, median * 0.9, median * 1.3, median * 0.1, median
        r.fps, r.rounds_ms = 1000 / median, [median] * 5
    for k, v in kw.items():
        setattr(r, k, v)
    return r


def test_json_is_a_list_of_rows_with_the_required_keys_and_the_stamp():
    rows = [_row(), _row("default", weights="shipped", iou=0.71, fa=float("nan")),
            _row(precision="int8", median=None, note="n/a: quantize not available")]
    data = json.loads(to_json(rows))
    assert isinstance(data, list) and len(data) == 3
    for d in data:
        assert {"model", "backend", "precision", "params", "gflops", "latency_ms", "fps", "machine"} <= set(d)
        assert d["machine"]["cpu"] == STAMP["cpu"] and d["machine"]["date"].endswith("Z")
    assert data[1]["iou"] == 0.71 and data[1]["fa"] is None  # NaN -> null
    assert data[2]["latency_ms"] is None and data[2]["note"].startswith("n/a")


def test_csv_header_and_values():
    rows = [_row(), _row("default", mtl={"ratio": 1.8}, stages={"infer": {"median_ms": 5.0}})]
    text = to_csv(rows)
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames) == CSV_FIELDS
    recs = list(reader)
    assert recs[0]["model"] == "mshnet" and float(recs[0]["latency_ms"]) == 10.0
    assert recs[1]["mtl_ratio"] == "1.8" and recs[1]["infer_ms"] == "5.0" and recs[1]["capture_ms"] == ""
    assert recs[0]["date"] == STAMP["date"] and STAMP["cpu"] in recs[0]["machine"]


def test_markdown_and_terminal_tables():
    rows = [_row(), _row("light-sgmtlm-tiny", median=2.5), _row(backend="tensorrt", median=None,
                                                               note="n/a: tensorrt does not import here")]
    md = to_markdown(rows, "settings: test")
    lines = md.splitlines()
    assert lines[0].startswith("| model | weights | backend | precision |") and set(lines[1]) <= set("|-")
    assert len({line.count("|") for line in lines[:5]}) == 1  # header, rule, 3 rows: same columns
    assert "settings: test" in md and "machine:" in md
    table = format_table(rows, "settings: test")
    head, rule, *body = table.splitlines()[:5]
    starts = [i for i, c in enumerate(rule) if c == "-" and (i == 0 or rule[i - 1] == " ")]
    for line in (head, *body):  # every column starts where the rule says
        for s in starts[1:]:
            assert len(line) < s or line[s - 1] == " "
    col = head.index("median ms")
    assert body[0][col:].startswith("10.0 ") and body[1][col:].startswith("2.50 ")
    assert "n/a: tensorrt does not import here" in body[2] and " - " in body[2]


def test_pipeline_rows_get_a_stage_table():
    stages = {s: {"median_ms": 1.0, "mean_ms": 1.0, "p95_ms": 2.0} for s in
              ("capture", "preprocess", "infer", "postprocess", "sinks")}
    text = format_table([_row(), _row(mode="pipeline", stages=stages)])
    assert "pipeline stages" in text and "mshnet (pipeline)" in text


def test_write_atomic_and_output_checks(tmp_path):
    p = write_atomic(tmp_path / "a.json", "[]")
    assert p.read_text() == "[]" and os.listdir(tmp_path) == ["a.json"]
    ok = check_outputs({"--json": tmp_path / "x.json", "--csv": None}, inputs=[tmp_path / "in.onnx"])
    assert list(ok) == ["--json"]
    with pytest.raises(EdgeirstError, match="does not exist"):
        check_outputs({"--json": tmp_path / "missing" / "x.json"})
    with pytest.raises(EdgeirstError, match="is a folder"):
        check_outputs({"--md": tmp_path})
    with pytest.raises(EdgeirstError, match="both write"):
        check_outputs({"--json": tmp_path / "x", "--csv": tmp_path / "x"})
    (tmp_path / "in.onnx").write_bytes(b"x")
    with pytest.raises(EdgeirstError, match="inputs"):
        check_outputs({"--json": tmp_path / "in.onnx"}, inputs=[str(tmp_path / "in.onnx")])
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(EdgeirstError, match="not writable"):
            check_outputs({"--json": ro / "x.json"})


# -- machine stamp ---------------------------------------------------------------------------------
X86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: fpu avx2 avx512f amx_int8\n"
JETSON = "processor\t: 0\nBogoMIPS\t: 62.50\nFeatures\t: fp asimd asimddp\nCPU part\t: 0xd42\n\nModel\t: NVIDIA Orin Nano Developer Kit\n"


def test_machine_stamp_fields():
    s = machine_stamp()
    assert {"date", "cpu", "cores", "gpus", "libraries", "python", "os"} <= set(s)
    assert datetime.datetime.strptime(s["date"], "%Y-%m-%dT%H:%M:%SZ")
    assert s["cores"] == os.cpu_count() and isinstance(s["gpus"], list)
    assert s["libraries"]["numpy"] == np.__version__
    assert set(s["libraries"]) >= {"edgeirst", "numpy", "onnxruntime", "torch", "tensorrt"}
    assert s["cpu"] and s["cpu"] in describe(s) and s["date"] in describe(s)
    json.dumps(s)


def test_cpu_model_and_flags_from_cpuinfo_text():
    assert cpu_model(X86) == "Intel(R) Xeon(R) Platinum 8480+"
    assert cpu_flags(X86) == ["avx2", "avx512f", "amx_int8"]
    assert cpu_model(JETSON) == "NVIDIA Orin Nano Developer Kit"
    assert cpu_flags(JETSON) == ["asimd", "asimddp"]
    assert library_versions(("surely-not-installed-lib",)) == {"surely-not-installed-lib": None}


# -- plot, power, memory, MTL ------------------------------------------------------------------------
def test_pareto_front():
    pts = [(10, 0.70), (20, 0.65), (15, 0.60), (5, 0.72), (20, 0.60), (30, 0.50)]
    assert pareto_front(pts) == [3, 0, 1, 5]
    assert pareto_front([(1.0, 1.0)]) == [0]


@pytest.mark.skipif(not plot_available(), reason="matplotlib is not installed (pip install 'edgeirst[plot]')")
def test_plot_writes_a_png(tmp_path):
    rows = [_row("default", weights="shipped", iou=0.71, median=70), _row("dnanet-w025", weights="shipped", iou=0.68,
                                                                          median=99, gflops=0.9),
            _row("mshnet", median=30), _row(precision="int8", median=None, note="n/a")]
    path = write_plot(rows, tmp_path / "p.png", title="test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and os.listdir(tmp_path) == ["p.png"]


def test_plot_places_models_by_recorded_val_metrics_when_none_were_measured():
    rows = [_row("default", weights="shipped", recorded={"iou": 0.74, "ap50": 0.81, "split": "val"}),
            _row("mshnet"), _row("tiny", weights="shipped", recorded={"ap50": 0.59})]
    assert plotted_accuracy(rows, None) == ("iou", {0: 0.74}, True)
    assert plotted_accuracy(rows, "ap50") == ("ap50", {0: 0.81, 2: 0.59}, True)
    rows[1].iou = 0.5  # one measured row: the measured metrics win, the recorded ones are not mixed in
    assert plotted_accuracy(rows, None) == ("iou", {1: 0.5}, False)
    assert plotted_accuracy([_row()], None) == (None, {}, False)


@pytest.mark.skipif(not reset_peak_rss(), reason="/proc/self/clear_refs is not writable here")
def test_peak_memory_sees_a_temporary_allocation():
    with PeakMemory() as m:
        a = np.ones(60_000_000 // 8)  # 60 MB, touched
        del a
    assert m.kind == "rss" and m.mb is not None and m.mb >= 45


def test_mtl_ratio_from_interleaved_rows():
    rows = [_row("mtunet", median=100.0), _row("mtunet-det", median=90.0), _row("mtunet-seg", median=80.0),
            _row("mtunet-siwd", median=50.0), _row("mtunet-siwd[det]", median=40.0),
            _row("mtunet-siwd[seg]", median=None, note="n/a")]
    rows[0].rounds_ms = [100.0, 110.0]
    rows[1].rounds_ms, rows[2].rounds_ms = [90.0, 90.0], [80.0, 100.0]
    out = attach_mtl(rows)
    assert len(out) == 1 and rows[0].mtl is out[0] and rows[3].mtl is None  # siwd[seg] missing
    m = out[0]
    assert m["singles"] == list(MTL_SETS["mtunet"]) and m["ratio"] == pytest.approx(1.7)
    assert m["ratio_rounds"] == [pytest.approx(1.7), pytest.approx(1.727, abs=1e-3)]
    assert "1.70x" in describe_mtl(m) and "29.4" in describe_mtl(m)


def test_cached_files_follow_the_code_that_made_them(tmp_path, monkeypatch):
    """The bench cache keys exports on the model code and quantized files on the quantizer's
    code: editing a package's source gives a new id, so a stale file is never reused."""
    from edgeirst.bench.models import _code_id

    pkg = tmp_path / "edgeirst_cache_probe"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "policy.py").write_text("WIDEN_MIN_TAPS = 256\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = _code_id("edgeirst_cache_probe")
    (pkg / "sub" / "policy.py").write_text("WIDEN_MIN_TAPS = 64\n")
    _code_id.cache_clear()  # computed once per process: the code does not change under a running bench
    assert before and _code_id("edgeirst_cache_probe") != before
    assert _code_id("edgeirst_no_such_package") is None
    assert _code_id("edgeirst.quantize") not in (None, _code_id("edgeirst.models"))
