"""The sections of the study report. Each takes the output folder, writes its PNGs there and
returns a ``Section``; ``SECTIONS`` fixes their order on the page."""
from __future__ import annotations

import html
import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Section:
    title: str
    intro: str = ""
    figures: list[tuple[str, str]] = field(default_factory=list)    # (png file name, caption)
    tables: list[str] = field(default_factory=list)                 # HTML fragments

    def html(self) -> str:
        figs = "".join(f"<figure><img src='{f}' alt='{html.escape(c)}'><figcaption>{html.escape(c)}</figcaption></figure>"
                       for f, c in self.figures)
        return f"<h2>{html.escape(self.title)}</h2><p>{self.intro}</p>{figs}{''.join(self.tables)}"


def table(header: list[str], rows: list[list], fmt=None) -> str:
    """A small HTML table; floats are shown with 3 significant digits unless ``fmt`` says otherwise."""
    def cell(v):
        if isinstance(v, float):
            return f"{v:.3g}" if fmt is None else fmt(v)
        return html.escape(str(v))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _save(fig, out: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out / name, dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return name


def _predict(scenario: dict):
    from sim.scenario import predict
    return predict(scenario)


# ---------------------------------------------------------------- hierarchical roofline
ROOFLINE_DEVICES = ["A100-SXM4-80GB", "H100-SXM5-80GB", "H200-SXM-141GB"]
CANONICAL = [  # kernels predicted on every roofline device (label, workload)
    *[(f"GEMM m={m}", {"kind": "gemm", "m": m, "n": 8192, "k": 8192, "dtype": "bf16"}) for m in (1, 16, 128, 1024, 8192)],
    *[(f"W4A16 m={m}", {"kind": "gemm", "m": m, "n": 8192, "k": 8192, "dtype": "fp16", "w_dtype": "int4"}) for m in (1, 16, 256)],
    *[(f"FA2 fwd s={s}", {"kind": "attention", "batch": 16384 // s, "heads": 16, "kv_heads": 16, "seq_q": s, "seq_kv": s,
                          "head_dim": 128, "causal": False, "dtype": "bf16", "pass": "fwd", "impl": "flash2"}) for s in (512, 4096)],
    ("decode attn", {"kind": "attention", "batch": 16, "heads": 32, "kv_heads": 32, "seq_q": 1, "seq_kv": 4096,
                     "head_dim": 128, "causal": False, "dtype": "fp16", "pass": "fwd", "impl": "paged"}),
]


def _intensity(pred) -> float:
    flops = pred.metrics.get("tflops", 0) * 1e12 * pred.time_s
    hbm = pred.breakdown.get("bytes", {}).get("hbm", 0)
    return flops / hbm if hbm else float("nan")


def roofline(out: Path) -> Section:
    import matplotlib.pyplot as plt
    from analysis.traces import load_published
    from sim.hardware import load_device

    rows = load_published()
    rows = rows[rows["family"].isin(["gemm", "attention"]) & (rows["metric"] == "tflops")]
    figs = []
    fig, axes = plt.subplots(1, len(ROOFLINE_DEVICES), figsize=(5.2 * len(ROOFLINE_DEVICES), 4.6), sharey=True)
    x = np.logspace(-1, 4, 200)
    for ax, name in zip(axes, ROOFLINE_DEVICES):
        d = load_device(name)
        for dt, ls in (("fp8", ":"), ("bf16", "-"), ("fp16", "-"), ("tf32", "--")):
            if dt in d.peak_tflops and not (dt == "fp16" and "bf16" in d.peak_tflops):
                ax.axhline(d.peak_tflops[dt], color="k", ls=ls, lw=1)
                ax.text(0.12, d.peak_tflops[dt] * 1.06, f"Tensor Core {dt}: {d.peak_tflops[dt]:g}", fontsize=7)
        ax.plot(x, x * d.hbm_Bps / 1e12, color="tab:red", lw=1.2, label=f"HBM {d.memory.bandwidth_gbps:g} GB/s")
        ax.plot(x, x * d.l2_Bps / 1e12, color="tab:orange", lw=1.2, label=f"L2 {d.l2_bandwidth_gbps:g} GB/s")
        for label, wl in CANONICAL:
            p = _predict({"hardware": name, "workload": wl, "parameters": "spec"})
            ax.scatter(_intensity(p), p.metrics["tflops"], marker="o", facecolors="none", edgecolors="tab:blue", s=28)
            ax.annotate(label, (_intensity(p), p.metrics["tflops"]), fontsize=6, xytext=(3, -8), textcoords="offset points")
        mine = rows[rows["hardware"] == name]
        for _, r in mine.iterrows():
            try:
                p = _predict({**json.loads(r["scenario"]), "parameters": "spec"})
            except Exception:   # noqa: BLE001  (a row the model cannot price is left off this plot)
                continue
            ax.scatter(_intensity(p), r["value"], marker="x", color="tab:green", s=18)
        ax.scatter([], [], marker="o", facecolors="none", edgecolors="tab:blue", label="predicted (canonical kernels)")
        if len(mine):
            ax.scatter([], [], marker="x", color="tab:green", label=f"published measurements ({len(mine)})")
        ax.set(xscale="log", yscale="log", xlim=(0.1, 1e4), ylim=(0.5, 5000), title=name,
               xlabel="arithmetic intensity (FLOP per HBM byte, model's traffic estimate)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("throughput (TFLOP/s)")
    figs.append((_save(fig, out, "roofline.png"),
                 "Hierarchical roofline per device: Tensor Core peak per dtype (horizontal), HBM and L2 bandwidth "
                 "(diagonals). Hollow circles: predicted canonical kernels; crosses: published GEMM and attention "
                 "measurements at the intensity the model assigns their shapes. H200 is predicted from its spec sheet only."))
    return Section("Hierarchical roofline", "Where each kernel sits against the ceilings of its device.", figs)


# ---------------------------------------------------------------- validation
def validation(out: Path) -> Section:
    import matplotlib.pyplot as plt
    from analysis.traces import load_all
    from analysis.validate import evaluate, summarize

    rows = load_all()
    res = {"spec": evaluate(rows, calibrated=False, budget_s=None),
           "calibrated": evaluate(rows, calibrated=True, budget_s=None)}
    summ = {k: summarize(v) for k, v in res.items()}
    fams = sorted({r["family"] for r in res["spec"]})
    cmap = plt.get_cmap("tab20")
    colors = {f: cmap(i % 20) for i, f in enumerate(fams)}
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(14, 5.6), gridspec_kw={"width_ratios": [1, 1.5]})
    allv = []
    for f in fams:
        pts = [(r["measured"], r["predicted"]) for r in res["spec"] if r["family"] == f and r["predicted"]]
        if pts:
            m, p = zip(*pts)
            allv += list(m) + list(p)
            ax.scatter(m, p, s=10, color=colors[f], label=f"{f} ({len(pts)})")
    lo, hi = min(allv) / 2, max(allv) * 2
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    for k in (0.5, 2):
        ax.plot([lo, hi], [lo * k, hi * k], "k:", lw=0.6)
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), title="every row, spec parameters",
           xlabel="measured (row's own unit: TFLOP/s, GB/s, s, x ...)", ylabel="predicted (same unit)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6, ncol=2, loc="upper left")
    shown = [f for f in fams if any(x["ratio"] for x in res["spec"] if x["family"] == f)]
    for k, (mode, results) in enumerate(res.items()):
        for i, f in enumerate(shown):
            r = np.array([x["ratio"] for x in results if x["family"] == f and x["ratio"]])
            if r.size:
                xs = i + (k - 0.5) * 0.36 + np.random.default_rng(i).uniform(-0.12, 0.12, r.size)
                bx.scatter(xs, r, s=6, alpha=0.5, color="tab:blue" if mode == "spec" else "tab:orange",
                           label=(f"{mode} parameters" if i == 0 else None))
                bx.plot([i + (k - 0.5) * 0.36 - 0.15, i + (k - 0.5) * 0.36 + 0.15], [np.median(r)] * 2, "k-", lw=2)
    bx.axhline(1, color="k", lw=0.8)
    for y in (0.5, 2):
        bx.axhline(y, color="k", ls=":", lw=0.6)
    bx.set(yscale="log", ylabel="predicted / measured", title="ratio per family (black bar: median)")
    bx.set_xticks(range(len(shown)), shown, rotation=45, ha="right", fontsize=8)
    bx.grid(True, axis="y", alpha=0.3)
    bx.legend(fontsize=7)
    figs = [(_save(fig, out, "validation.png"),
             "Left: predicted vs measured for every validation row (log-log; solid line equality, dotted 2x off). "
             "Right: predicted/measured per family with spec parameters (blue, no fitting) and with the calibrated "
             "profiles (orange; fitted on these rows, so the honest held-out error is in docs/calibration.md).")]
    pct = lambda v: "-" if v is None else f"{v * 100:.1f}%"   # noqa: E731
    trows = [[f, s["rows"], s["predicted"], pct(s["median"]), pct(s["p90"]), pct(summ["calibrated"]["by_family"][f]["median"])]
             for f, s in summ["spec"]["by_family"].items()]
    drows = [[d, s["rows"], s["predicted"], pct(s["median"]), pct(s["p90"]), pct(summ["calibrated"]["by_device"][d]["median"])]
             for d, s in summ["spec"]["by_device"].items()]
    hdr = ["", "rows", "predicted", "median |err| (spec)", "p90 (spec)", "median (calibrated)"]
    reasons = summ["spec"]["not_predicted"]
    tables = ["<h3>Error per family</h3>" + table(["family"] + hdr[1:], trows),
              "<h3>Error per device</h3>" + table(["device"] + hdr[1:], drows)]
    if reasons:
        tables.append("<h3>Rows not predicted</h3>" + table(["reason", "rows"], [[k, v] for k, v in reasons.items()]))
    return Section("Validation against published measurements",
                   "Error is |predicted / measured - 1|. Rows come from <code>traces/published/</code> "
                   "(and <code>traces/measured/</code> when kernels were run on a GPU).", figs, tables)


