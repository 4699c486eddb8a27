"""One registry of the papers' checkable claims (shared/TECHNIQUES.md), used by the claim tests and
the report, so that a claim's setup and its prediction are written once.

Each ``Claim`` carries the verbatim quote, the setup the prediction uses, the published value (a
number, a (lo, hi) range, or True/False for a capacity predicate), a relative tolerance, and a
zero-argument ``predict`` that runs the model with the spec efficiencies (``parameters: spec``,
the model before any fitting, so a calibration run cannot move these checks). ``status()`` is
computed by comparing the prediction to the published value (``judge``); ``why`` documents every
claim the model does not reproduce (a missing setup detail, a FLOP convention, an accuracy-side
input). A prediction may be a band (lo, hi) when the claim leaves an input open (lengths,
acceptance rates, the mix of formats): the band spans the plausible values of that input.

Layout: ``registry`` (the Claim record, ``judge`` and the ordered table), ``common`` (the setup
helpers all families share), one module per group of families (``kernels``, ``inference``,
``training``), each registering its claims on import, and ``report`` (the report section). The
family modules are imported here in a fixed order, which is the order the report lists the claims.

Helpers that return more than the headline number (``fp6_llm_ratios``, ``kivi_ratios`` ...) are
what the tests call for their extra physics assertions; the registry entries call the same helpers,
and this package re-exports them so that ``from analysis import claims as C; C.kivi_ratios()`` works.
"""
from .registry import CLAIMS, FAMILIES, STATUSES, Claim, Value, claim, evaluate_all, judge, not_modelled
from .common import A100, H100, infer, train, with_eff
from .kernels import (FLASH_LLM_README, FP6_BATCHES, comet_kernel_speedups, dgq_speedups, flash_llm_band,
                      flash_llm_ratios, fp6_llm_ratios, glm130b, gptq_fits, gptq_speedups, gptq_t4_latencies)
from .inference import (TRIFORCE_ACCEPTANCE, kivi_ratios, kvquant_fits, ladder_overlap_speedups, long_context_34b,
                        oscar_batch1, triforce_ar, triforce_speedup, zero_inference)
from .training import (DGX2_IB, INTERLEAVE_BATCHES, MEZO_CASES, V100, fuyou_13b, fuyou_175b, gpt, interleave_gains,
                       megascale, megatron_1t, megatron_2019, mezo, mezo_memory_ratio, ulysses_times, zero_100b,
                       zero_13b_fits, zero_infinity_1t, zero_infinity_512, zero_offload_10b, zero_offload_fits)
from .report import CAPACITY, GROUPS, log_ticks, section
