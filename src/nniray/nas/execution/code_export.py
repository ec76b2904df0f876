"""``export_top_models(formatter='code')``: an architecture as standalone PyTorch source.

The concrete model of the architecture (built under ``fixed_arch``) is traced with ``torch.fx``
and written with ``GraphModule.to_folder``: a ``module.py`` whose class rebuilds the network
(submodules as ``torch.nn`` constructors, the forward as straight-line code).  This returns that
text without its weight-loading line: the code is the architecture (freshly initialised), plain
torch with no nniray import.  A model torch.fx cannot trace (data-dependent
control flow in ``forward``) is refused with torch.fx's reason.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

__all__ = ["model_to_code"]


def model_to_code(model: Any, class_name: str = "ExportedModel") -> str:
    import copy

    import torch.fx
    model = copy.deepcopy(model)
    for m in model.modules():
        # the drop-in classes (nniray.nas.nn.Conv2d, ...) only wrap __init__: give torch.fx (leaf modules,
        # reprs in module.py) the torch.nn class itself
        if type(m).__module__ == "nniray.nas.nn.pytorch" and getattr(type(m), "_nniray_basic_unit", False):
            m.__class__ = type(m).__bases__[0]
    try:
        gm = torch.fx.symbolic_trace(model)
    except Exception as e:  # noqa: BLE001 - fx raises many kinds; the reason is what matters
        raise ValueError(f"formatter='code': torch.fx cannot trace {type(model).__name__} ({type(e).__name__}: "
                         f"{e}); export with formatter='dict' and build the model with fixed_arch") from None
    with tempfile.TemporaryDirectory() as d:
        gm.to_folder(d, class_name)
        code = (Path(d) / "module.py").read_text()
    # the weights stay with the model (state_dict); the code is the architecture, so drop the line
    # that would load them from the temporary folder
    return "\n".join(line for line in code.splitlines() if "torch.load(" not in line) + "\n"