# ---------------------------------------------------------------- what-if curves
FACTORS = [0.5, 0.75, 1, 1.5, 2, 3, 4]
WHATIFS = [  # (resource, whatif field, scenario, metric, why this scenario feels that resource)
    ("HBM bandwidth", "hbm_bandwidth",
     {"hardware": "H100-SXM5-80GB", "model": "llama-2-70b", "cluster": {"gpus": 2},
      "workload": {"kind": "inference", "batch": 16, "prompt_len": 512, "gen_len": 256, "weights": "bf16",
                   "kv_cache": "bf16", "tp": 2}},
     "tokens_per_s", "LLaMA-2-70B decode, batch 16, TP=2 on H100: streams weights and KV cache from HBM"),
    ("NVLink bandwidth", "nvlink",
     {"hardware": "H100-SXM5-80GB", "model": "llama-2-70b", "cluster": {"gpus": 8, "gpus_per_node": 8},
      "workload": {"kind": "training", "global_batch": 64, "micro_batch": 1, "seq_len": 4096, "precision": "bf16",
                   "parallel": {"tp": 8, "pp": 1, "dp": 1, "zero": 1}, "recompute": "selective"}},
     "tokens_per_s", "LLaMA-2-70B training with TP=8 on one H100 node: two all-reduces per layer per pass over NVLink"),
    ("NVMe bandwidth", "nvme_bandwidth",
     {"hardware": "RTX-A6000", "model": "opt-66b",
      "workload": {"kind": "inference", "batch": 64, "prompt_len": 128, "gen_len": 32, "weights": "fp16",
                   "kv_cache": "fp16", "offload": {"weights": "nvme", "kv_cache": "none"}}},
     "tokens_per_s", "OPT-66B on one RTX A6000 with weights streamed from NVMe (ZeRO-Inference)"),
]


