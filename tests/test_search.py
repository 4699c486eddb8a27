"""Configuration search: hand-counted enumeration, the training kind's own rules, ranking only what
fits, vectorized == scalar, the inference cost ranking, and a hand-started Dask cluster."""
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import search as S
from sim.models import load_model
from sim.scenario import predict

TINY = {"layers": 4, "hidden": 256, "heads": 4, "ffn": 1024, "vocab": 1000}


def _space(model=TINY, gpus=4, gpn=4, gb=4, seq=128, **kw):
    return S.TrainingSpace(load_model(model), gpus, gpn, gb, seq, **kw)


def test_enumeration_count_equals_the_hand_count():
    # 4 GPUs, 4 layers, global batch 4, no cp. Per (tp, pp, dp): micro-batches x schedules x
    # Megatron-SP x ZeRO stages x recompute {none, full}:
    # (1,1,4): 1 mb x 4 zero x 2 = 8          (1,2,2): (mb1: 1f1b+v2, mb2: 1f1b) x zero{0,1} x 2 = 12
    # (1,4,1): 3 mb x 2 = 6                    (2,1,2): 2 mb x 2 sp x 4 zero x 2 = 32
    # (2,2,1): (mb1,mb2: 1f1b+v2; mb4: 1f1b) x 2 sp x 2 = 20        (4,1,1): 3 mb x 2 sp x 2 = 12
    assert len(S.enumerate_training(_space(context_parallel=False, offload=False))) == 90
    # offload (pp = 1, dp > 1): optimizer to CPU with ZeRO 1-3, + params with ZeRO-3: 4 more per
    # (mb, sp, recompute) of (1,1,4) (1 x 1 x 2) and (2,1,2) (2 x 2 x 2): 8 + 32
    assert len(S.enumerate_training(_space(context_parallel=False, offload=True))) == 130


def test_rejections_are_counted_by_reason():
    sp = _space(gpus=16, gpn=8, gb=16, context_parallel=False, offload=False)
    df = S.enumerate_training(sp)
    assert df["tp"].max() <= 4                                     # heads = 4 caps tp
    assert sp.rejected["tp must divide heads"] > 0
    assert sp.rejected["tp > gpus_per_node (tensor parallelism kept in a node)"] == 1   # tp=16: the one (pp, cp) = (1, 1)
    assert sp.rejected["pp > layers"] > 0
    assert not (df["pp"] > 4).any() and not ((df["zero"] >= 2) & (df["pp"] > 1)).any()


@settings(max_examples=25, deadline=None)
@given(gpus=st.sampled_from([1, 2, 4, 6, 8, 12, 16]), gb_mult=st.integers(1, 6), layers=st.sampled_from([2, 3, 4, 6]),
       heads=st.sampled_from([2, 4, 6]), cp=st.booleans())
