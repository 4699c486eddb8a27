"""The trace store: schema errors name file/row/column, appends are atomic, published rows carry
their sources, and the published CSVs are reproducible from shared/reference."""
from __future__ import annotations

import csv
import json
import os

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import build_published, traces
from analysis.traces import COLUMNS, append_measured, load_all, load_measured, load_published
from sim.errors import InputError

SCEN = {"hardware": "H100-SXM5-80GB", "workload": {"kind": "gemm", "m": 8, "n": 8, "k": 8, "dtype": "fp16"}}


def good_row(i: int = 1, **over) -> dict:
    row = {"id": f"T{i:04d}", "family": "gemm", "hardware": "H100-SXM5-80GB", "scenario": json.dumps(SCEN),
           "baseline_scenario": "", "metric": "tflops", "value": "123.5", "unit": "TFLOP/s",
           "source": "a paper", "source_locator": "Table 1", "confidence": "read", "notes": "", "fingerprint": ""}
    row.update(over)
    return row


def write_csv(path, rows, columns=COLUMNS):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


# ---- schema errors --------------------------------------------------------------------------------

BAD = [
    ("scenario", {"scenario": "{not json"}),
    ("scenario", {"scenario": json.dumps({"hardware": "H100-SXM5-80GB"})}),
    ("metric", {"metric": "tflopz"}),
    ("unit", {"unit": "GB/s"}),
    ("value", {"value": "fast"}),
    ("value", {"value": "-3"}),
    ("source", {"source": ""}),
    ("hardware", {"hardware": "A100-SXM4-80GB"}),
    ("baseline_scenario", {"metric": "speedup", "unit": "x"}),
    ("fingerprint", {"fingerprint": "somebox"}),
    ("family", {"family": "GEMM!"}),
]


@pytest.mark.parametrize("column,over", BAD, ids=[f"{c}-{i}" for i, (c, _) in enumerate(BAD)])
def test_schema_error_names_file_row_id_and_column(tmp_path, column, over):
    path = write_csv(tmp_path / "x.csv", [good_row(1), good_row(2, **over), good_row(3)])
    with pytest.raises(InputError) as e:
        load_published(tmp_path)
    msg = str(e.value)
    assert str(path) in msg and "row 2" in msg and "T0002" in msg
    assert e.value.field == column


def test_missing_column_and_duplicate_id(tmp_path):
    write_csv(tmp_path / "a.csv", [good_row(1)], columns=[c for c in COLUMNS if c != "confidence"])
    with pytest.raises(InputError) as e:
        load_published(tmp_path)
    assert e.value.field == "confidence" and "a.csv" in str(e.value)
    (tmp_path / "a.csv").unlink()
    write_csv(tmp_path / "b.csv", [good_row(1), good_row(1)])
    with pytest.raises(InputError, match="T0001"):
        load_published(tmp_path)


def test_torn_csv_is_an_input_error_naming_the_file(tmp_path):
    path = write_csv(tmp_path / "x.csv", [good_row(1)])
    path.write_text(path.read_text() + 'T0002,"gemm,unterminated\n')
    with pytest.raises(InputError) as e:
        load_published(tmp_path)
    assert str(path) in str(e.value)


def test_good_rows_load_with_float_values(tmp_path):
    write_csv(tmp_path / "x.csv", [good_row(1), good_row(2, value="0.5")])
    df = load_published(tmp_path)
    assert list(df["value"]) == [123.5, 0.5] and list(df.columns) == COLUMNS


# ---- measured store: atomic appends -------------------------------------------------------------------

def measured_row(i=0, value=10.0):
    r = good_row(i, value=value)
    for k in ("id", "source", "confidence", "fingerprint"):
        r.pop(k)
    return r


def test_append_then_load_carries_fingerprint_metadata(tmp_path):
    fp = {"id": "h100-sxm-drv550", "gpu": "NVIDIA H100 80GB HBM3", "driver": "550.54", "torch": "2.3", "triton": "3.0"}
    part = append_measured([measured_row(0), measured_row(1, 20.0)], fp, tmp_path)
    assert part.parent.name == "h100-sxm-drv550" and part.suffix == ".parquet"
    df = load_measured(tmp_path)
    assert len(df) == 2 and set(df["fingerprint"]) == {"h100-sxm-drv550"}
    assert set(df["source"]) == {"gpusim bench"} and set(df["confidence"]) == {"measured"}
    assert traces.fingerprint_metadata(tmp_path)["h100-sxm-drv550"]["gpu"] == "NVIDIA H100 80GB HBM3"
    first = part.read_bytes()
    append_measured([measured_row(2, 30.0)], fp, tmp_path)      # a second part; the first is untouched
    assert sorted(load_measured(tmp_path)["value"]) == [10.0, 20.0, 30.0]
    assert part.read_bytes() == first and len(list(part.parent.glob("*.parquet"))) == 2