def _factor_ticks(ax):
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(FixedLocator([0.5, 1, 2, 4]))
        axis.set_minor_locator(NullLocator())
        axis.set_minor_formatter(NullFormatter())
    ax.set_xticklabels(["0.5", "1", "2", "4"])
    ax.set_yticklabels(["0.5", "1", "2", "4"])


def whatif(out: Path) -> Section:
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(WHATIFS), figsize=(5.2 * len(WHATIFS), 4.6))
    rows = []
    for ax, (res, fld, scen, metric, what) in zip(axes, WHATIFS):
        base = _predict({**scen, "parameters": "spec"}).metrics[metric]
        ys, bounds = [], []
        for f in FACTORS:
            p = _predict({**scen, "parameters": "spec", "whatif": {fld: f}})
            ys.append(p.metrics[metric] / base)
            bounds.append(p.bound)
        ax.plot(FACTORS, ys, "o-", label="predicted")
        ax.plot(FACTORS, FACTORS, "k:", lw=0.8, label="proportional to the resource")
        ax.set(xscale="log", yscale="log", xlabel=f"{res} (x spec of {scen['hardware']})",
               ylabel=f"{metric} relative to spec", ylim=(0.4, 5))
        ax.set_title(f"{res}\n" + textwrap.fill(what, 60), fontsize=9)
        _factor_ticks(ax)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
        rows.append([res, what, f"{base:.4g} {metric}", bounds[0], bounds[FACTORS.index(1)], bounds[-1]])
    figs = [(_save(fig, out, "whatif.png"),
             "Throughput as one resource scales from 0.5x to 4x its spec (everything else unchanged). A curve "
             "that flattens has moved its bottleneck elsewhere.")]
    tables = [table(["resource", "scenario", "at spec", "bound at 0.5x", "bound at 1x", "bound at 4x"], rows)]
    return Section("What-if: scaling one resource", "Hardware what-ifs use the scenario field <code>whatif</code>; "
                   "the same sweeps run at scale with <code>gpusim sweep</code>.", figs, tables)


