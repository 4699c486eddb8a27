"""gpusim validate: statistics from known predicted/measured pairs (a stub predictor, not the
model), the published FLOP conventions, 'not predicted' reasons, and the command end to end."""
from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest

from analysis import validate
from analysis.traces import COLUMNS, load_published
from sim.errors import InputError

H100 = "H100-SXM5-80GB"


def gemm(m, n=1000, k=1000):
    return {"hardware": H100, "workload": {"kind": "gemm", "m": m, "n": n, "k": k, "dtype": "fp16"}}


def row(i, family, scen, metric, value, unit, base=None, hardware=H100):
    return {"id": f"R{i:03d}", "family": family, "hardware": hardware, "scenario": json.dumps(scen),
            "baseline_scenario": json.dumps(base) if base else "", "metric": metric, "value": value,
            "unit": unit, "source": "test", "source_locator": "here", "confidence": "read", "notes": "",
            "fingerprint": ""}


class Stub:
    """Predicts time_s = table[m] for gemm scenarios; raises what it is told for others."""

    def __init__(self, times, metrics=None):
        self.times, self.metrics, self.calls = times, metrics or {}, []

    def __call__(self, scen):
        self.calls.append(scen)
        wl = scen["workload"]
        if wl["kind"] == "boom":
            raise RuntimeError("kaput")
        if wl["kind"] == "nokind":
            raise InputError("scenario", "workload.kind", "got 'nokind'")
        return SimpleNamespace(time_s=self.times[wl["m"]], metrics=self.metrics.get(wl["m"], {}), bound="x")


