"""`gpusim predict` end to end: the example scenarios give the JSON contract of docs/scenarios.md
within physical bounds, and bad input is one line on stderr with exit code 2, never a traceback."""
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from analysis.cli import main
from sim.hardware import load_device, load_host
from sim.hardware.system import pcie_Bps

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.yaml"))
CONTRACT = {"fits", "time_s", "bound", "memory_bytes", "metrics", "breakdown", "provenance"}
METRICS = {"gemm": {"tflops"}, "attention": {"tflops"}, "memory": {"gbps"}, "transfer": {"gbps"},
           "collective": {"algbw_gbps", "busbw_gbps"}}


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def predict_json(scenario, capsys, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario))
    code, out, err = run(["predict", str(path), "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def test_every_kind_has_an_example():
    kinds = {yaml.safe_load(p.read_text())["workload"]["kind"] for p in EXAMPLES}
    assert set(METRICS) <= kinds


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_gives_the_contract(path, capsys):
    code, out, err = run(["predict", str(path), "--json"], capsys)
    assert code == 0, err
    d = json.loads(out)
    assert CONTRACT <= set(d)
    assert isinstance(d["fits"], bool) and isinstance(d["bound"], str) and d["bound"]
    assert d["time_s"] > 0
    assert {"hbm", "host", "nvme"} <= set(d["memory_bytes"])
    assert d["provenance"] in ("spec", "calibrated", "measured")
    kind = yaml.safe_load(path.read_text())["workload"]["kind"]
    assert METRICS.get(kind, set()) <= set(d["metrics"])
    if kind in METRICS:
        assert isinstance(d["breakdown"]["explanation"], str) and d["breakdown"]["explanation"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_within_physical_bounds(path, capsys):
    sc = yaml.safe_load(path.read_text())
    kind = sc["workload"]["kind"]
    if kind not in METRICS:
        pytest.skip("another family's example")
    _, out, _ = run(["predict", str(path), "--json"], capsys)
    m = json.loads(out)["metrics"]
    dev = load_device(sc["hardware"])
    if kind in ("gemm", "attention"):
        assert 0 < m["tflops"] <= dev.peak_tflops[sc["workload"]["dtype"]]
    elif kind == "memory":
        assert 0 < m["gbps"] <= dev.memory.bandwidth_gbps
    elif kind == "collective":
        n = sc["workload"]["gpus"]
        # busbw <= what one GPU can push through its NVLink and NIC; NVLS at most 2(n-1)/n x link
        nic = sc.get("cluster", {}).get("inter_node_gbps", 400) / 8
        assert 0 < m["busbw_gbps"] <= 2 * (n - 1) / n * dev.nvlink.bandwidth_gbps + nic
    elif kind == "transfer":
        host = load_host(sc.get("host") or dev.default_host)
        raw = pcie_Bps(min(dev.pcie.generation, host.pcie_generation), min(dev.pcie.lanes, host.pcie_lanes_per_gpu))
        assert 0 < m["gbps"] * 1e9 <= raw


def test_installed_console_script_prints_json():
    exe = ROOT / ".venv" / "bin" / "gpusim"
    cmd = [str(exe)] if exe.exists() else ([shutil.which("gpusim")] if shutil.which("gpusim")
                                           else [sys.executable, "-m", "analysis.cli"])
    p = subprocess.run(cmd + ["predict", str(ROOT / "docs/examples/collective.yaml"), "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120,
                       env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert CONTRACT <= set(d)
    assert d["metrics"]["busbw_gbps"] > 0


def test_stdin_dash_reads_the_scenario(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO((ROOT / "docs/examples/transfer.yaml").read_text()))
    code, out, err = run(["predict", "-", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["bound"] == "pcie"


# ---------------------------------------------------------------- bad input: exit 2, one line
GEMM = {"hardware": "H100-SXM5-80GB", "workload": {"kind": "gemm", "m": 1024, "n": 1024, "k": 1024, "dtype": "bf16"}}


def _with(base, **wl):
    sc = json.loads(json.dumps(base))
    sc["workload"].update(wl)
    return sc


BAD = {
    "unknown_device": ({**GEMM, "hardware": "H999-imaginary"}, "hardware"),
    "negative_dim": (_with(GEMM, m=-8), "workload.m"),
    "zero_dim": (_with(GEMM, k=0), "workload.k"),
    "workload_typo": (_with(GEMM, dtyp="bf16"), "workload.dtyp"),
    "top_level_typo": ({**GEMM, "clustr": {"gpus": 8}}, "clustr"),
    "dtype_device_lacks": ({**GEMM, "hardware": "A100-SXM4-80GB", "workload": {**GEMM["workload"], "dtype": "fp8"}},
                           "workload.dtype"),
    "missing_kind": ({"hardware": "H100-SXM5-80GB", "workload": {"m": 1, "n": 1, "k": 1, "dtype": "bf16"}},
                     "workload.kind"),
    "bad_dtype_literal": (_with(GEMM, dtype="fp13"), "workload.dtype"),
    "nvls_before_hopper": ({"hardware": "A100-SXM4-80GB", "cluster": {"gpus": 8},
                            "workload": {"kind": "collective", "op": "all_reduce", "bytes": 1e6, "gpus": 8,
                                         "algo": "nvls"}}, "workload.algo"),
    "more_gpus_than_cluster": ({"hardware": "H100-SXM5-80GB",
                                "workload": {"kind": "collective", "op": "all_gather", "bytes": 1e6, "gpus": 8}},
                               "workload.gpus"),
    "transfer_within_a_tier": ({"hardware": "H100-SXM5-80GB",
                                "workload": {"kind": "transfer", "src": "hbm", "dst": "hbm", "bytes": 1e6}},
                               "workload.dst"),
    "memory_negative_bytes": ({"hardware": "H100-SXM5-80GB", "workload": {"kind": "memory", "op": "copy", "bytes": -1}},
                              "workload.bytes"),
    "attention_pass_typo": ({"hardware": "H100-SXM5-80GB",
                             "workload": {"kind": "attention", "batch": 1, "heads": 8, "seq_q": 128, "seq_kv": 128,
                                          "head_dim": 64, "causal": True, "dtype": "bf16", "pass": "forward"}},
                            "workload.pass"),
}


def assert_one_line_error(code, out, err, field):
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert field in lines[0]


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_scenario_is_one_line_exit_2(case, tmp_path, capsys):
    scenario, field = BAD[case]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(scenario))
    assert_one_line_error(*run(["predict", str(path), "--json"], capsys), field)


def test_unreadable_files_are_one_line_exit_2(tmp_path, capsys):
    assert_one_line_error(*run(["predict", str(tmp_path / "missing.yaml")], capsys), "no such file")
    (tmp_path / "garbage.yaml").write_text("workload: {kind: gemm\n")
    assert_one_line_error(*run(["predict", str(tmp_path / "garbage.yaml")], capsys), "<file>")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00\x81")
    assert_one_line_error(*run(["predict", str(tmp_path / "binary.yaml")], capsys), "<file>")
    assert_one_line_error(*run(["predict", str(tmp_path)], capsys), "<file>")


def test_bad_stdin_is_one_line_exit_2(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("- just\n- a list\n"))
    assert_one_line_error(*run(["predict", "-", "--json"], capsys), "<stdin>")


# ---------------------------------------------------------------- not fitting is an answer, not a crash
def test_scenarios_that_do_not_fit_return_fits_false(capsys, tmp_path):
    big_stream = {"hardware": "H100-SXM5-80GB", "workload": {"kind": "memory", "op": "triad", "bytes": 40e9}}
    d = predict_json(big_stream, capsys, tmp_path)
    assert d["fits"] is False and d["memory_bytes"]["hbm"] == pytest.approx(120e9)
    to_gpu = {"hardware": "H100-SXM5-80GB",
              "workload": {"kind": "transfer", "src": "nvme", "dst": "hbm", "bytes": 1e12}}
    d = predict_json(to_gpu, capsys, tmp_path)
    assert d["fits"] is False and d["time_s"] > 0
    l2 = {"hardware": "H100-SXM5-80GB", "workload": {"kind": "memory", "op": "copy", "bytes": 1e9, "level": "l2"}}
    d = predict_json(l2, capsys, tmp_path)
    assert d["fits"] is False and d["warnings"]


def test_gemm_that_does_not_fit_returns_fits_false(capsys, tmp_path):
    huge = _with(GEMM, m=200_000, n=200_000, k=200_000, dtype="bf16")
    d = predict_json(huge, capsys, tmp_path)
    assert d["fits"] is False
    assert d["memory_bytes"]["hbm"] == pytest.approx(3 * 200_000 ** 2 * 2)


def test_collective_metrics_follow_nccl_tests(capsys, tmp_path):
    sc = yaml.safe_load((ROOT / "docs/examples/collective.yaml").read_text())
    d = predict_json(sc, capsys, tmp_path)
    n, S = sc["workload"]["gpus"], sc["workload"]["bytes"]
    assert d["metrics"]["algbw_gbps"] == pytest.approx(S / d["time_s"] / 1e9)
    assert d["metrics"]["busbw_gbps"] == pytest.approx(d["metrics"]["algbw_gbps"] * 2 * (n - 1) / n)


def test_stream_counts_arrays_read_plus_written(capsys, tmp_path):
    gbps = {}
    for op in ("read", "copy", "triad"):
        sc = {"hardware": "H100-SXM5-80GB", "workload": {"kind": "memory", "op": op, "bytes": 2 ** 30}}
        d = predict_json(sc, capsys, tmp_path)
        arrays = {"read": 1, "copy": 2, "triad": 3}[op]
        assert d["metrics"]["gbps"] == pytest.approx(arrays * 2 ** 30 / d["time_s"] / 1e9)
        gbps[op] = d["metrics"]["gbps"]
    # a bandwidth-bound kernel moves bytes at about the same rate whatever the mix
    assert max(gbps.values()) / min(gbps.values()) < 1.5


def test_attention_tflops_follow_the_flashattention_convention(capsys, tmp_path):
    wl = {"kind": "attention", "batch": 4, "heads": 16, "seq_q": 2048, "seq_kv": 2048, "head_dim": 128,
          "dtype": "bf16", "impl": "flash2"}
    flops = {}
    for causal in (False, True):
        for p in ("fwd", "bwd", "fwd_bwd"):
            d = predict_json({"hardware": "H100-SXM5-80GB", "workload": {**wl, "causal": causal, "pass": p}},
                             capsys, tmp_path)
            flops[causal, p] = d["metrics"]["tflops"] * 1e12 * d["time_s"]
    fwd = 4 * 4 * 2048 * 2048 * 16 * 128
    assert flops[False, "fwd"] == pytest.approx(fwd)
    assert flops[True, "fwd"] == pytest.approx(fwd / 2)
    assert flops[False, "bwd"] == pytest.approx(2.5 * fwd)
    assert flops[True, "fwd_bwd"] == pytest.approx(3.5 * fwd / 2)