# ---------------------------------------------------------------- memory per tier
def _train(hw, model, gpus, gpn, wl, **extra):
    return {"hardware": hw, "model": model, "cluster": {"gpus": gpus, "gpus_per_node": gpn},
            "workload": {"kind": "training", **wl}, "parameters": "spec", **extra}


def _infer(hw, model, wl, gpus=1):
    s = {"hardware": hw, "model": model, "workload": {"kind": "inference", **wl}, "parameters": "spec"}
    if gpus > 1:
        s["cluster"] = {"gpus": gpus}
    return s


MEMORY_HEADLINES = [
    ("GPT-3 175B, 1024 A100-80GB\nTP8 PP16 DP8, full recompute", _train(
        "A100-SXM4-80GB", "gpt3-175b", 1024, 8, {"global_batch": 1536, "micro_batch": 1, "seq_len": 2048, "precision": "fp16",
         "parallel": {"tp": 8, "pp": 16, "dp": 8, "schedule": "interleaved", "virtual_stages": 2}, "recompute": "full"})),
    ("13B on one V100-32GB\nno offload", _train(
        "V100-SXM2-32GB", "gpt3-13b", 1, 1, {"global_batch": 8, "micro_batch": 8, "seq_len": 1024, "precision": "fp16",
         "recompute": "full"})),
    ("13B on one V100-32GB\nZeRO-Offload (optimizer on CPU)", _train(
        "V100-SXM2-32GB", "gpt3-13b", 1, 1, {"global_batch": 8, "micro_batch": 8, "seq_len": 1024, "precision": "fp16",
         "recompute": "full", "offload": {"optimizer": "cpu"}})),
    ("1T on one DGX-2 (16 V100)\nZeRO-Infinity, NVMe", _train(
        "V100-SXM2-32GB", "megatron-1t", 16, 16, {"global_batch": 16, "micro_batch": 1, "seq_len": 1024, "precision": "fp16",
         "parallel": {"dp": 16, "zero": 3}, "recompute": "full",
         "offload": {"optimizer": "nvme", "params": "nvme"}})),
    ("LLaMA-2-70B inference, one A100\nFP16 weights", _infer(
        "A100-SXM4-80GB", "llama-2-70b", {"batch": 8, "prompt_len": 1024, "gen_len": 256, "weights": "fp16", "kv_cache": "fp16"})),
    ("LLaMA-2-70B inference, one A100\nFP6 weights (FP6-LLM)", _infer(
        "A100-SXM4-80GB", "llama-2-70b", {"batch": 8, "prompt_len": 1024, "gen_len": 256, "weights": "fp6", "kv_cache": "fp16"})),
    ("LLaMA-7B, 1M-token context\n2-bit KV (KVQuant)", _infer(
        "A100-SXM4-80GB", "llama-2-7b", {"batch": 1, "prompt_len": 1_000_000, "gen_len": 16, "weights": "fp16", "kv_cache": "int2",
                                                "prefill_chunk": 8192})),
]


