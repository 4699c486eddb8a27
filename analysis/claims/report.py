"""The report's claims section: per family group, the model's prediction against the papers' value
(figures), the capacity predicates, and a table of every claim with its verdict and reason.
"""
from __future__ import annotations

import math
from pathlib import Path

from .registry import CLAIMS, STATUSES, Value, evaluate_all


GROUPS = (("Low-precision and sparse kernels", ("lowprec_gemm", "sparse_kernels"), "claims_kernels.png"),
          ("KV cache, attention and decoding", ("attention_kv", "decoding_accel"), "claims_kv_decoding.png"),
          ("Serving, collectives and power", ("serving_system", "collectives_overlap", "power_energy"),
           "claims_systems.png"),
          ("Parallel training and offload", ("parallel_training", "offload_tiering"), "claims_training.png"))
CAPACITY = (("Inference capacity claims", ("lowprec_gemm", "sparse_kernels", "attention_kv", "decoding_accel",
                                           "serving_system", "collectives_overlap", "power_energy"),
             "weights + KV cache + workspace within the devices' HBM", "claims_capacity.png"),
            ("Training capacity claims", ("parallel_training", "offload_tiering"),
             "model states and activations within HBM,\nhost DRAM and NVMe (where offloaded)",
             "claims_capacity_training.png"))
TICK_TIERS = ((1,), (2, 5), (3,), (1.5, 7), (1.25, 2.5, 4))   # mantissas, most round first


def log_ticks(lo: float, hi: float, min_gap: float) -> list[float]:
    """Round tick values on a log axis from ``lo`` to ``hi``, the roundest first, none closer than
    ``min_gap`` decades to another (so the labels never overlap, whatever the range)."""
    chosen: list[float] = []
    for tier in TICK_TIERS:
        for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
            for m in tier:
                t = float(f"{m}e{e}")
                if lo <= t <= hi and all(abs(math.log10(t / c)) >= min_gap for c in chosen):
                    chosen.append(t)
    return sorted(chosen)
COLOURS = {"reproduced": "tab:green", "partly": "tab:orange", "not reproduced": "tab:red"}


def fmt(v: Value) -> str:
    if v is None:
        return "not modelled"
    if isinstance(v, bool):
        return "fits" if v else "does not fit"
    if isinstance(v, tuple):
        return f"{v[0]:.3g} to {v[1]:.3g}"
    return f"{v:.3g}"