def test_every_enumerated_layout_obeys_the_rules(gpus, gb_mult, layers, heads, cp):
    m = {"layers": layers, "hidden": 64 * heads, "heads": heads, "ffn": 256 * heads, "vocab": 512}
    sp = _space(m, gpus=gpus, gpn=8, gb=gpus * gb_mult, seq=64, context_parallel=cp)
    df = S.enumerate_training(sp)
    assert not df.duplicated().any()
    for r in df.itertuples():
        assert r.tp * r.pp * r.dp * r.cp == gpus
        assert heads % r.tp == 0 and r.tp <= 8 and r.pp <= layers
        per_dp = gpus * gb_mult // r.dp
        assert per_dp % r.micro_batch == 0
        if r.schedule == "interleaved":
            assert r.virtual_stages >= 2 and layers % (r.pp * r.virtual_stages) == 0
            assert (per_dp // r.micro_batch) % r.pp == 0
        if r.zero:
            assert r.dp * r.cp > 1
        if r.offload_optimizer != "none":
            assert r.pp == 1 and r.zero >= 1
        if r.cp_mode == "ulysses":
            assert (heads // r.tp) % r.cp == 0
        assert cp or r.cp == 1


def test_enumerated_layouts_are_accepted_by_the_training_kind():
    sp = _space(gpus=8, gpn=8, gb=8, seq=128, context_parallel=True)
    df = S.enumerate_training(sp)
    ctx = S.TrainingContext("A100-SXM4-80GB", TINY, 8, 8, 8, 128)
    for _, row in df.sample(40, random_state=0).iterrows():
        predict(ctx.scenario(row))                                  # raises InputError if the kind disagrees


# ---- evaluation and ranking ---------------------------------------------------------------------
GPT_SMALL = "gpt3-6.7b"      # 6.7B x 16 B of model states = 107 GB: needs sharding on 40 GB GPUs


@pytest.fixture(scope="module")
def small_search():
    sp = S.TrainingSpace(load_model(GPT_SMALL), 8, 8, 16, 2048, context_parallel=False, max_micro_batch=4)
    ctx = S.TrainingContext("A100-SXM4-40GB", GPT_SMALL, 8, 8, 16, 2048)
    df, summary = S.search_training(ctx, sp)
    return ctx, df, summary


def test_a_layout_that_does_not_fit_is_never_ranked(small_search):
    _, df, summary = small_search
    assert (~df["fits"]).any() and df["fits"].any()              # the case has both
    # plain data parallelism keeps all 107 GB of model states on every 40 GB GPU: never fits
    assert not df[(df["tp"] == 1) & (df["pp"] == 1) & (df["zero"] == 0)]["fits"].any()
    assert df.loc[df["rank"].notna(), "fits"].all()
    assert df["rank"].notna().sum() == summary["fit"] == df["fits"].sum()
    ranked = df[df["rank"].notna()].sort_values("rank")
    assert ranked["tokens_per_s"].is_monotonic_decreasing


def test_top_layouts_equal_the_scalar_predict(small_search):
    ctx, df, _ = small_search
    top = df[df["rank"].notna()].sort_values("rank").head(5)
    ref = S.evaluate_scalar(ctx, top)
    for col in ("iteration_time_s", "tokens_per_s", "mfu", "memory_hbm_gb"):
        assert (abs(top[col] - ref[col]) <= 1e-6 * abs(ref[col])).all(), col
    assert ref["fits"].all() and top["fits"].all()
    S.confirm(ctx, df, top.index)                                     # the CLI's check: fills the bound
    assert (df.loc[top.index, "bound"] == ref["bound"]).all()


# ---- inference -----------------------------------------------------------------------------------
TARGET = S.InferenceTarget("llama-2-7b", 512, 64, ttft_s=0.5, tpot_s=0.02)


@pytest.fixture(scope="module")
def inference_search():
    return S.search_inference(TARGET, ["A100-SXM4-80GB", "L40S"], max_gpus=2)


def test_inference_ranks_only_deployments_meeting_the_targets(inference_search):
    df, summary = inference_search
    ranked = df[df["rank"].notna()].sort_values("rank")
    assert len(ranked) == summary["meeting"] > 0
    assert ranked["fits"].all() and (ranked["ttft_s"] <= 0.5).all() and (ranked["tpot_s"] <= 0.02).all()
    # cheapest per hour first; equal price -> cheaper per token first
    assert ranked["usd_per_hour"].is_monotonic_increasing
    for _, g in ranked.groupby("usd_per_hour"):
        assert g["usd_per_mtok"].is_monotonic_increasing
    assert (ranked["usd_per_hour"] == ranked["gpus"] * ranked["hardware"].map(S.PRICE_USD_PER_HOUR)).all()


def test_inference_grid_is_devices_tp_formats_and_power_of_two_batches(inference_search):
    df, _ = inference_search
    a100 = df[df["hardware"] == "A100-SXM4-80GB"]
    assert set(a100["weights"]) == {"bf16", "int8", "int4"}                 # no FP8 Tensor Cores on A100
    assert set(df[df["hardware"] == "L40S"]["weights"]) == {"bf16", "fp8", "int8", "int4"}
    assert set(a100["kv_cache"]) == {"bf16"} and set(df["tp"]) == {1, 2}
    for _, g in df.groupby(["hardware", "tp", "weights", "kv_cache"]):
        b = sorted(g["batch"])
        pw = [x for x in b if x & (x - 1) == 0]
        assert pw == [2 ** k for k in range(len(pw))]                        # 1, 2, 4, ... up to capacity
        assert set(b) - set(pw) <= {b[-1]} and b[-1] < 2 * pw[-1]            # plus the capacity itself
        assert g["fits"].all()                                                # nothing above capacity


def test_an_unpriced_device_is_listed_apart():
    df, summary = S.search_inference(TARGET, ["V100-SXM2-32GB"], max_gpus=1)
    assert summary["meeting"] > 0 and df["rank"].isna().all() and summary["meeting_unpriced"] == summary["meeting"]
    df2, _ = S.search_inference(TARGET, ["V100-SXM2-32GB"], max_gpus=1, prices={"V100-SXM2-32GB": 1.0})
    assert df2["rank"].notna().sum() == summary["meeting"]


# ---- a Dask cluster started by hand ----------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(procs):
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_hand_started_dask_cluster_gives_the_local_results(tmp_path):
    """`dask scheduler` + `dask worker` on 127.0.0.1: a small training search, an inference search
    and a sweep sent to its address equal the local runs."""
    from dask.distributed import Client

    from analysis.sweep import make_client, run_sweep
    dask_cli = str(Path(sys.executable).with_name("dask"))
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    procs = []
    try:
        procs.append(subprocess.Popen([dask_cli, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                       "--no-dashboard"], **quiet))
        procs.append(subprocess.Popen([dask_cli, "worker", addr, "--nworkers", "1", "--nthreads", "1",
                                       "--no-dashboard", "--host", "127.0.0.1"], **quiet))
        deadline = time.time() + 30
        client = None
        while client is None:
            try:
                client = Client(addr, timeout=2)
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)
        try:
            client.wait_for_workers(1, timeout=30)
            sp = lambda: _space(gpus=8, gpn=8, gb=8, seq=128, context_parallel=False)   # noqa: E731
            ctx = S.TrainingContext("A100-SXM4-80GB", TINY, 8, 8, 8, 128)
            remote, _ = S.search_training(ctx, sp(), client, chunk=50)
            local, _ = S.search_training(ctx, sp(), None)
            pd.testing.assert_frame_equal(remote, local)
            target = S.InferenceTarget("llama-2-7b", 256, 32, 1.0, 0.05)
            r_inf, _ = S.search_inference(target, ["L40S"], 2, client=client, chunk=8)
            l_inf, _ = S.search_inference(target, ["L40S"], 2)
            pd.testing.assert_frame_equal(r_inf, l_inf)
            spec = {"base": {"hardware": "H100-SXM5-80GB",
                             "workload": {"kind": "gemm", "m": 1, "n": 4096, "k": 4096, "dtype": "bf16"}},
                    "grid": {"workload.m": [1, 64, 4096], "whatif.hbm_bandwidth": [0.5, 2]}, "chunk": 2}
            r_sw = run_sweep(spec, tmp_path / "remote.parquet", client, progress=False)
        finally:
            client.close()
        local_client = make_client(None, 1)
        try:
            l_sw = run_sweep(spec, tmp_path / "local.parquet", local_client, progress=False)
        finally:
            S._close(local_client)
        pd.testing.assert_frame_equal(r_sw, l_sw)
    finally:
        _stop(procs)


def test_vectorized_equals_scalar_on_every_kind_of_layout():
    """Pipelined, interleaved, context-parallel, ZeRO-3 and offloaded (layerwise) layouts alike: one
    layout of every combination of the knobs that change the evaluation path."""
    sp = _space(gpus=8, gpn=8, gb=8, seq=128, context_parallel=True)
    df = S.enumerate_training(sp).groupby(["tp", "pp", "cp_mode", "schedule", "zero", "offload_optimizer",
                                           "offload_params", "recompute"]).head(1)
    ctx = S.TrainingContext("H100-SXM5-80GB", TINY, 8, 8, 8, 128)
    vec, ref = S.evaluate_vectorized(ctx, df), S.evaluate_scalar(ctx, df)
    assert (vec["error"] == "").all() and (ref["error"] == "").all()
    rel = ((vec[S.NUMERIC] - ref[S.NUMERIC]).abs() / ref[S.NUMERIC].abs()).to_numpy().max()
    assert rel <= 1e-6 and (vec["fits"] == ref["fits"]).all()
    assert {"interleaved", "1f1b"} <= set(df["schedule"]) and (df["offload_params"] == "cpu").any()
    assert {"ring", "ulysses", "none"} == set(df["cp_mode"]) and len(df) >= 50


# ---- command line ----------------------------------------------------------------------------------
def test_cli_training_json_and_parquet(tmp_path, capsys):
    from analysis.cli import main
    out = tmp_path / "rows.parquet"
    rc = main(["search", "training", "--model", "gpt3-1.3b", "--gpus", "8", "--hardware", "A100-SXM4-40GB",
               "--global-batch", "16", "--max-micro-batch", "4", "--serial", "--json", "--top", "3",
               "--out", str(out)])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    rows = pd.read_parquet(out)
    assert len(rows) == res["evaluated"] and len(res["top"]) == 3
    assert [r["rank"] for r in res["top"]] == [1, 2, 3] and all(r["bound"] for r in res["top"])
    assert res["top"][0]["tokens_per_s"] == rows["tokens_per_s"][rows["fits"]].max()


def test_cli_table_and_bad_input(capsys):
    from analysis.cli import main
    assert main(["search", "training", "--model", "gpt3-1.3b", "--gpus", "8", "--hardware", "A100-SXM4-40GB",
                 "--global-batch", "16", "--max-micro-batch", "2", "--serial", "--top", "2"]) == 0
    text = capsys.readouterr().out
    assert "rank" in text and "tokens/s" in text and "tp" in text
    assert main(["search", "training", "--model", "gpt-9", "--gpus", "8", "--hardware", "A100-SXM4-40GB",
                 "--serial"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "gpt-9" in err and len(err.strip().splitlines()) == 1
    assert main(["search", "inference", "--model", "llama-2-7b", "--ttft", "1", "--tpot", "0.05",
                 "--hardware", "Z100", "--serial"]) == 2
