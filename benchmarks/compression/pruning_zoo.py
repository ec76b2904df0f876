"""Grown pruning zoo (issue 9): timm, HuggingFace (from configs), torchvision detection /
segmentation / video, U-Net, RNN text models and hand-written traps; Torch-Pruning as the anchor.

Environment: the bench venv of ``pruning.py`` plus timm::

    python -m venv --system-site-packages /work/main/bench-venv
    /work/main/bench-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 timm

Commands::

    nice -n 10 env OMP_NUM_THREADS=1 /work/main/bench-venv/bin/python benchmarks/compression/pruning_zoo.py run
    nice -n 10 env OMP_NUM_THREADS=1 /work/main/bench-venv/bin/python benchmarks/compression/pruning_zoo.py run --holdout
    /work/main/bench-venv/bin/python benchmarks/compression/pruning_zoo.py report

Per model, each in its own subprocess with a time limit (``TIMEOUT_S``): random weights, BatchNorm
running statistics and every norm's γ/β randomised; L1NormPruner at ``sparse_ratio=0.5`` on every
Conv/ConvTranspose/Linear/HF-Conv1D called as a module except the layers whose channels reach the
output (the heads), after ``auto_set_denpendency_group_ids`` (aligned norm masks, group-aware); then
``ModelSpeedup``.  Recorded: success; equivalence = max |sped-up − masked| / max |masked| where
"masked" is the pruner's wrapped model (the model a user fine-tunes); FLOPs (``count_flops_params``,
per sample) and params before/after; speedup wall time and the peak RSS growth during speedup;
latency at batch 1 (median of 2) and 8 (1 run) after a warm-up (1 thread, original / ours / Torch-Pruning
interleaved).
The same for Torch-Pruning 1.6 ``MagnitudePruner`` (L1, ``pruning_ratio=0.5``, same heads ignored,
same weights).  Results: ``benchmarks/compression/results/zoo_grown.jsonl``.

``HOLDOUT`` families were not looked at while fixing speedup; they run last (``--holdout``).
"""
from __future__ import annotations

import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "compression" / "results"
OUT = RESULTS / "zoo_grown.jsonl"
DOC = ROOT / "docs" / "benchmarks" / "compression-zoo.md"
TIMEOUT_S = 200


# ----------------------------------------------------------------------------- hand-written
class UNet(nn.Module):
    def __init__(self, c=16):
        super().__init__()
        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(),
                                 nn.Conv2d(o, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU())
        self.d1, self.d2, self.mid = block(3, c), block(c, 2 * c), block(2 * c, 4 * c)
        self.up2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2)
        self.u2 = block(4 * c, 2 * c)
        self.up1 = nn.ConvTranspose2d(2 * c, c, 2, stride=2)
        self.u1 = block(2 * c, c)
        self.head = nn.Conv2d(c, 2, 1)

    def forward(self, x):
        a = self.d1(x)
        b = self.d2(F.max_pool2d(a, 2))
        m = self.mid(F.max_pool2d(b, 2))
        y = self.u2(torch.cat([self.up2(m), b], 1))
        return self.head(self.u1(torch.cat([self.up1(y), a], 1)))


