"""The transformer model zoo: dimensions only (``zoo.yaml``), and counts derived from them.

Parameter counts and FLOPs come from the dimensions, never from a table, so an inline model
(``{layers, hidden, heads, ...}``) gets the same treatment as a zoo name. The zoo's
``published_params_b`` is only there so the tests can hold the count against what the authors
published.

Counting conventions (docs/models.md has the long form):

* FLOPs are 2 per multiply-add. ``flops_per_token`` is the *forward* pass: every weight GEMM
  (LM head included; for MoE only the router and the ``top_k`` experts a token visits) plus the
  attention scores and context products, 2*2*seq*d_attn per layer, halved when causal (the
  FlashAttention convention). The embedding gather, norms, activations and bias adds are not
  counted (they are bandwidth work, not FLOPs anyone reports).
* Training = 3 x forward (backward is two GEMMs per forward GEMM): these are the *model* FLOPs
  behind MFU. Recomputation adds work the hardware does but the model does not need (HFU):
  full recompute adds one more forward of the layers (not of the LM head), so
  3 x forward + layers' forward, which is Narayanan et al.'s 96*B*s*l*h^2*(1 + s/6h + V/16lh).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sim.errors import InputError, pydantic_to_input_error

ZOO_FILE = Path(__file__).parent / "zoo.yaml"


class ModelSpec(BaseModel):
    """A decoder-only transformer. ``ffn`` is the MLP inner size (per expert for MoE).

    Defaults describe a LLaMA-style block (RMSNorm, no biases, rotary positions, untied output);
    GPT-3/OPT/BLOOM/Megatron-style models say ``norm: layernorm``, ``bias: all`` and their
    position scheme explicitly (the zoo does).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "inline"
    layers: int = Field(gt=0)
    hidden: int = Field(gt=0)
    heads: int = Field(gt=0)
    kv_heads: int | None = Field(default=None, gt=0, description="GQA/MQA groups; default = heads (MHA)")
    ffn: int = Field(gt=0)
    vocab: int = Field(gt=0)
    gated_mlp: bool = Field(default=False, description="SwiGLU/GeGLU: three MLP matrices instead of two")
    seq_len: int | None = Field(default=None, gt=0, description="training context length (informational)")
    experts: int = Field(default=1, gt=0, description="MLP experts per layer (1 = dense)")
    top_k: int = Field(default=1, gt=0, description="experts each token is routed to")
    tied_embeddings: bool = Field(default=False, description="output projection shares the input embedding")
    head_dim: int | None = Field(default=None, gt=0, description="default hidden/heads")
    published_params_b: float | None = Field(default=None, gt=0, description="the count its authors publish, billions")
    source: str = ""
    norm: Literal["layernorm", "rmsnorm"] = Field(
        default="rmsnorm", description="layernorm has a scale and a shift (2 params/hidden), rmsnorm a scale (1)")
    bias: Literal["none", "qkv", "all"] = Field(
        default="none", description="linear-layer biases: none (LLaMA), qkv only (Qwen2), all (GPT-3/OPT/BLOOM)")
    position_embedding: Literal["learned", "rope", "alibi", "none"] = Field(
        default="rope", description="learned adds a max_positions x hidden table; rope/alibi/none add no parameters")
    max_positions: int | None = Field(default=None, gt=0, description="rows of a learned position table; default seq_len")
    embedding_norm: bool = Field(default=False, description="a norm right after the token embedding (BLOOM)")

    @model_validator(mode="after")
    def _check(self):
        if self.kv_heads is not None and self.heads % self.kv_heads:
            raise ValueError(f"kv_heads: {self.kv_heads} must divide heads={self.heads}")
        if self.top_k > self.experts:
            raise ValueError(f"top_k: {self.top_k} must be <= experts={self.experts}")
        if self.head_dim is None and self.hidden % self.heads:
            raise ValueError(f"heads: {self.heads} must divide hidden={self.hidden} (or give head_dim)")
        if self.position_embedding == "learned" and self.n_positions is None:
            raise ValueError("max_positions: a learned position embedding needs max_positions (or seq_len)")
        return self

    # ---- shapes -------------------------------------------------------------------------------
    @property
    def n_kv_heads(self) -> int:
        return self.kv_heads or self.heads

    @property
    def d_head(self) -> int:
        return self.head_dim or self.hidden // self.heads

    @property
    def d_attn(self) -> int:
        """Width of the attention (heads x head_dim); equals hidden unless head_dim is set."""
        return self.heads * self.d_head

    @property
    def d_kv(self) -> int:
        return self.n_kv_heads * self.d_head

    @property
    def n_positions(self) -> int | None:
        return self.max_positions or self.seq_len

    @property
    def is_moe(self) -> bool:
        return self.experts > 1

    # ---- parameters of one layer --------------------------------------------------------------
    def _norm_params(self) -> int:
        return (2 if self.norm == "layernorm" else 1) * self.hidden

    def attn_matmul_params(self) -> int:
        """Q, K, V and output projection weights."""
        return self.hidden * (self.d_attn + 2 * self.d_kv) + self.d_attn * self.hidden

    def expert_matmul_params(self) -> int:
        """Weights of one MLP (one expert): up (x2 when gated) and down."""
        return (3 if self.gated_mlp else 2) * self.hidden * self.ffn

    def router_params(self) -> int:
        return self.hidden * self.experts if self.is_moe else 0

    def matmul_params_per_layer(self, active: bool = False) -> int:
        """Weights that take part in a GEMM (what TP shards and what FLOPs are counted on)."""
        n_exp = self.top_k if active else self.experts
        return self.attn_matmul_params() + n_exp * self.expert_matmul_params() + self.router_params()

    def bias_params_per_layer(self, active: bool = False) -> int:
        if self.bias == "none":
            return 0
        qkv = self.d_attn + 2 * self.d_kv
        if self.bias == "qkv":
            return qkv
        n_exp = self.top_k if active else self.experts
        mlp = (2 if self.gated_mlp else 1) * self.ffn + self.hidden
        return qkv + self.hidden + n_exp * mlp

    def norm_params_per_layer(self) -> int:
        """Two pre-norms per block (attention and MLP)."""
        return 2 * self._norm_params()

    def params_per_layer(self) -> int:
        return self.matmul_params_per_layer() + self.bias_params_per_layer() + self.norm_params_per_layer()

    def active_params_per_layer(self) -> int:
        """Parameters a token touches in one layer: all of attention, the router, top_k experts."""
        return (self.matmul_params_per_layer(active=True) + self.bias_params_per_layer(active=True)
                + self.norm_params_per_layer())

    # ---- whole model --------------------------------------------------------------------------
    def embedding_params(self) -> int:
        """Token table, plus a learned position table and an embedding norm where the model has them."""
        n = self.vocab * self.hidden
        if self.position_embedding == "learned":
            n += self.n_positions * self.hidden
        if self.embedding_norm:
            n += self._norm_params()
        return n

    def output_params(self) -> int:
        """The LM head's own weights: 0 when it shares the token embedding."""
        return 0 if self.tied_embeddings else self.vocab * self.hidden

    def final_norm_params(self) -> int:
        return self._norm_params()

    def n_params(self) -> int:
        return (self.layers * self.params_per_layer() + self.embedding_params()
                + self.output_params() + self.final_norm_params())

    def n_active_params(self) -> int:
        return (self.layers * self.active_params_per_layer() + self.embedding_params()
                + self.output_params() + self.final_norm_params())

    # ---- FLOPs and KV cache -------------------------------------------------------------------
    def attention_flops_per_token(self, seq_len: int, causal: bool = True) -> float:
        """QK^T and PV of every layer: 2 GEMMs x 2 FLOPs x seq x d_attn, halved when causal."""
        return self.layers * 4.0 * seq_len * self.d_attn * (0.5 if causal else 1.0)

    def flops_per_token(self, seq_len: int, causal: bool = True) -> float:
        """Forward FLOPs per token of a seq_len-token sequence (2 per multiply-add).

        Weight GEMMs (active experts only, LM head included) plus attention; norms, activations
        and the embedding gather are not FLOPs here. Training model FLOPs are 3x this.
        """
        gemm = 2.0 * (self.layers * self.matmul_params_per_layer(active=True) + self.vocab * self.hidden)
        return gemm + self.attention_flops_per_token(seq_len, causal)

    def training_flops_per_token(self, seq_len: int, causal: bool = True,
                                 recompute: Literal["none", "selective", "full"] = "none") -> float:
        """Hardware FLOPs of one training step per token (forward + backward + recomputation).

        ``none`` gives model FLOPs (3x forward, what MFU counts); ``selective`` re-runs the
        attention core (Korthikanti et al. 2022); ``full`` re-runs every layer's forward but not
        the LM head (Narayanan et al. 2021), the HFU numerator of the 2021 Megatron-LM table.
        """
        fwd = self.flops_per_token(seq_len, causal)
        extra = {"none": 0.0,
                 "selective": self.attention_flops_per_token(seq_len, causal),
                 "full": fwd - 2.0 * self.vocab * self.hidden}[recompute]
        return 3.0 * fwd + extra

    def kv_bytes_per_token(self, bytes_per_elem: float = 2) -> float:
        """K and V of every layer for one token: 2 x layers x kv_heads x head_dim x bytes."""
        return 2.0 * self.layers * self.n_kv_heads * self.d_head * bytes_per_elem