def _memory_parts(pred) -> dict[str, dict[str, float]]:
    """{tier: {component: bytes}} from a training or inference prediction's breakdown."""
    b = pred.breakdown
    if "memory" in b and isinstance(b["memory"], dict):
        m = b["memory"]
        tiers = {"hbm": m.get("hbm_per_gpu", {}), "host": m.get("host_per_gpu", {}), "nvme": m.get("nvme_per_gpu", {})}
        return {t: {k: float(v) for k, v in parts.items() if isinstance(v, (int, float)) and k not in ("stage", "params_on_gpu")}
                for t, parts in tiers.items()}
    use = b.get("memory_use_bytes", {})
    return {"hbm": {k: float(v) for k, v in use.items() if isinstance(v, (int, float))},
            "host": {"host": pred.memory_bytes.get("host", 0.0)}, "nvme": {"nvme": pred.memory_bytes.get("nvme", 0.0)}}


def memory(out: Path) -> Section:
    import matplotlib.pyplot as plt
    from sim.hardware import load_device, load_host
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2), sharey=False)
    rows, comps = [], {}
    preds = [(label, scen, _predict(scen)) for label, scen in MEMORY_HEADLINES]
    cmap = plt.get_cmap("tab20")
    for ax, tier in zip(axes, ("hbm", "host", "nvme")):
        for i, (label, scen, p) in enumerate(preds):
            bottom = 0.0
            for comp, v in _memory_parts(p)[tier].items():
                if v <= 0:
                    continue
                color = comps.setdefault(comp, cmap(len(comps) % 20))
                ax.bar(i, v / 1e9, bottom=bottom, color=color, label=comp if comp not in ax.get_legend_handles_labels()[1] else None)
                bottom += v / 1e9
        ax.set_xticks(range(len(preds)), [l for l, _, _ in preds], rotation=60, ha="right", fontsize=6.5)
        ax.set(ylabel=f"GB per GPU ({tier})", title={"hbm": "GPU memory (HBM) per GPU", "host": "host DRAM per GPU",
                                                     "nvme": "NVMe per GPU"}[tier])
        if tier == "hbm":
            for i, (_, scen, _) in enumerate(preds):
                cap = load_device(scen["hardware"]).hbm_bytes / 1e9
                ax.plot([i - 0.4, i + 0.4], [cap, cap], "k-", lw=1.5)
        ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(0.0, -0.55), ncol=3)
        ax.grid(True, axis="y", alpha=0.3)
    for label, scen, p in preds:
        rows.append([label.replace("\n", ", "), "yes" if p.fits else "no",
                     *(f"{p.memory_bytes.get(t, 0) / 1e9:.1f}" for t in ("hbm", "host", "nvme")), p.bound])
    figs = [(_save(fig, out, "memory.png"),
             "Memory per tier for the headline training and inference scenarios (black bar: the device's HBM). "
             "A scenario that overflows a tier is a prediction (fits: false), shown with its breakdown.")]
    tables = [table(["scenario", "fits", "HBM GB/GPU", "host GB/GPU", "NVMe GB/GPU", "bound"], rows)]
    return Section("Memory per tier", "Weights, gradients, optimizer states, activations (Korthikanti et al. 2022), "
                   "KV cache and reserves, per GPU and per tier.", figs, tables)


# ---------------------------------------------------------------- DES timeline
TIMELINE = _train("A100-SXM4-80GB", "gpt3-1.3b", 4, 4,
                  {"global_batch": 8, "micro_batch": 1, "seq_len": 2048, "precision": "fp16",
                   "parallel": {"pp": 4, "dp": 1, "schedule": "1f1b"}, "engine": "des", "timeline": True})


def timeline(out: Path) -> Section:
    import matplotlib.pyplot as plt
    p = _predict(TIMELINE)
    ev = [e for e in (p.timeline or []) if e.get("ph") == "X"]
    if not ev:
        raise RuntimeError("the discrete-event engine returned no timeline events")
    lanes = sorted({(e["pid"], e["tid"]) for e in ev}, key=lambda x: (str(x[0]), str(x[1])))
    y = {lane: i for i, lane in enumerate(lanes)}
    fig, ax = plt.subplots(figsize=(13, 0.45 * len(lanes) + 1.6))
    kinds = {}
    cmap = plt.get_cmap("tab10")
    for e in ev:
        kind = str(e.get("cat") or e.get("name", "")).split(":")[0]
        c = kinds.setdefault(kind, cmap(len(kinds) % 10))
        ax.broken_barh([(e["ts"] / 1e3, e["dur"] / 1e3)], (y[(e["pid"], e["tid"])] - 0.4, 0.8), color=c)
    ax.set_yticks(range(len(lanes)), [f"GPU {pid}, {tid}" for pid, tid in lanes], fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel="time (ms)", title=f"1F1B pipeline, 4 stages x 8 micro-batches (GPT-3 1.3B, 4 A100): bubble "
           f"{p.metrics.get('bubble_fraction', float('nan')) * 100:.1f}% (uniform-stage closed form (p-1)/(m+p-1) = "
           f"{3 / 11 * 100:.1f}%; here the last stage also carries the LM head)")
    for k, c in kinds.items():
        ax.bar(0, 0, color=c, label=k)
    ax.legend(fontsize=7, ncol=6, loc="upper right")
    figs = [(_save(fig, out, "timeline.png"),
             "Timeline from the discrete-event engine (one lane per GPU and stream). The same events export to "
             "Chrome/Perfetto with gpusim predict --trace FILE.")]
    return Section("Pipeline timeline (discrete-event engine)", "", figs)