def _numeric_figure(ax, rows: list[dict], title: str) -> None:
    """One row per claim: published value or range (black, tolerance shaded grey) and the prediction
    (a point, or a bar when it is a band over an open input), coloured by status."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    for y, r in enumerate(rows):
        pub, pred, tol = r["published"], r["predicted"], r["tolerance"]
        a, b = pub if isinstance(pub, tuple) else (pub, pub)
        ax.barh(y, b * (1 + tol) - a * (1 - tol), left=a * (1 - tol), height=0.6, color="0.88", zorder=1)
        if a == b:
            ax.plot([a], [y], "kD", ms=6, zorder=3)
        else:
            ax.errorbar([(a + b) / 2], [y], xerr=[[(b - a) / 2], [(b - a) / 2]], fmt="none", ecolor="k",
                        capsize=4, lw=1.6, zorder=3)
        c = COLOURS[r["status"]]
        if pred is None:
            ax.text(a * 1.15, y, "not modelled", va="center", fontsize=7, color=c, style="italic")
        elif isinstance(pred, tuple):
            ax.plot(pred, [y + 0.18, y + 0.18], color=c, lw=5, solid_capstyle="butt", zorder=4)
            ax.plot(pred, [y + 0.18, y + 0.18], "|", color=c, ms=12, mew=2, zorder=4)
        else:
            ax.plot([pred], [y + 0.18], "o", color=c, ms=7, zorder=4)
    ax.set_yticks(range(len(rows)), [f"{r['key']} {r['paper']} [{r['hardware']}]\n{r['metric']}" for r in rows],
                  fontsize=7)
    ax.invert_yaxis()
    vals = [v for r in rows for x in (r["published"], r["predicted"]) if x is not None
            for v in (x if isinstance(x, tuple) else (x,))]
    vals += [(min(r["published"]) if isinstance(r["published"], tuple) else r["published"]) * (1 - r["tolerance"])
             for r in rows]
    ax.set_xscale("log")
    lo, hi = min(vals) * 0.8, max(vals) * 1.35
    ax.set_xlim(lo, hi)
    ax.xaxis.set_major_locator(FixedLocator(log_ticks(lo, hi, 0.045 * math.log10(hi / lo))))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("value in the row's metric, log scale (x = ratio to the paper's baseline; fractions of peak; "
                  "TFLOP/s or PFLOP/s; users)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.plot([], [], "kD", label="published (black bar: published range)")
    ax.barh([0], [0], color="0.88", label="published +- stated tolerance")
    for s, c in COLOURS.items():
        ax.plot([], [], "o", color=c, label=f"predicted: {s}")
    ax.plot([], [], color="0.4", lw=5, label="predicted band over an input the claim leaves open")
    below = -0.62 / (0.62 * len(rows) + 0.9)      # ~0.6 inch under the axes, clear of the x label
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, below), ncol=3, frameon=False)


def _predicate_figure(ax, rows: list[dict], title: str, xlabel: str) -> None:
    """Capacity predicates: what the paper says fits, and what the model says."""
    for y, r in enumerate(rows):
        for x, v in ((0, r["published"]), (1, r["predicted"])):
            ax.plot([x], [y], "o" if v else "X", ms=11, color="tab:green" if v else "tab:red")
            ax.text(x + 0.08, y, "fits" if v else "does not fit", va="center", fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{r['key']} {r['paper']} [{r['hardware']}]" for r in rows], fontsize=7)
    ax.set_xticks([0, 1], ["paper\n(or what its claim implies)", "model\n(spec efficiencies)"])
    ax.set(xlim=(-0.4, 1.8), ylim=(len(rows) - 0.5, -0.5), xlabel="capacity predicate:\n" + xlabel)
    ax.set_title(f"{title} (fits / does not fit)", fontsize=10)


def section(out: Path):
    """The report's claims section: per family group, predicted against published, and a table of all."""
    import matplotlib.pyplot as plt
    from analysis.figures import Section, _save, table
    out = Path(out)
    rows = evaluate_all()
    for r in rows:
        r["hardware"] = CLAIMS[r["key"]].hardware
    figs = []
    for title, fams, name in GROUPS:
        num = [r for r in rows if r["family"] in fams and not isinstance(r["published"], bool)]
        if not num:
            continue
        fig, ax = plt.subplots(figsize=(11, 0.62 * len(num) + 2.2))
        _numeric_figure(ax, num, f"{title}: predicted vs the papers' claims (model with spec efficiencies)")
        missing = [f for f in fams if not any(r["family"] == f for r in rows)]
        cap = (f"{title}: each row is one claim, its device in brackets. Black: the paper's number or range, "
               "grey its stated tolerance; coloured: the model's prediction.")
        if missing:
            cap += " No claim registered yet for: " + ", ".join(missing) + "."
        figs.append((_save(fig, out, name), cap))
    for title, fams, xlabel, name in CAPACITY:
        preds = [r for r in rows if r["family"] in fams and isinstance(r["published"], bool)]
        if preds:
            fig, ax = plt.subplots(figsize=(7.5, 0.5 * len(preds) + 1.4))
            _predicate_figure(ax, preds, title, xlabel)
            figs.append((_save(fig, out, name), f"{title}: does the model say the paper's configuration fits in "
                         "memory, as the paper does (or as its claim implies)?"))
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    short = [r["claim"] if len(r["claim"]) <= 110 else r["claim"][:107] + "..." for r in rows]
    tab = table(["claim", "paper", "quote (TECHNIQUES.md)", "device", "setup", "metric", "published", "predicted",
                 "tol.", "status", "why"],
                [[r["key"], r["paper"], q, r["hardware"], r["setup"], r["metric"], fmt(r["published"]),
                  fmt(r["predicted"]), f"{r['tolerance'] * 100:.3g}%", r["status"], r["why"]]
                 for r, q in zip(rows, short)])
    intro = (f"{len(rows)} checkable claims from shared/TECHNIQUES.md, each predicted by the model with its spec "
             f"efficiencies: {counts['reproduced']} reproduced, {counts['partly']} partly, "
             f"{counts['not reproduced']} not reproduced (each with its reason). The training claims "
             "(parallel_training, offload_tiering, and Ulysses and MegaScale in collectives_overlap) run the training "
             "model at the papers' scale, up to 12,288 GPUs.")
    return Section("Technique claims: predicted vs published", intro, figs, [tab])