# ---- loading ----------------------------------------------------------------------------------
def _validate(data: dict, where: str, prefix: str = "") -> ModelSpec:
    """Validate dims; cross-field errors ('kv_heads: ...') are attributed to their field."""
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as e:
        # report an unknown field first: a typo ('hiden') also shows up as a missing 'hidden'
        errors = sorted(e.errors(), key=lambda x: x.get("type") != "extra_forbidden")
        err = pydantic_to_input_error(where, SimpleNamespace(errors=lambda: errors))
        field, problem = err.field, err.problem
        msg = errors[0].get("msg", "")
        if field == "<root>" and ": " in msg:
            head, _, rest = msg.removeprefix("Value error, ").partition(": ")
            if head in ModelSpec.model_fields:
                field, problem = head, rest
        raise InputError(where, prefix + field, problem) from None


@lru_cache(maxsize=1)
def _zoo() -> dict[str, dict]:
    data = yaml.safe_load(ZOO_FILE.read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def names() -> list[str]:
    """Names of the zoo's models."""
    return sorted(_zoo())


@lru_cache(maxsize=None)
def _load_named(name: str) -> ModelSpec:
    zoo = _zoo()
    if name not in zoo:
        raise InputError("scenario", "model", f"unknown model '{name}'; expected one of {names()}, "
                                              "a path to a YAML/JSON file or inline dims")
    return _validate({**zoo[name], "name": name}, str(ZOO_FILE), f"{name}.")


def _from_mapping(data: dict, where: str, prefix: str) -> ModelSpec:
    """Inline dims; ``base: <zoo name>`` starts from a zoo model and overrides the given fields."""
    data = dict(data)
    base = data.pop("base", None)
    if base is not None:
        if not isinstance(base, str):
            raise InputError(where, prefix + "base", f"expected a zoo model name, got {base!r}")
        parent = _load_named(base).model_dump(exclude={"published_params_b", "source"}, exclude_none=True)
        parent["name"] = f"{base}+" + ",".join(f"{k}={v}" for k, v in sorted(data.items()) if k != "name")
        data = {**parent, **data}
    return _validate(data, where, prefix)


def load_model(ref: Any, where: str = "scenario", prefix: str = "model.") -> ModelSpec:
    """A zoo name ('llama-2-70b'), a path to a YAML/JSON file of dims, a mapping of dims, or a spec.

    Errors name where, the field and what was expected: ``where``/``prefix`` say how the caller
    reached the model (default: a scenario's ``model:`` field).
    """
    if isinstance(ref, ModelSpec):
        return ref
    if isinstance(ref, dict):
        return _from_mapping(ref, where, prefix)
    if isinstance(ref, (str, Path)):
        s = str(ref)
        if s.endswith((".yaml", ".yml", ".json")) or "/" in s:
            from sim.hardware import read_yaml
            return _from_mapping(read_yaml(Path(s)), s, "")
        return _load_named(s)
    raise InputError(where, prefix.rstrip(".") or "model",
                     f"expected a zoo name, a file path or a mapping of dims, got {type(ref).__name__}")