def _snapshot(folder):
    return sorted((p.name, p.read_bytes()) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("where", ["write", "rename"])
def test_crash_mid_append_leaves_the_store_as_it_was(tmp_path, monkeypatch, where):
    append_measured([measured_row(0)], "box", tmp_path)
    before = _snapshot(tmp_path)
    import pyarrow.parquet as pq

    if where == "write":
        real = pq.write_table

        def torn(table, path, **kw):        # half a file on disk, then the process "dies"
            real(table.slice(0, 1), path, **kw)
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
            raise OSError("disk full")
        monkeypatch.setattr(pq, "write_table", torn)
    else:
        def no_rename(src, dst):
            raise OSError("crash before rename")
        monkeypatch.setattr(traces.os, "replace", no_rename)
    with pytest.raises(OSError):
        append_measured([measured_row(1, 2.0), measured_row(2, 3.0)], "box", tmp_path)
    monkeypatch.undo()
    assert _snapshot(tmp_path) == before
    assert list(load_measured(tmp_path)["value"]) == [10.0]


def test_leftover_temp_file_of_a_killed_writer_is_ignored(tmp_path):
    append_measured([measured_row(0)], "box", tmp_path)
    (tmp_path / "box" / ".part-20990101T000000000000Z-deadbeef.parquet.tmp").write_bytes(b"PAR1 torn")
    assert list(load_measured(tmp_path)["value"]) == [10.0]


def test_bad_measured_rows_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(InputError) as e:
        append_measured([measured_row(0), measured_row(1, value=-1)], "box", tmp_path)
    assert "row 2" in str(e.value) and e.value.field == "value"
    assert not (tmp_path / "box").exists()
    with pytest.raises(InputError):
        append_measured([measured_row(0)], "bad/name", tmp_path)


def test_part_in_the_wrong_folder_is_refused(tmp_path):
    part = append_measured([measured_row(0)], "box", tmp_path)
    (tmp_path / "other").mkdir()
    part.rename(tmp_path / "other" / part.name)
    with pytest.raises(InputError, match="other"):
        load_measured(tmp_path)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.floats(min_value=1e-9, max_value=1e12, allow_nan=False), min_size=1, max_size=5),
       notes=st.text(max_size=40))
def test_append_round_trips_values_and_text(tmp_path_factory, values, notes):
    d = tmp_path_factory.mktemp("store")
    append_measured([{**measured_row(i, v), "notes": notes} for i, v in enumerate(values)], "box", d)
    df = load_measured(d)
    assert list(df["value"]) == values and set(df["notes"]) == {notes}


def test_load_all_joins_published_and_measured(tmp_path):
    pub, mea = tmp_path / "pub", tmp_path / "mea"
    pub.mkdir()
    write_csv(pub / "x.csv", [good_row(1)])
    append_measured([measured_row(0)], "box", mea)
    df = load_all(pub, mea)
    assert sorted(df["origin"]) == ["measured", "published"]


# ---- the committed published store ----------------------------------------------------------------------

def test_every_published_row_has_a_source_and_a_scenario():
    df = load_published()
    assert len(df) > 1000
    for col in ("source", "source_locator", "confidence", "scenario", "family", "hardware"):
        assert (df[col].str.strip() != "").all(), col
    assert (df["fingerprint"] == "").all()


def test_published_rows_keep_the_reference_provenance_verbatim():
    try:
        ref = build_published.reference_dir()
    except FileNotFoundError:
        pytest.skip("shared/reference not available")
    df = load_published().set_index("id")
    for fname in ("kernel_measurements.csv", "end_to_end.csv"):
        src = pd.read_csv(ref / fname, dtype=str, keep_default_na=False).set_index("id")
        mine = df.index.intersection(src.index)
        assert len(mine) > 50
        for col in ("source", "source_locator", "confidence"):
            assert (df.loc[mine, col] == src.loc[mine, col]).all(), (fname, col)


