"""Turn run records into the markdown table and the best-so-far plots.

Regret of a run = best value found within the budget − reference.  Reference = the known optimum
for the synthetic functions; for the ML tasks (optimum unknown) it is the lowest CV error found
by any optimizer in any seed of this run, so regret 0 means "as good as the best anyone found".
Mean rank = for each problem rank the contenders by mean regret (ties share the average rank),
then average over problems.  Contenders that errored on a problem are ranked last there; one
that refuses the problem's search-space types (SearchSpaceError) is not ranked there ("n/a").
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from .problems import PROBLEMS

REFERENCE_RANKS = {"Optuna GP": 1.8, "bayes-opt GP": 3.2, "Optuna TPE": 3.4, "NNI 3.0 Anneal": 4.4,
                   "NNI 3.0 TPE": 4.6, "hyperopt TPE": 7.0, "Optuna CMA-ES": 7.0, "NNI 3.0 SMAC": 7.6,
                   "NNI 3.0 Evolution": 7.6, "Random": 8.4}
# our contender name -> the name for the same optimizer
REFERENCE_NAME = {"Optuna GP": "Optuna GP", "bayes-opt GP": "bayes-opt GP", "Optuna TPE": "Optuna TPE",
                  "nniray Anneal": "NNI 3.0 Anneal", "nniray TPE": "NNI 3.0 TPE", "hyperopt TPE": "hyperopt TPE",
                  "Optuna CMA-ES": "Optuna CMA-ES", "nniray SMAC": "NNI 3.0 SMAC",
                  "nniray Evolution": "NNI 3.0 Evolution", "nniray Random": "Random"}
MODEL_BASED = ["nniray TPE", "nniray Anneal", "nniray Evolution", "nniray GPTuner", "nniray SMAC",
               "nniray MetisTuner", "nniray DNGOTuner", "nniray PPOTuner", "nniray BOHB (full budget)"]
REFERENCE_TIMES = {"NNI TPE": "1.4 ms", "Optuna TPE": "2.6 ms", "Optuna GP": "174 ms",
                   "bayesian-optimization": "286 ms", "NNI GP": "6.9 s"}


def best_so_far(values: list[float]) -> np.ndarray:
    return np.minimum.accumulate(np.asarray(values, dtype=float))


def _unsupported(r: dict) -> bool:
    """A search-space type the optimizer declares unsupported (e.g. Metis and loguniform, as in
    NNI's support matrix): not applicable on that problem, not a failure."""
    return bool(r.get("error")) and str(r["error"]).startswith("SearchSpaceError")


def aggregate(records: list[dict], contenders: list[str], problems: list[str]) -> dict:
    unsupported = {(r["contender"], r["problem"]): r["error"] for r in records if _unsupported(r)}
    records = [r for r in records if not _unsupported(r)]
    # Compare like with like: on each problem keep only the seeds every contender finished
    # (matters only for a partial, resumed run).
    seeds_used = {}
    for p in problems:
        per = [{r["seed"] for r in records if r["problem"] == p and r["contender"] == c} for c in contenders]
        per = [s for s in per if s]
        seeds_used[p] = sorted(set.intersection(*per)) if per else []
    records = [r for r in records if r["problem"] in seeds_used and r["seed"] in seeds_used[r["problem"]]]
    ok = [r for r in records if not r.get("error")]
    ref = {}
    for p in problems:
        fstar = PROBLEMS[p].f_star
        if fstar is None:
            vals = [min(r["values"]) for r in ok if r["problem"] == p and r["values"]]
            fstar = min(vals) if vals else 0.0
        ref[p] = fstar
    curves = defaultdict(list)  # (contender, problem) -> list of regret curves
    errors, capped = {}, defaultdict(int)
    for r in records:
        key = (r["contender"], r["problem"])
        if r.get("error"):
            errors[key] = r["error"]
            continue
        curves[key].append(np.maximum(best_so_far(r["values"]) - ref[r["problem"]], 0.0))
        if r.get("capped_at") is not None:
            capped[key] += 1
    stats = {}
    for key, cs in curves.items():
        finals = np.array([c[-1] for c in cs])
        n = max(len(c) for c in cs)  # equal in real runs; pad with the last value otherwise
        padded = np.stack([np.concatenate([c, np.full(n - len(c), c[-1])]) for c in cs])
        stats[key] = {"mean": float(finals.mean()), "median": float(np.median(finals)), "n": len(cs),
                      "curve": padded.mean(axis=0)}
    ranks = defaultdict(list)
    from scipy.stats import rankdata
    for p in problems:
        names = [c for c in contenders if (c, p) in stats or (c, p) in errors]
        if not names:
            continue
        means = [stats[(c, p)]["mean"] if (c, p) in stats else math.inf for c in names]
        for c, rk in zip(names, rankdata(means)):
            ranks[c].append(float(rk))
    mean_rank = {c: float(np.mean(v)) for c, v in ranks.items()}
    sugg = defaultdict(list)
    for r in records:
        sugg[r["contender"]].extend(r.get("suggest_s", []))
    med_suggest = {c: float(np.median(v)) for c, v in sugg.items() if v}
    cpu = sum(sum(r.get("suggest_s", [])) for r in records)
    wall = sum(sum(r.get("suggest_wall_s", [])) for r in records)
    load_factor = wall / cpu if cpu > 0 and wall > 0 else None
    return {"unsupported": unsupported, "seeds_used": seeds_used, "ref": ref, "stats": stats, "errors": errors, "capped": dict(capped), "mean_rank": mean_rank,
            "rank_lists": dict(ranks), "median_suggest": med_suggest,
            "load_factor": load_factor}


def _fmt(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 0.01:
        return f"{x:.3f}"
    return f"{x:.1e}"


def _fmt_time(s: float | None) -> str:
    if s is None:
        return "–"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def markdown(agg: dict, contenders: list[str], problems: list[str], timings: dict, unavailable: dict,
             skipped: dict, command: str, meta: dict) -> str:
    L = []
    L.append("# HPO benchmark: nniray tuners vs hyperopt, Optuna, bayesian-optimization, SMAC3\n")
    L.append(f"Command (repository root): `{command}`\n")
    L.append(f"{meta.get('when', '')} — {meta.get('seeds')} seeds (requested; see 'Partial run' below if fewer finished) × {meta.get('evals')} evaluations per "
             f"(optimizer, problem); same seeds and budgets for every optimizer; all problems minimised; "
             f"process pool of {meta.get('workers')} on a shared, loaded 2-core machine"
             + (f" (wall time {meta['wall_min']:.1f} min)" if meta.get("wall_min") else "") + ".\n")
    if agg.get("load_factor"):
        L.append(f"Machine load during the run: optimizer wall time was {agg['load_factor']:.1f}× its CPU time "
                 "(other engineers' jobs share the 2 cores), which is why times below are CPU times.\n")
    L.append("Regret = best value within the budget − optimum (synthetic), or − the best CV error any "
             "optimizer found in this run (ML tasks). Cells: **mean** / median regret over seeds. "
             "Mean rank: per problem, rank of mean regret (1 = best), averaged over problems.\n")
    ranked = sorted([c for c in contenders if c in agg["mean_rank"]], key=lambda c: agg["mean_rank"][c])
    head = ("| optimizer | mean rank | issue's rank | " + " | ".join(problems)
            + " | median CPU time / suggestion (≤100 obs, runs) |")
    L.append(head)
    L.append("|" + "---|" * (len(problems) + 4))
    for c in ranked:
        cells = []
        for p in problems:
            s = agg["stats"].get((c, p))
            if s is None:
                cells.append("error" if (c, p) in agg["errors"] else
                             "n/a" if (c, p) in agg.get("unsupported", {}) else "–")
                continue
            flag = "†" if agg["capped"].get((c, p)) else ""
            cells.append(f"**{_fmt(s['mean'])}** / {_fmt(s['median'])}{flag}")
        ref_rank = REFERENCE_RANKS.get(REFERENCE_NAME.get(c, ""), "")
        L.append(f"| {c} | {agg['mean_rank'][c]:.2f} | {ref_rank} | " + " | ".join(cells)
                 + f" | {_fmt_time(agg['median_suggest'].get(c))} |")
    L.append("")
    if agg["capped"]:
        L.append("† some seeds hit the per-run optimizer-time cap (`--cap-s`); the rest of their budget was "
                 "random search: " + ", ".join(f"{c} on {p}: {n} seeds" for (c, p), n in sorted(agg["capped"].items()))
                 + ".\n")
    if agg.get("unsupported"):
        L.append("n/a = the optimizer refuses a type of that search space (NNI's support matrix); it is not "
                 "ranked on that problem: " + "; ".join(f"{c} on {p}" for (c, p) in sorted(agg["unsupported"])) + ".\n")
    if agg["errors"]:
        L.append("Errors (ranked last on that problem):\n")
        for (c, p), e in sorted(agg["errors"].items()):
            L.append(f"- {c} on {p}: `{e}`")
        L.append("")
    n_used = {p: len(v) for p, v in agg["seeds_used"].items()}
    if len(set(n_used.values())) > 1 or any(n != meta.get("seeds") for n in n_used.values()):
        L.append("**Partial run** — seeds completed by every optimizer, per problem: "
                 + ", ".join(f"{p}: {n}" for p, n in n_used.items()) + ".\n")
    refs = ", ".join(f"{p}: {_fmt(v)}" for p, v in agg["ref"].items())
    L.append(f"Reference values used: {refs}.\n")
    if unavailable:
        L.append("Not available (reported, not run):\n")
        for c, why in unavailable.items():
            L.append(f"- {c}: `{why}`")
        L.append("")
    if skipped:
        L.append("Not applicable here:\n")
        for c, why in skipped.items():
            L.append(f"- {c}: {why}")
        L.append("")
    if timings:
        sizes = sorted({n for (_, n) in timings})
        L.append("## Time per suggestion with N observations loaded\n")
        L.append("Process CPU time (the machine is shared: wall time is inflated by others' load). "
                 "Hartmann-6; N random observations loaded through the optimizer's own "
                 "`import_data`/add-trial call, then the median of the next ask+tell steps "
                 "(one process each, timeout shown as `>`).\n")
        L.append("| optimizer | " + " | ".join(f"N={n}" for n in sizes) + " |")
        L.append("|" + "---|" * (len(sizes) + 1))
        for c in contenders:
            row = []
            for n in sizes:
                t = timings.get((c, n))
                row.append(t if isinstance(t, str) else _fmt_time(t))
            if any(r != "–" for r in row):
                L.append(f"| {c} | " + " | ".join(row) + " |")
        L.append("")
    L.extend(targets(agg, timings))
    L.append("## Reference numbers from the issue (NNI 3.0 era, same kind of machine)\n")
    L.append("Mean rank of mean regret at 100 evaluations: "
             + ", ".join(f"{k} {v}" for k, v in REFERENCE_RANKS.items()) + ".  ")
    L.append("Median time per suggestion at ≤ 100 observations: "
             + ", ".join(f"{k} {v}" for k, v in REFERENCE_TIMES.items()) + ".\n")
    L.append("The reference ranks were computed over a different set of contenders and problems, so only "
             "the order among the same libraries is comparable, not the numbers.\n")
    return "\n".join(L)


def plot(agg: dict, contenders: list[str], problems: list[str], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(problems)
    cols = 3
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    cmap = plt.get_cmap("tab20")
    for i, p in enumerate(problems):
        ax = axes[i // cols][i % cols]
        for j, c in enumerate(contenders):
            s = agg["stats"].get((c, p))
            if s is None:
                continue
            style = "-" if c.startswith("nniray") else "--"
            ax.plot(np.arange(1, len(s["curve"]) + 1), np.maximum(s["curve"], 1e-6), style,
                    color=cmap(j % 20), label=c, lw=1.3)
        ax.set_yscale("log")
        ax.set_title(p)
        ax.set_xlabel("evaluations")
        ax.set_ylabel("mean best-so-far regret")
        ax.grid(alpha=0.3)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].axis("off")
    seen: dict = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    handles, labels = list(seen.values()), list(seen.keys())
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def targets(agg: dict, timings: dict) -> list[str]:
    """The issue's targets, each with met / missed-by."""
    mr = agg["mean_rank"]
    out = ["## Targets\n", "| target | ours | reference | verdict |", "|---|---|---|---|"]

    def rank_row(label, ours, theirs):
        if ours not in mr or theirs not in mr:
            out.append(f"| {label} | – | – | not measurable ({ours if ours not in mr else theirs} not run) |")
            return
        a, b = mr[ours], mr[theirs]
        verdict = "met" if a < b else ("tie (not ahead)" if a == b else f"missed by {a - b:.2f} rank")
        out.append(f"| {label} | {ours}: {a:.2f} | {theirs}: {b:.2f} | {verdict} |")

    # only tuners ranked on every problem (a tuner that is n/a on some has fewer, easier ranks)
    full = max((len(v) for v in agg["rank_lists"].values()), default=0)
    ours_mb = [c for c in MODEL_BASED if c in mr and len(agg["rank_lists"][c]) == full]
    best = min(ours_mb, key=mr.get) if ours_mb else "nniray (none)"
    rank_row("best nniray model-based tuner (ranked on all problems) ahead of Optuna GP", best, "Optuna GP")
    rank_row("nniray TPE ahead of Optuna TPE", "nniray TPE", "Optuna TPE")
    rank_row("nniray GPTuner ahead of bayes-opt GP", "nniray GPTuner", "bayes-opt GP")

    def time_row(label, c, n, limit):
        t = timings.get((c, n))
        if not isinstance(t, (int, float)):
            out.append(f"| {label} | {t or '–'} | ≤ {_fmt_time(limit)} | not measured |" if not t else
                       f"| {label} | {t} | ≤ {_fmt_time(limit)} | missed |")
            return
        verdict = "met" if t <= limit else f"missed by {_fmt_time(t - limit)} ({t / limit:.1f}×)"
        out.append(f"| {label} | {_fmt_time(t)} | ≤ {_fmt_time(limit)} | {verdict} |")

    time_row("TPE suggestion at 100 obs", "nniray TPE", 100, 0.002)
    time_row("TPE suggestion at 1,000 obs", "nniray TPE", 1000, 0.010)
    time_row("GP suggestion at 100 obs", "nniray GPTuner", 100, 0.200)
    time_row("GP suggestion at 300 obs", "nniray GPTuner", 300, 1.0)
    out.append("")
    return out
