"""The claim registry: what a checkable claim of shared/TECHNIQUES.md records, how its status is
judged against the published value, and the ordered table every family module registers into.

Kept apart from the families' setups so that the rules of judgement are read in one place, and so
that the report and the tests see one ordered registry whichever family modules filled it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

FAMILIES = ("lowprec_gemm", "sparse_kernels", "attention_kv", "decoding_accel", "serving_system",
            "collectives_overlap", "parallel_training", "offload_tiering", "power_energy")
STATUSES = ("reproduced", "partly", "not reproduced")

Value = float | bool | tuple[float, float] | None


@dataclass
class Claim:
    key: str                        # unique registry key, '<TECHNIQUES id>.<part>'
    id: str                         # TECHNIQUES.md id, e.g. 'A1'
    family: str                     # one of FAMILIES
    paper: str
    claim: str                      # verbatim quote, an exact substring of TECHNIQUES.md
    hardware: str                   # the device(s) the prediction runs on ('assumed' where the paper is silent)
    setup: str                      # baseline and the inputs the prediction uses
    metric: str                     # what the numbers measure, with unit
    published: Value                # number, (lo, hi) range, or True/False for a capacity predicate
    tolerance: float                # relative, on the published number or range ends
    predict: Callable[[], Value] | None = None   # None: the model has no mechanism for this claim
    why: str = ""                   # reason when partly / not reproduced
    _value: Any = field(default=None, init=False, repr=False)
    _done: bool = field(default=False, init=False, repr=False)

    def value(self) -> Value:
        """The prediction, computed once per process."""
        if not self._done:
            v = None if self.predict is None else self.predict()
            if isinstance(v, tuple):
                v = (float(min(v)), float(max(v)))
            elif v is not None and not isinstance(v, bool):
                v = float(v)
            self._value, self._done = v, True
        return self._value

    def status(self) -> str:
        return judge(self.value(), self.published, self.tolerance)


def judge(predicted: Value, published: Value, tol: float) -> str:
    """Reproduced when the prediction matches within ``tol`` (relative); 'partly' when the
    prediction is a band over an input the claim leaves open and the published value only lies in
    it, or when a predicted band overlaps a published range without matching both ends.

    - no prediction (not modelled) -> not reproduced;
    - predicate (bool): equal -> reproduced;
    - number vs number: |p/x - 1| <= tol; number vs range: inside the range widened by tol;
    - band vs number: inside the band widened by tol -> partly;
    - band vs range: both ends within tol -> reproduced; overlapping -> partly.
    """
    if predicted is None:
        return "not reproduced"
    if isinstance(published, bool) or isinstance(predicted, bool):
        return "reproduced" if predicted is published else "not reproduced"
    pub_range = isinstance(published, tuple)
    a, b = published if pub_range else (published, published)
    lo_ok, hi_ok = a * (1 - tol), b * (1 + tol)
    if not isinstance(predicted, tuple):
        if pub_range:
            return "reproduced" if lo_ok <= predicted <= hi_ok else "not reproduced"
        return "reproduced" if abs(predicted / a - 1) <= tol + 1e-12 else "not reproduced"
    lo, hi = predicted
    if pub_range and abs(lo / a - 1) <= tol and abs(hi / b - 1) <= tol:
        return "reproduced"
    return "partly" if lo <= hi_ok and hi >= lo_ok else "not reproduced"


CLAIMS: dict[str, Claim] = {}


def claim(key: str, **kw):
    """Decorator: register the decorated zero-argument function as the claim's ``predict``."""
    def deco(fn):
        _add(Claim(key=key, predict=fn, **kw))
        return fn
    return deco


def not_modelled(key: str, **kw) -> None:
    """Register a claim the model has no mechanism for; ``why`` says what is missing."""
    _add(Claim(key=key, predict=None, **kw))


def _add(c: Claim) -> None:
    if c.key in CLAIMS:
        raise ValueError(f"claim {c.key!r} registered twice")
    if c.family not in FAMILIES:
        raise ValueError(f"claim {c.key!r}: family {c.family!r} not one of {FAMILIES}")
    CLAIMS[c.key] = c


def evaluate_all() -> list[dict]:
    """One row per claim: what the paper says, what the model predicts, and the verdict."""
    return [{"key": c.key, "id": c.id, "family": c.family, "paper": c.paper, "claim": c.claim,
             "setup": c.setup, "metric": c.metric, "published": c.published, "tolerance": c.tolerance,
             "predicted": c.value(), "status": c.status(), "why": c.why} for c in CLAIMS.values()]
