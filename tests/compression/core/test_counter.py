"""Issue 9 finding 6: count_flops_params counts what a module computes, cross-checked with
torch.utils.flop_counter (2 FLOPs per multiply-accumulate)."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from nniray.compression.utils import count_flops_params


class Conv1D(nn.Module):
    """HuggingFace's GPT-2 Conv1D (weight [in, out])."""

    def __init__(self, nf, nx):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.randn(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(x.size()[:-1] + (self.nf,))


class StdConv(nn.Conv2d):
    """A Conv2d subclass (timm's ScaledStdConv2d computes through F.conv2d the same way)."""

    def forward(self, x):
        w = (self.weight - self.weight.mean((1, 2, 3), keepdim=True))
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = StdConv(3, 8, 3, padding=1)
        self.c_fc = Conv1D(16, 8)
        self.w = nn.Parameter(torch.randn(8, 16))

    def forward(self, x):
        y = self.conv(x).flatten(2).transpose(1, 2).contiguous()   # [B, 16 positions, 8]
        y = self.c_fc(y)                                           # HF Conv1D
        y = F.linear(y, self.w)                                    # functional linear
        return (y @ y.transpose(1, 2)) @ y                         # two matmuls


def test_counts_subclasses_hf_conv1d_and_functional_ops_like_flop_counter():
    model = Mixed().eval()
    x = torch.randn(2, 3, 4, 4)
    flops, _, results = count_flops_params(model, x, verbose=False)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    assert flops == counter.get_total_flops() // 2 // 2  # MACs per sample
    kinds = {r["module_type"] for r in results}
    assert {"StdConv", "Conv1D", "functional.linear", "functional.matmul"} <= kinds
    assert next(r for r in results if r["name"] == "c_fc")["flops"] == 16 * 8 * 16


def test_counts_rnns_and_attention():
    lstm = nn.LSTM(6, 5, num_layers=2, bidirectional=True, batch_first=True)
    flops, params, _ = count_flops_params(lstm, torch.randn(3, 7, 6), verbose=False)
    per_step = 2 * 4 * 5 * (6 + 5) + 2 * 4 * 5 * (10 + 5)
    assert flops == 7 * per_step
    gru = nn.GRU(6, 5, batch_first=True)  # per sample = per first input dim (NNI's convention)
    assert count_flops_params(gru, torch.randn(2, 4, 6), verbose=False)[0] == 4 * 3 * 5 * (6 + 5)

    class Attn(nn.Module):
        def forward(self, q):
            return F.scaled_dot_product_attention(q, q, q)
    q = torch.randn(1, 2, 16, 4)
    assert count_flops_params(Attn(), q, verbose=False)[0] == 2 * 16 * 16 * (4 + 4)
    mha = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    x = torch.randn(1, 16, 8)

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, x, x)[0]
    assert count_flops_params(Wrap(), x, verbose=False)[0] == 4 * 16 * 8 * 8 + 16 * 16 * 2 * 8


def test_keyword_inputs_and_hf_conv1d_in_dependency_groups():
    from nniray.compression.speedup import auto_set_denpendency_group_ids

    class Block(nn.Module):  # GPT-2 layout: the Conv1D output joins the residual stream
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(8, 8)
            self.c_fc = Conv1D(16, 8)
            self.c_proj = Conv1D(8, 16)

        def forward(self, hidden):
            h = self.inp(hidden)
            return h + self.c_proj(torch.relu(self.c_fc(h)))

    model = Block().eval()
    x = {"hidden": torch.randn(2, 3, 8)}
    flops, _, _ = count_flops_params(model, x, verbose=False)
    assert flops == 3 * (8 * 8 + 8 * 16 + 16 * 8)
    cl = auto_set_denpendency_group_ids(model, [{"op_names": ["inp", "c_fc", "c_proj"], "sparse_ratio": 0.5}], x)
    assert {c["op_names"][0] for c in cl if "dependency_group_id" in c} == {"inp", "c_proj"}