def store(tmp_path, rows):
    pub = tmp_path / "published"
    pub.mkdir()
    with open(pub / "t.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return pub


# measured 100 GB/s each; predicted 110, 90, 150, 100, 80 -> errors .1 .1 .5 0 .2
PRED = [110.0, 90.0, 150.0, 100.0, 80.0]


def gbps_rows():
    return [row(i, "memory", gemm(i), "gbps", 100.0, "GB/s") for i in range(5)]


def gbps_stub():
    return Stub({i: 1.0 for i in range(5)}, {i: {"gbps": p} for i, p in enumerate(PRED)})


def test_median_p90_max_from_known_pairs(tmp_path):
    df = load_published(store(tmp_path, gbps_rows()))
    res = validate.evaluate(df, predict=gbps_stub())
    s = validate.error_stats(res)
    # sorted errors 0, .1, .1, .2, .5: median .1; p90 by linear interpolation at rank 3.6 = .2 + .6*.3
    assert s["rows"] == 5 and s["predicted"] == 5
    assert s["median"] == pytest.approx(0.1) and s["p90"] == pytest.approx(0.38) and s["max"] == pytest.approx(0.5)
    assert s["bias"] == pytest.approx(0.0)          # median of pred/meas is 1.0


def test_speedup_is_baseline_time_over_scenario_time_and_tflops_use_2mnk(tmp_path):
    rows = [row(1, "lowbit_gemm", gemm(1), "speedup", 4.0, "x", base=gemm(2)),
            row(2, "gemm", gemm(3), "tflops", 100.0, "TFLOP/s")]
    df = load_published(store(tmp_path, rows))
    stub = Stub({1: 1e-3, 2: 3e-3, 3: 2 * 3 * 1000 * 1000 / 100e12})   # 3x speedup; exactly 100 TFLOP/s
    res = {r["id"]: r for r in validate.evaluate(df, predict=stub)}
    assert res["R001"]["predicted"] == pytest.approx(3.0) and res["R001"]["error"] == pytest.approx(0.25)
    assert res["R002"]["predicted"] == pytest.approx(100.0)
    assert all(c["parameters"] == "spec" for c in stub.calls)


def test_attention_flops_follow_the_flashattention_rule():
    wl = {"kind": "attention", "batch": 2, "heads": 4, "seq_q": 1024, "seq_kv": 1024, "head_dim": 64,
          "causal": False, "pass": "fwd"}
    fwd = 4 * 2 * 4 * 1024 * 1024 * 64
    assert validate.flops_convention(wl) == fwd
    assert validate.flops_convention({**wl, "causal": True, "pass": "fwd_bwd"}) == pytest.approx(3.5 * fwd / 2)
    assert validate.flops_convention({**wl, "pass": "bwd"}) == pytest.approx(2.5 * fwd)


def test_decode_utilisation_counts_the_kv_cache_bytes():
    wl = {"kind": "attention", "batch": 16, "heads": 32, "kv_heads": 32, "seq_q": 1, "seq_kv": 2048,
          "head_dim": 128, "dtype": "fp16"}
    cache = 2 * 16 * 2048 * 32 * 128 * 2
    assert validate.decode_bytes(wl) == pytest.approx(cache + 2 * 16 * 32 * 128 * 2)
    assert validate.decode_bytes({**wl, "kv_dtype": "fp8"}) == pytest.approx(cache / 2 + 2 * 16 * 32 * 128 * 2)


def test_unpredictable_rows_are_counted_with_reasons_not_crashes(tmp_path):
    bad = [row(7, "x", {"hardware": H100, "workload": {"kind": "nokind"}}, "gbps", 1.0, "GB/s"),
           row(8, "x", {"hardware": H100, "workload": {"kind": "boom"}}, "gbps", 1.0, "GB/s"),
           row(9, "memory", gemm(0), "busbw_gbps", 1.0, "GB/s")]            # metric missing from prediction
    df = load_published(store(tmp_path, gbps_rows() + bad))
    summary = validate.summarize(validate.evaluate(df, predict=gbps_stub()))
    reasons = summary["not_predicted"]
    assert reasons == {"kind 'nokind' not registered": 1, "predictor raised RuntimeError: kaput": 1,
                       "metric 'busbw_gbps' not in the gemm prediction": 1}
    assert summary["by_family"]["memory"]["predicted"] == 5 and summary["by_family"]["x"]["predicted"] == 0


def test_budget_stops_predicting_and_says_so(tmp_path):
    df = load_published(store(tmp_path, gbps_rows()))
    res = validate.evaluate(df, predict=gbps_stub(), budget_s=-1)
    assert all(r["reason"].startswith("time budget") for r in res)


def test_identical_scenarios_are_predicted_once(tmp_path):
    rows = [row(i, "memory", gemm(0), "gbps", 100.0, "GB/s") for i in range(4)]
    stub = Stub({0: 1.0}, {0: {"gbps": 100.0}})
    validate.evaluate(load_published(store(tmp_path, rows)), predict=stub)
    assert len(stub.calls) == 1


def main(argv: list[str]) -> int:
    """``gpusim validate ...`` through the subcommand's own parser and run()."""
    import argparse
    p = argparse.ArgumentParser()
    validate.add_arguments(p)
    try:
        return validate.run(p.parse_args(argv[1:]))
    except InputError:
        return 2            # what analysis.cli does with it


def test_command_end_to_end_json_and_text(tmp_path, monkeypatch, capsys):
    rows = gbps_rows() + [row(5, "gemm", gemm(5), "tflops", 2.0, "TFLOP/s", hardware=H100)]
    pub = store(tmp_path, rows)
    stub = Stub({**{i: 1.0 for i in range(5)}, 5: 2 * 5 * 1e6 / 1e12}, {i: {"gbps": p} for i, p in enumerate(PRED)})
    monkeypatch.setattr(validate, "_default_predict", lambda: stub)
    monkeypatch.setitem(__import__("sys").modules, "sim.techniques", __import__("types").ModuleType("t"))
    args = ["validate", "--published", str(pub), "--measured", str(tmp_path / "none")]
    assert main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    fam = out["by_family"]
    assert fam["memory"]["median"] == pytest.approx(0.1) and fam["memory"]["p90"] == pytest.approx(0.38)
    assert fam["gemm"]["predicted"] == 1 and fam["gemm"]["max"] == pytest.approx(0.5)   # 1 vs 2 TFLOP/s
    assert out["by_device"][H100]["rows"] == 6 and len(out["rows"]) == 6
    assert main(args + ["--family", "memory"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[-1].startswith("validate (spec): 5/5 rows predicted") and "median 10.0%" in text[-1]
    assert len(text) <= 20
    assert main(args + ["--family", "nope"]) == 2


def test_percentile_matches_numpy_definition():
    errs = np.array([0.3, 0.01, 0.2, 0.05])
    res = [{"error": e, "ratio": 1 + e} for e in errs]
    s = validate.error_stats(res)
    assert s["p90"] == pytest.approx(0.2 + 0.7 * 0.1) and s["median"] == pytest.approx((0.05 + 0.2) / 2)


def test_predict_row_substitutes_the_device_for_calibration(tmp_path):
    """Calibration prices rows with trial devices through the same per-row path."""
    df = load_published(store(tmp_path, gbps_rows()[:1]))
    seen = []

    def stub(scen):
        seen.append(scen)
        return SimpleNamespace(time_s=1.0, metrics={"gbps": 42.0}, bound="x")
    trial = object()
    assert validate.predict_row(df.iloc[0], device=trial, predict=stub) == 42.0
    assert seen[0]["hardware"] is trial and seen[0]["parameters"] == "spec"
