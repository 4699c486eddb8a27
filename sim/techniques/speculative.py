"""Speculative decoding: a draft proposes k tokens, the target verifies them in one step.

One speculation step at context c costs k draft steps plus one target forward of k + 1 tokens
per sequence (the verification; memory-bound, so nearly the price of one decode step while the
weight stream dominates). With a per-token acceptance rate a (independent tokens, Leviathan et
al. 2023, "Fast Inference from Transformers via Speculative Decoding", eq. 1) the step emits on
average

    E = (1 - a^(k+1)) / (1 - a)

tokens (the accepted prefix plus the target's own next token); ``mean_accepted`` gives E
directly (Spec-Bench's tau counts the same tokens). Time per output token = step time / E.

The draft is a zoo model, inline dims, or ``'self'``: the target itself attending to at most
``draft_kv_budget`` cached tokens (TriForce's retrieval cache, StreamingLLM). A draft may itself
be speculative (``draft_speculative``): its per-token time is then its own step time over its
own E, which gives TriForce's hierarchy (tiny model -> target with sparse KV -> target). When
the target is offloaded, its verification pays the per-layer fetch (``offload_inference``), so
speculation amortises one PCIe stream over E tokens: the regime where it pays off most.
Acceptance is an accuracy-side input, never predicted here.
"""
from __future__ import annotations

from sim.techniques.inference import Agg, StepModel, make_plan, static_run
from sim.techniques.layers import check_parallel


def expected_tokens(spec) -> float:
    """Tokens emitted per verification step (accepted drafts + the bonus token)."""
    if spec.mean_accepted is not None:
        return spec.mean_accepted
    a, k = spec.acceptance, spec.k
    return (1 - a ** (k + 1)) / (1 - a) if a > 0 else 1.0


class Level:
    """One level of a (possibly hierarchical) speculation: a step model, and the draft under it."""

    def __init__(self, wl, plan, sm: StepModel, spec):
        self.plan, self.sm, self.spec = plan, sm, spec
        self.draft = _draft_level(wl, plan, spec) if spec is not None else None
        self.E = expected_tokens(spec) if spec is not None else 1.0

    def step(self, b: int, ctx: float) -> tuple[float, Agg]:
        """One step of this level: (time, Agg of the target-side work)."""
        if self.spec is None:
            a = self.sm.step(n_decode=b, decode_ctx=ctx)
            return a.time, a
        k = self.spec.k
        t_draft = k * self.draft.per_token(b, ctx)
        verify = self.sm.step(n_decode=b, decode_ctx=ctx, seq_q_decode=k + 1)
        return t_draft + verify.time, verify

    def per_token(self, b: int, ctx: float) -> float:
        t, _ = self.step(b, ctx)
        return t / self.E


def _draft_level(wl, target_plan, spec) -> Level:
    from sim.models import load_model
    if isinstance(spec.draft_model, str) and spec.draft_model == "self":
        model = target_plan.model
        weights = spec.draft_weights or wl.weights
    else:
        model = load_model(spec.draft_model, prefix="workload.speculative.draft_model.")
        weights = spec.draft_weights or target_plan.act
    tp = spec.draft_tp or target_plan.tp
    try:
        check_parallel(model, tp)
    except ValueError:
        tp = 1                                   # a tiny draft that TP cannot split runs whole
    plan = make_plan(wl, target_plan.system, model, weights=weights, tp=tp, pp=1,
                     kv_budget=spec.draft_kv_budget)
    return Level(wl, plan, StepModel(plan), spec.draft_speculative)


def speculative_run(wl, plan, sm: StepModel, batch: int, chunk: int | None):
    """Prefill (target, plus the draft's own prefill unless it is the target itself), then
    speculation steps until gen_len tokens. Returns (prefill Agg, decode Agg, metrics)."""
    from sim.techniques.inference import _integrate
    spec = wl.speculative
    top = Level(wl, plan, sm, spec)
    pre, _ = static_run(plan, sm, batch, wl.prompt_len, 1, chunk)
    d = top.draft
    while d is not None:
        if d.plan.model is not plan.model:
            dp, _ = static_run(d.plan, d.sm, batch, wl.prompt_len, 1, chunk)
            pre.add(dp)
        d = d.draft
    dec = Agg()
    P, G = wl.prompt_len, wl.gen_len
    info = {"spec_tokens_per_step": top.E}
    if G > 1:
        seen = {}

        def f(c):
            t, verify = top.step(batch, c)
            seen[c] = (t, verify)
            return t / top.E
        dec.time = _integrate(f, P + 1, P + G - 1)
        mid_c = min(seen, key=lambda c: abs(c - (P + G / 2)))
        t_mid, verify = seen[mid_c]
        steps = (G - 1) / top.E
        dec.add(verify, steps)
        dec.time = _integrate(f, P + 1, P + G - 1)
        draft_t = t_mid - verify.time
        dec.parts["draft"] = draft_t * steps
        dec.bounds["draft"] = draft_t * steps
        info.update({"spec_step_s": t_mid, "spec_draft_share": draft_t / t_mid})
    return pre, dec, info