# ---------------------------------------------------------------- best parallel layouts
LAYOUT_CASES = [  # (model, device, GPUs, global batch, seq len)
    ("gpt3-13b", "A100-SXM4-80GB", 64, 512, 2048),
    ("llama-2-70b", "H100-SXM5-80GB", 256, 1024, 4096),
    ("gpt3-175b", "A100-SXM4-80GB", 1024, 1536, 2048),
]


def layouts(out: Path) -> Section:
    import matplotlib.pyplot as plt
    from analysis.search import TrainingContext, TrainingSpace, layout_label, search_training
    from sim.models import load_model
    fig, axes = plt.subplots(1, len(LAYOUT_CASES), figsize=(5.4 * len(LAYOUT_CASES), 4.2))
    tables = []
    for ax, (model, hw, gpus, gb, seq) in zip(axes, LAYOUT_CASES):
        space = TrainingSpace(load_model(model), gpus, 8, gb, seq, context_parallel=False)
        ctx = TrainingContext(hw, model, gpus, 8, gb, seq, "bf16" if "H100" in hw else "fp16", parameters="spec")
        df, summ = search_training(ctx, space, None, confirm_top=5)
        fit = df[df["fits"]]
        ax.scatter(fit["memory_hbm_gb"], fit["mfu"] * 100, s=5, alpha=0.35, color="tab:blue",
                   label=f"{len(fit)} layouts that fit")
        top = df[df["rank"].notna()].sort_values("rank").head(5)
        ax.scatter(top["memory_hbm_gb"], top["mfu"] * 100, s=30, color="tab:red", label="top 5")
        ax.axvline(load_device_gb(hw), color="k", ls=":", lw=0.8, label=f"{hw} HBM")
        ax.set(xlabel="HBM per GPU (GB)", ylabel="MFU (%)", title=f"{model}, {gpus} x {hw}\n"
               f"global batch {gb}, seq {seq}: {summ['evaluated']} layouts in {summ['wall_s']:.1f} s")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3)
        rows = [[int(r["rank"]), layout_label(r), f"{r['iteration_time_s']:.3g}", f"{r['tokens_per_s']:,.0f}",
                 f"{r['mfu'] * 100:.1f}%", f"{r['memory_hbm_gb']:.1f}", r["bound"]] for _, r in top.iterrows()]
        tables.append(f"<h3>{model} on {gpus} x {hw}</h3>" + table(
            ["rank", "layout", "iteration s", "tokens/s", "MFU", "HBM GB/GPU", "bound"], rows))
    figs = [(_save(fig, out, "layouts.png"),
             "Every valid parallel layout (TP, PP, DP, ZeRO stage, micro-batch, schedule, recompute, offload) "
             "that fits in memory, by HBM per GPU and MFU; red: the five fastest. From gpusim search.")]
    return Section("Best parallel layouts", "Layout search as Megatron and Calculon users do it by hand: "
                   "<code>gpusim search training --model M --gpus N --hardware D</code>. Spec parameters.",
                   figs, tables)


def load_device_gb(name: str) -> float:
    from sim.hardware import load_device
    return load_device(name).hbm_bytes / 1e9


def claims(out: Path) -> Section:
    from analysis.claims import section
    return section(out)


SECTIONS = {
    "claims": claims,
    "roofline": roofline,
    "validation": validation,
    "memory": memory,
    "timeline": timeline,
    "whatif": whatif,
    "layouts": layouts,
}
