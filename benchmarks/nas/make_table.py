"""Train every architecture of the digits space once, briefly, and cache the table.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/nas/make_table.py

Writes benchmarks/nas/digits_table.json: {arch_key: {"val_acc", "test_acc", "params", "sample"}}
(validation accuracy is what strategies see; test accuracy is reported for the found model).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from digits_space import DigitsSpace, all_archs, arch_key, digits_splits, train_and_score  # noqa: E402

from nniray.nas.nn import freeze_model  # noqa: E402

OUT = Path(__file__).parent / "digits_table.json"


def main() -> None:
    torch.set_num_threads(1)
    splits = digits_splits()
    table, t0 = {}, time.time()
    for i, sample in enumerate(all_archs()):
        model = freeze_model(DigitsSpace, sample)
        val, test = train_and_score(model, splits)
        table[arch_key(sample)] = {"val_acc": round(val, 4), "test_acc": round(test, 4),
                                   "params": sum(p.numel() for p in model.parameters()), "sample": sample}
        if i % 25 == 0:
            print(f"{i} architectures, {time.time() - t0:.0f} s", flush=True)
    OUT.write_text(json.dumps(table, indent=0, sort_keys=True))
    print(f"{len(table)} architectures in {time.time() - t0:.0f} s -> {OUT}")


if __name__ == "__main__":
    main()
