"""Builds docs/benchmarks.md from the per-area result files in docs/benchmarks/.

    python benchmarks/assemble_docs.py

Each area's benchmark writes its own file (with the command that produced it); this joins
them under one table of contents, headings shifted one level down, in a fixed order.
"""
from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
ORDER = [
    ("throughput.md", "HPO runtime: trial throughput"),
    ("store.md", "Experiment store: paged reads at 10,000 and 100,000 trials"),
    ("webui.md", "Web UI at 100,000 trials, and live"),
    ("faults.md", "Trial runner overhead of the fault-safety changes"),
    ("hpo.md", "HPO algorithms: nniray vs the reference libraries"),
    ("tuners-core.md", "Core tuners (TPE, Anneal, Evolution, Random): quality and speed"),
    ("tuners-bo.md", "Model-based tuners (GP, Metis, SMAC, DNGO)"),
    ("tuners-hb.md", "Hyperband, BOHB, Curvefitting, PBT"),
    ("cli.md", "CLI and daemon timings"),
    ("compression.md", "Pruning: speedup over a 30-model zoo, and accuracy"),
    ("compression_core.md", "Compression core pruners on digits"),
    ("compression-advanced.md", "Advanced pruners on digits"),
    ("compression-zoo.md", "Pruning speedup on models nobody tuned it for (timm, HuggingFace, detection, U-Net, RNN)"),
    ("quantization.md", "Quantization: accuracy and ONNX Runtime int8 latency"),
    ("feature-engineering.md", "Feature engineering: NNI's selectors vs scikit-learn"),
    ("nas.md", "NAS: multi-trial strategies on a tabular digits benchmark"),
]


def main() -> None:
    head = (DOCS / "benchmarks" / "_summary.md").read_text() if (DOCS / "benchmarks" / "_summary.md").exists() else ""
    parts = ["# Benchmarks\n", "Every number below was produced by the command printed with it, on this project's "
             "machine class (2 cores, no GPU). Most were taken while other engineers' test suites loaded the "
             "machine, so wall times are upper bounds; CPU times are given where they matter.\n", head]
    toc, body = [], []
    for fname, title in ORDER:
        f = DOCS / "benchmarks" / fname
        if not f.exists():
            continue
        anchor = re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")
        toc.append(f"- [{title}](#{anchor})")
        text = f.read_text()
        text = re.sub(r"^# .*\n", "", text, count=1)  # the section title replaces the file's own
        text = re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", text, flags=re.M)
        # Images and links are relative to docs/benchmarks/.
        text = re.sub(r"\]\((?!http|#|/)([^)]+)\)", r"](benchmarks/\1)", text)
        body.append(f"## {title}\n\n{text.strip()}\n")
    (DOCS / "benchmarks.md").write_text("\n".join(parts + ["## Contents\n", "\n".join(toc), ""] + body))


if __name__ == "__main__":
    main()
