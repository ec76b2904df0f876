"""The fused training driver lives in :mod:`nniray.compression.base.fused` (pruners use it too)."""
from ..base.fused import chain_of, run_fused

__all__ = ["run_fused", "chain_of"]