class TextRNN(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.emb = nn.Embedding(1000, 64)
        self.proj = nn.Linear(64, 128)
        self.rnn = cell(128, 96, num_layers=2, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(192, 64)
        self.head = nn.Linear(64, 4)

    def forward(self, tokens):
        out, _ = self.rnn(torch.relu(self.proj(self.emb(tokens))))
        return self.head(torch.relu(self.fc(out[:, -1])))


class CatSplit(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 32, 3, padding=1)
        self.b = nn.Conv2d(16, 16, 3, padding=1)
        self.c = nn.Conv2d(32, 32, 1)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        y = torch.relu(self.a(x))
        p, q = torch.split(y, 16, dim=1)
        y = torch.cat([torch.relu(self.b(p)), q], 1)
        return self.head(torch.relu(self.c(y)).mean((2, 3)))


class Tied(nn.Module):
    """One conv used twice (shared weights)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.shared = nn.Conv2d(32, 32, 3, padding=1)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        y = torch.relu(self.stem(x))
        y = torch.relu(self.shared(y))
        y = torch.relu(self.shared(y))
        return self.head(y.mean((2, 3)))


class _Swish(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return g * (s * (1 + x * (1 - s)))


class CustomAutograd(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 32, 3, padding=1)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        y = _Swish.apply(self.c1(x))
        y = _Swish.apply(self.c2(y))
        return self.head(y.mean((2, 3)))


# ----------------------------------------------------------------------------- builders
def _timm(name: str, size: int, **kw) -> Tuple[nn.Module, Any]:
    import timm
    model = timm.create_model(name, pretrained=False, num_classes=10, **kw)
    return model, torch.randn(1, 3, size, size)


def _tv(fn: str, inp: Callable[[], Any], **kw) -> Tuple[nn.Module, Any]:
    import torchvision.models as tvm
    import torchvision.models.detection as tvd
    import torchvision.models.segmentation as tvs
    import torchvision.models.video as tvv
    for mod in (tvm, tvd, tvs, tvv):
        if hasattr(mod, fn):
            return getattr(mod, fn)(weights=None, **kw), inp()
    raise KeyError(fn)


def _hf(kind: str) -> Tuple[nn.Module, Any]:
    import transformers as T
    ids = {"input_ids": torch.randint(0, 500, (1, 16))}
    if kind == "bert":
        return T.BertModel(T.BertConfig(vocab_size=500, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=512)), ids
    if kind == "distilbert":
        return T.DistilBertModel(T.DistilBertConfig(vocab_size=500, dim=128, n_layers=2, n_heads=4,
                                                    hidden_dim=512)), ids
    if kind == "gpt2":
        return T.GPT2Model(T.GPT2Config(vocab_size=500, n_embd=128, n_layer=2, n_head=4, use_cache=False)), ids
    if kind == "t5":
        return T.T5EncoderModel(T.T5Config(vocab_size=500, d_model=128, d_kv=32, d_ff=512, num_layers=2,
                                           num_heads=4)), ids
    px = {"pixel_values": torch.randn(1, 3, 64, 64)}
    if kind == "vit":
        return T.ViTModel(T.ViTConfig(image_size=64, patch_size=8, hidden_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, intermediate_size=512)), px
    if kind == "swin":
        return T.SwinModel(T.SwinConfig(image_size=64, patch_size=4, embed_dim=32, depths=[2, 2], num_heads=[2, 4],
                                        window_size=4)), px
    if kind == "mobilevit":
        return T.MobileViTModel(T.MobileViTConfig(image_size=64, hidden_sizes=[64, 80, 96],
                                                  neck_hidden_sizes=[16, 16, 24, 48, 64, 80, 320])), px
    if kind == "convnextv2":
        return T.ConvNextV2Model(T.ConvNextV2Config(image_size=64, hidden_sizes=[32, 64, 128, 256],
                                                    depths=[1, 1, 2, 1])), px
    raise KeyError(kind)


def _img(n=1, size=64):
    return lambda: torch.randn(n, 3, size, size)


MODELS: Dict[str, Callable[[], Tuple[nn.Module, Any]]] = {
    # timm (the families of the report)
    "timm/mobilenetv4_conv_small": lambda: _timm("mobilenetv4_conv_small", 64),
    "timm/rexnet_100": lambda: _timm("rexnet_100", 64),
    "timm/mixnet_s": lambda: _timm("mixnet_s", 64),
    "timm/dpn68": lambda: _timm("dpn68", 64),
    "timm/ese_vovnet19b_dw": lambda: _timm("ese_vovnet19b_dw", 64),
    "timm/cspdarknet53": lambda: _timm("cspdarknet53", 64),
    "timm/repvgg_a0": lambda: _timm("repvgg_a0", 64),
    "timm/skresnet18": lambda: _timm("skresnet18", 64),
    "timm/mobilevit_xxs": lambda: _timm("mobilevit_xxs", 64),
    "timm/ghostnet_100": lambda: _timm("ghostnet_100", 64),
    "timm/levit_128s": lambda: _timm("levit_128s", 224),
    "timm/resnest14d": lambda: _timm("resnest14d", 64),
    "timm/edgenext_xx_small": lambda: _timm("edgenext_xx_small", 64),
    "timm/convnextv2_atto": lambda: _timm("convnextv2_atto", 64),
    "timm/regnetx_002": lambda: _timm("regnetx_002", 64),
    "timm/resnext26ts": lambda: _timm("resnext26ts", 64),
    "timm/efficientvit_b0": lambda: _timm("efficientvit_b0", 64),
    "timm/deit_tiny_patch16_224": lambda: _timm("deit_tiny_patch16_224", 64, img_size=64),
    "timm/res2net50_14w_8s": lambda: _timm("res2net50_14w_8s", 64),
    "timm/nf_resnet26": lambda: _timm("nf_resnet26", 64),
    # HuggingFace from configs
    "hf/bert": lambda: _hf("bert"), "hf/distilbert": lambda: _hf("distilbert"), "hf/gpt2": lambda: _hf("gpt2"),
    "hf/t5-encoder": lambda: _hf("t5"), "hf/vit": lambda: _hf("vit"), "hf/swin": lambda: _hf("swin"),
    "hf/mobilevit": lambda: _hf("mobilevit"), "hf/convnextv2": lambda: _hf("convnextv2"),
    # torchvision beyond classifiers
    "tv/fasterrcnn_mobilenet_v3_large_320_fpn": lambda: _tv(
        "fasterrcnn_mobilenet_v3_large_320_fpn", lambda: [torch.rand(3, 160, 160)], weights_backbone=None,
        num_classes=5),
    "tv/deeplabv3_mobilenet_v3_large": lambda: _tv("deeplabv3_mobilenet_v3_large", _img(1, 96),
                                                   weights_backbone=None, num_classes=5, aux_loss=False),
    "tv/lraspp_mobilenet_v3_large": lambda: _tv("lraspp_mobilenet_v3_large", _img(1, 96), weights_backbone=None,
                                                num_classes=5),
    "tv/fcn_resnet50": lambda: _tv("fcn_resnet50", _img(1, 64), weights_backbone=None, num_classes=5,
                                   aux_loss=False),
    "tv/r3d_18": lambda: _tv("r3d_18", lambda: torch.randn(1, 3, 4, 56, 56), num_classes=10),
    "tv/mc3_18": lambda: _tv("mc3_18", lambda: torch.randn(1, 3, 4, 56, 56), num_classes=10),
    # hand-written
    "hand/unet": lambda: (UNet(), torch.randn(1, 3, 64, 64)),
    "hand/lstm_text": lambda: (TextRNN(nn.LSTM), torch.randint(0, 1000, (1, 24))),
    "hand/gru_text": lambda: (TextRNN(nn.GRU), torch.randint(0, 1000, (1, 24))),
    "hand/cat_split": lambda: (CatSplit(), torch.randn(1, 3, 32, 32)),
    "hand/tied_weights": lambda: (Tied(), torch.randn(1, 3, 32, 32)),
    "hand/custom_autograd": lambda: (CustomAutograd(), torch.randn(1, 3, 32, 32)),
}

# Families not looked at while fixing speedup: run last.
HOLDOUT: Dict[str, Callable[[], Tuple[nn.Module, Any]]] = {
    "holdout/timm/hrnet_w18_small": lambda: _timm("hrnet_w18_small", 64),
    "holdout/timm/dla34": lambda: _timm("dla34", 64),
    "holdout/timm/tinynet_a": lambda: _timm("tinynet_a", 64),
    "holdout/timm/coat_lite_tiny": lambda: _timm("coat_lite_tiny", 64, img_size=64),
    "holdout/timm/poolformer_s12": lambda: _timm("poolformer_s12", 64),
    "holdout/timm/selecsls42b": lambda: _timm("selecsls42b", 64),
    "holdout/tv/keypointrcnn_resnet50_fpn": lambda: _tv("keypointrcnn_resnet50_fpn",
                                                        lambda: [torch.rand(3, 128, 128)], weights_backbone=None,
                                                        num_classes=2, num_keypoints=5),
    "holdout/tv/s3d": lambda: _tv("s3d", lambda: torch.randn(1, 3, 8, 64, 64), num_classes=10),
    "holdout/hf/roberta": lambda: _hf_holdout("roberta"),
    "holdout/hf/albert": lambda: _hf_holdout("albert"),
}


def _hf_holdout(kind):
    import transformers as T
    ids = {"input_ids": torch.randint(0, 500, (1, 16))}
    if kind == "roberta":
        return T.RobertaModel(T.RobertaConfig(vocab_size=500, hidden_size=128, num_hidden_layers=2,
                                              num_attention_heads=4, intermediate_size=512)), ids
    return T.AlbertModel(T.AlbertConfig(vocab_size=500, embedding_size=64, hidden_size=128, num_hidden_layers=2,
                                        num_attention_heads=4, intermediate_size=512)), ids


# ----------------------------------------------------------------------------- measuring
def randomise(model: nn.Module, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
            w, b = getattr(m, "weight", None), getattr(m, "bias", None)
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)) and w is not None:
                w.copy_(torch.randn(w.shape, generator=g) * 0.2 + 1)
                if b is not None:
                    b.copy_(torch.randn(b.shape, generator=g) * 0.2)
        for name, p in model.named_parameters():
            if p.dim() >= 2 and not bool(p.any()):  # zero-initialised heads: outputs would be 0
                p.normal_(0, 0.02, generator=g)
            if ("gamma" in name or "layer_scale" in name or name.endswith(".ls1") or "ls2" in name) \
                    and p.dim() == 1 and float(p.abs().max()) < 1e-3:
                p.uniform_(0.5, 1.0, generator=g)  # layer scales start at 1e-6: blocks would be invisible


def call(model: nn.Module, x: Any):
    if isinstance(x, dict):
        return model(**x)
    if isinstance(x, list):
        return model(x)
    return model(x)


def tensors(out: Any) -> List[torch.Tensor]:
    from torch.utils._pytree import tree_flatten
    if hasattr(out, "to_tuple"):
        out = out.to_tuple()
    return [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor) and t.is_floating_point()]


def rel_diff(a: Any, b: Any) -> float:
    ta, tb = tensors(a), tensors(b)
    if len(ta) != len(tb) or not ta:
        return float("inf")
    worst = 0.0
    for u, v in zip(ta, tb):
        if u.shape != v.shape:
            return float("inf")
        scale = float(v.abs().max()) if v.numel() else 0.0
        worst = max(worst, float((u - v).abs().max()) / max(scale, 1e-12) if v.numel() else 0.0)
    return worst


def batch_of(x: Any, n: int) -> Any:
    if isinstance(x, dict):
        return {k: v.repeat(n, *([1] * (v.dim() - 1))) for k, v in x.items()}
    if isinstance(x, list):
        return x * n
    return x.repeat(n, *([1] * (x.dim() - 1)))


def flops(model: nn.Module, x: Any) -> Tuple[int, int]:
    from nniray.compression.utils import count_flops_params
    if isinstance(x, list):  # detection: count on the backbone call path through a wrapper
        class W(nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, t):
                return self.m(list(t))
        f, p, _ = count_flops_params(W(model), torch.stack(x), verbose=False)
        return int(f), int(p)
    f, p, _ = count_flops_params(model, x, verbose=False)
    return int(f), int(p)


def heads(model: nn.Module, trace) -> List[str]:
    from nniray.compression.speedup.dependency import PRUNABLE_TYPES, _ChannelFlow
    flow = _ChannelFlow(model, trace, PRUNABLE_TYPES)
    out = next(n for n in trace.graph.nodes if n.op == "output")
    names = set()
    for a in out.all_input_nodes:
        src = flow.chan.get(a.name)
        if src is not None:
            names |= set(src[1])
    return sorted(names)


def prunable(model: nn.Module, trace) -> List[str]:
    from nniray.compression.base.layout import is_hf_conv1d
    names = []
    for n in trace.graph.nodes:
        if n.op == "call_module":
            m = model.get_submodule(n.target)
            if (isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)) or is_hf_conv1d(m)) and n.target not in names:
                names.append(n.target)
    return names


def latencies(models: Dict[str, nn.Module], x: Any, reps: int = 3) -> Dict[str, float]:
    times: Dict[str, List[float]] = {k: [] for k in models}
    with torch.no_grad():
        for m in models.values():
            call(m, x)
        for _ in range(reps):
            for k, m in models.items():
                t = time.perf_counter()
                call(m, x)
                times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) * 1000 for k, v in times.items()}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(name: str) -> Dict[str, Any]:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    from nniray.compression.pruning import L1NormPruner
    from nniray.compression.speedup import ModelSpeedup, auto_set_denpendency_group_ids, concrete_trace
    builder = {**MODELS, **HOLDOUT}[name]
    model, x = builder()
    model.eval()
    randomise(model)
    rec: Dict[str, Any] = {"model": name}
    base_state = copy.deepcopy(model.state_dict())
    orig = copy.deepcopy(model)
    rec["flops"], rec["params"] = flops(model, x)
    timed = {"orig": orig}
    try:
        t = time.time()
        trace = concrete_trace(model, x)
        skip = set(heads(model, trace))
        names = [n for n in prunable(model, trace) if n not in skip]
        rec["pruned_layers"] = len(names)
        cl = auto_set_denpendency_group_ids(model, [{"op_names": names, "sparse_ratio": 0.5}], x, traced_model=trace)
        pruner = L1NormPruner(model, cl)
        _, masks = pruner.compress()
        rec["prune_s"] = time.time() - t
        with torch.no_grad():
            masked = call(model, x)
        pruner.unwrap_model()
        rss0, t = rss_mb(), time.time()
        ms = ModelSpeedup(model, x, masks)
        ms.speedup_model()
        rec["speedup_s"] = time.time() - t
        rec["speedup_peak_rss_mb"] = rss_mb() - rss0
        with torch.no_grad():
            out = call(model, x)
        rec["rel_diff"] = rel_diff(out, masked)
        rec["ours_ok"] = rec["rel_diff"] <= 1e-5
        rec["ours_flops"], rec["ours_params"] = flops(model, x)
        rec["widened"] = len(ms.widened)
        timed["ours"] = model
    except Exception as e:  # noqa: BLE001 - recorded per model
        rec["ours_ok"] = False
        rec["ours_error"] = f"{type(e).__name__}: {str(e)[:300]}"
    try:
        import torch_pruning as tp
        tpm, _ = builder()
        tpm.eval()
        tpm.load_state_dict(base_state)
        tr = concrete_trace(tpm, x)
        ignored = [tpm.get_submodule(n) for n in heads(tpm, tr)]
        rss0, t = rss_mb(), time.time()
        pr = tp.pruner.MagnitudePruner(tpm, x, importance=tp.importance.MagnitudeImportance(p=1), pruning_ratio=0.5,
                                       ignored_layers=ignored)
        pr.step()
        rec["tp_s"] = time.time() - t
        rec["tp_peak_rss_mb"] = rss_mb() - rss0
        with torch.no_grad():
            call(tpm, x)
        rec["tp_ok"] = True
        rec["tp_flops"], rec["tp_params"] = flops(tpm, x)
        timed["tp"] = tpm
    except Exception as e:  # noqa: BLE001
        rec["tp_ok"] = False
        rec["tp_error"] = f"{type(e).__name__}: {str(e)[:300]}"
    try:
        for k, v in latencies(timed, x, reps=2).items():
            rec[f"{k}_lat1_ms"] = v
        for k, v in latencies(timed, batch_of(x, 8), reps=1).items():
            rec[f"{k}_lat8_ms"] = v
    except Exception as e:  # noqa: BLE001
        rec["latency_error"] = f"{type(e).__name__}: {str(e)[:200]}"
    return rec


def run(names: List[str]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    done = set()
    if OUT.exists():
        done = {json.loads(line)["model"] for line in OUT.read_text().splitlines() if line.strip()}
    for name in names:
        if name in done:
            continue
        t = time.time()
        try:
            p = subprocess.run([sys.executable, __file__, "one", name], capture_output=True, text=True,
                               timeout=TIMEOUT_S, env={**os.environ, "OMP_NUM_THREADS": "1"})
            line = [l for l in p.stdout.splitlines() if l.startswith("{")]
            rec = json.loads(line[-1]) if line else {"model": name, "ours_ok": False, "tp_ok": False,
                                                      "error": p.stderr.strip().splitlines()[-1][:300]
                                                      if p.stderr.strip() else f"exit {p.returncode}"}
        except subprocess.TimeoutExpired:
            rec = {"model": name, "ours_ok": False, "tp_ok": False, "error": f"timeout after {TIMEOUT_S} s"}
        rec["total_s"] = time.time() - t
        with OUT.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)


def main(argv: List[str]) -> None:
    if argv[1] == "one":
        print(json.dumps(run_one(argv[2])), flush=True)
    elif argv[1] == "run":
        if "--holdout" in argv:
            run(list(HOLDOUT))
        else:
            only = [a for a in argv[2:] if not a.startswith("--")]
            run(only or list(MODELS))
    elif argv[1] == "report":
        sys.path.insert(0, str(Path(__file__).parent))
        from pruning_zoo_report import write
        write(OUT, DOC)


if __name__ == "__main__":
    main(sys.argv)