def test_build_is_deterministic_and_matches_the_committed_csvs(tmp_path):
    try:
        ref = build_published.reference_dir()
    except FileNotFoundError:
        pytest.skip("shared/reference not available")
    build_published.write(ref, tmp_path)
    for p in sorted(traces.PUBLISHED.glob("*")):
        if p.suffix in (".csv", ".md") and not p.name.startswith(HAND_CURATED_PREFIX):
            assert (tmp_path / p.name).read_bytes() == p.read_bytes(), p.name


# published rows kept by hand, not built from shared/reference (each row carries its own source and
# locator): traces/published/extra_*.csv
HAND_CURATED_PREFIX = "extra_"


def test_params_parser_handles_the_reference_formats():
    pp = build_published.parse_params
    assert pp("M=N=K=4096")[0] == {"m": "4096", "n": "4096", "k": "4096"}
    kv, free = pp("weight 72k x 18k;batch=1")
    assert kv == {"batch": "1"} and free == ["weight 72k x 18k"]
    assert pp("heads=32 (q=kv);head_dim=128")[0] == {"heads": "32 (q=kv)", "head_dim": "128"}


def test_flashattention_benchmark_rows_follow_the_readme_setting():
    """README setting: hidden 2048 (heads = 2048/head_dim) and batch = 16k/seqlen."""
    df = load_published()
    fa = df[df["source_locator"].str.startswith("assets/flash")]
    assert len(fa) > 100
    for s in fa["scenario"]:
        w = json.loads(s)["workload"]
        assert w["heads"] * w["head_dim"] == 2048 and w["batch"] * w["seq_q"] == 16384


def _e2e_workloads():
    df = load_published().set_index("id")
    return {i: json.loads(s)["workload"] for i, s in df["scenario"].items() if i.startswith("E")}, df


def test_inference_rows_carry_the_settings_their_sources_state():
    """Settings each source states (its precision column, harness or code), written into the scenario:
    weight-only int8 computes in bf16; int4 group sizes; Sparse-Marlin is 2:4; QServe is W4A8 with
    per-channel (A100) or g128 (L40S) scales; Spec-Bench runs eagerly; FlexGen's 4-bit rows use its
    PyTorch decompression with group 64 and bmm attention; TensorRT-LLM v0.6.1 predates XQA."""
    wl, df = _e2e_workloads()
    for i in ("E0143", "E1021"):
        assert wl[i]["weights"] == "int8" and wl[i]["act_dtype"] == "bf16"
    assert wl["E0144"]["group_size"] == 32 and wl["E1022"]["group_size"] == wl["E1023"]["group_size"] == 64
    assert wl["E1036"]["sparsity_pattern"] == "2:4" and wl["E1036"]["group_size"] == 64
    for i in ("E1003", "E1005", "E1007", "E1012", "E1013"):
        assert wl[i]["weights"] == "w4a8"
    assert wl["E1003"]["group_size"] == "channel" and wl["E1012"]["group_size"] == 128
    spec = df[df["family"] == "speculative"]
    assert len(spec) >= 8
    for _, r in spec.iterrows():
        for s in (r["scenario"], r["baseline_scenario"]):
            assert json.loads(s)["workload"]["cuda_graphs"] is False
    for i in ("E1108", "E1110"):
        assert (wl[i]["dequant"], wl[i]["group_size"], wl[i]["kv_group_size"], wl[i]["attn_impl"]) == \
            ("torch", 64, 64, "naive")
    assert wl["E1110"]["micro_batches"] == 3 and wl["E1110"]["offload"]["kv_cache"] == "cpu"
    for i in ("E0109", "E0113", "E0114", "E0115", "E0116"):
        assert wl[i]["kv_head_sharing"] is False


def test_sharegpt_serving_rows_have_spread_lengths_and_the_frameworks_scheduler():
    wl, df = _e2e_workloads()
    serving = df[df["family"] == "serving"]
    assert len(serving) >= 10
    for i, r in serving.iterrows():
        a = wl[i]["arrival"]
        sharegpt = "ShareGPT" in r["notes"]
        assert (a.get("length_dist", "fixed") == "exponential") == sharegpt, i
        v0 = "vLLM v0.6.0:" in r["notes"] or "SGLang v0.3.0:" in r["notes"]   # prefill-only steps by default
        assert a["scheduler"] == ("prefill_first" if v0 else "chunked"), i
