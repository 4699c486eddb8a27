"""``gpusim report``: the study report, one HTML page and the PNGs it shows, in ``report/``.

Built from bundled data only (zoos, traces/published, calibrated profiles); no GPU. Each section
is a function in ``analysis.figures`` returning a ``Section``; a section that fails is shown on
the page as failed, with the reason, and makes the command exit non-zero, so a broken figure is
never silently missing.
"""
from __future__ import annotations

import html
import time
import traceback
from pathlib import Path


def add_arguments(p):
    p.add_argument("--out", default="report", help="output folder (default: report/)")
    p.add_argument("--only", help="comma-separated section names to build (default: all)")


def build(out: Path, only: set[str] | None = None) -> tuple[Path, list[str]]:
    import matplotlib
    matplotlib.use("Agg")
    from analysis import figures

    out.mkdir(parents=True, exist_ok=True)
    failed, parts = [], []
    for name, fn in figures.SECTIONS.items():
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        try:
            sec = fn(out)
            body = sec.html()
        except Exception as e:   # noqa: BLE001  (shown on the page and in the exit status)
            failed.append(f"{name}: {type(e).__name__}: {e}")
            body = (f"<h2>{html.escape(name)}</h2><p class='fail'>This section failed: "
                    f"{html.escape(type(e).__name__)}: {html.escape(str(e))}</p>"
                    f"<pre>{html.escape(traceback.format_exc()[-2000:])}</pre>")
        parts.append(f"<section id='{name}'>{body}<p class='t'>built in {time.perf_counter() - t0:.1f} s</p></section>")
        print(f"  {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    toc = "".join(f"<li><a href='#{n}'>{n.replace('_', ' ')}</a></li>" for n in figures.SECTIONS
                  if not only or n in only)
    page = _PAGE.format(toc=toc, body="\n".join(parts), date=time.strftime("%Y-%m-%d %H:%M"))
    index = out / "index.html"
    index.write_text(page)
    return index, failed


def run(args) -> int:
    only = set(args.only.split(",")) if args.only else None
    t0 = time.perf_counter()
    index, failed = build(Path(args.out), only)
    print(f"report: {index} ({time.perf_counter() - t0:.0f} s)")
    for f in failed:
        print(f"section failed: {f}")
    return 1 if failed else 0


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>gpusim study report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1150px; margin: 2em auto; padding: 0 1em; color: #222; }}
h1 {{ margin-bottom: 0.2em; }} h2 {{ border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }}
img {{ max-width: 100%; border: 1px solid #eee; }} figure {{ margin: 1em 0; }}
figcaption {{ font-size: 0.9em; color: #555; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; }}
td, th {{ border: 1px solid #ddd; padding: 3px 7px; text-align: right; }} th {{ background: #f4f4f4; }}
td:first-child, th:first-child {{ text-align: left; }}
.fail {{ color: #b00; font-weight: bold; }} .t {{ font-size: 0.75em; color: #999; }}
.ok {{ color: #070; }} .bad {{ color: #b00; }}
</style></head><body>
<h1>gpusim: how LLM systems techniques perform on GPU machines</h1>
<p>Predictions of gpusim's analytical and discrete-event models, held against published measurements
(<code>traces/published/</code>, each row with its source). Generated {date} by <code>gpusim report</code>
from bundled data; no GPU was used. Every number on this page can be reproduced with
<code>gpusim predict</code>, <code>gpusim validate</code> and <code>gpusim search</code>.</p>
<ul>{toc}</ul>
{body}
</body></html>
"""
