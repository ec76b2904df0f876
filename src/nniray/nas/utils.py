"""``original_state_dict_hooks``: move weights between a model space and a concrete model.

A concrete model built by ``fixed_arch`` holds each chosen LayerChoice candidate where the
LayerChoice was (``layer.weight``); the space holds it under the candidate's name
(``layer.<name>.weight``).  Inside ``with original_state_dict_hooks(model):`` the concrete
model's ``state_dict()`` uses the space's keys and ``load_state_dict()`` accepts them, so a
supernet checkpoint loads onto the chosen architecture (SPOS-style multi-stage NAS).
Repeat blocks and Cell/InputChoice need no renaming (same keys in both forms).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn

__all__ = ["original_state_dict_hooks", "to_original_key"]


def _marks(model: nn.Module) -> dict[str, str]:
    return {path: m._nniray_chosen_name for path, m in model.named_modules()
            if getattr(m, "_nniray_chosen_name", None) is not None}


def to_original_key(key: str, marks: dict[str, str]) -> str:
    parts = key.split(".")
    out: list[str] = []
    if "" in marks:
        out.append(marks[""])
    for i, part in enumerate(parts[:-1]):
        out.append(part)
        path = ".".join(parts[: i + 1])
        if path in marks:
            out.append(marks[path])
    out.append(parts[-1])
    return ".".join(out)


@contextlib.contextmanager
def original_state_dict_hooks(model: nn.Module) -> Iterator[nn.Module]:
    marks = _marks(model)
    own_keys = list(model.state_dict().keys())
    to_fixed = {to_original_key(k, marks): k for k in own_keys}

    def save_hook(module, state_dict, prefix, local_metadata):
        for k in list(state_dict.keys()):
            if k.startswith(prefix):
                new = prefix + to_original_key(k[len(prefix):], marks)
                if new != k:
                    state_dict[new] = state_dict.pop(k)
        return state_dict

    def load_hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        for k in list(state_dict.keys()):
            if k.startswith(prefix) and k[len(prefix):] in to_fixed:
                state_dict[prefix + to_fixed[k[len(prefix):]]] = state_dict.pop(k)

    h1 = model._register_state_dict_hook(save_hook)
    h2 = model._register_load_state_dict_pre_hook(load_hook)
    try:
        yield model
    finally:
        h1.remove()
        h2.remove()
