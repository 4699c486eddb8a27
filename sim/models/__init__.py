"""The transformer model zoo: dimensions only (``zoo.yaml``), and counts derived from them.

Parameter counts and FLOPs come from the dimensions, never from a table, so an inline model
(``{layers, hidden, heads, ...}``) gets the same treatment as a zoo name.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sim.errors import InputError, pydantic_to_input_error

ZOO_FILE = Path(__file__).parent / "zoo.yaml"


class ModelSpec(BaseModel):
    """A decoder-only transformer. ``ffn`` is the MLP inner size (per expert for MoE)."""

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

    @model_validator(mode="after")
    def _check(self):
        if self.kv_heads is not None and self.heads % self.kv_heads:
            raise ValueError(f"kv_heads: {self.kv_heads} must divide heads={self.heads}")
        if self.top_k > self.experts:
            raise ValueError(f"top_k: {self.top_k} must be <= experts={self.experts}")
        if self.head_dim is None and self.hidden % self.heads:
            raise ValueError(f"heads: {self.heads} must divide hidden={self.hidden} (or give head_dim)")
        return self

    @property
    def n_kv_heads(self) -> int:
        return self.kv_heads or self.heads

    @property
    def d_head(self) -> int:
        return self.head_dim or self.hidden // self.heads
