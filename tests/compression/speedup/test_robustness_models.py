"""Issue 9, findings 1, 3, 5, 7: minimal models that reproduce each failure of the zoo."""
import functools

import torch
import torch.nn as nn
import torch.nn.functional as F

from nniray.compression.pruning import L1NormPruner
from nniray.compression.speedup import ModelSpeedup, auto_set_denpendency_group_ids, concrete_trace


def _randomise_norms(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.randn(c, generator=g) * 0.3 + 1)
                m.bias.copy_(torch.randn(c, generator=g) * 0.5)


def _flow(model, x, config_list):
    """auto groups -> L1 -> speedup; returns (masked output, sped-up output, ModelSpeedup)."""
    cl = auto_set_denpendency_group_ids(model, config_list, x)
    pruner = L1NormPruner(model, cl)
    _, masks = pruner.compress()
    with torch.no_grad():
        masked = model(x)
    pruner.unwrap_model()
    ms = ModelSpeedup(model, x, masks)
    ms.speedup_model()
    with torch.no_grad():
        sped = model(x)
    return masked, sped, ms


# ---- finding 1: norm subclasses with children -----------------------------------------------
class BatchNormAct2d(nn.BatchNorm2d):
    """timm's layout: a BatchNorm2d subclass that holds its activation as a child."""

    def __init__(self, c):
        super().__init__(c)
        self.drop = nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x):
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return self.act(self.drop(x))


class ScaledConv(nn.Conv2d):
    """timm's ScaledStdConv2d: a Conv2d subclass with a per-output-channel gain."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.gain = nn.Parameter(torch.rand(self.out_channels, 1, 1, 1) + 0.5)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.gain, self.bias, self.stride, self.padding)


class TimmLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = BatchNormAct2d(8)
        self.conv2 = ScaledConv(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)  # both kinds of BN in one model
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        x = self.bn1(self.conv1(x))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.head(x.mean((2, 3)))


def test_norm_subclass_with_children_is_one_op_and_shrinks():
    torch.manual_seed(0)
    model = TimmLike().eval()
    _randomise_norms(model)
    x = torch.randn(2, 3, 8, 8)
    trace = concrete_trace(model, x)
    assert any(n.op == "call_module" and n.target == "bn1" for n in trace.graph.nodes)
    masked, sped, _ = _flow(model, x, [{"op_names": ["conv1", "conv2"], "sparse_ratio": 0.5}])
    assert type(model.bn1) is BatchNormAct2d and model.bn1.num_features == 4
    assert type(model.conv2) is ScaledConv and model.conv2.out_channels == 4 and model.conv2.gain.shape[0] == 4
    assert torch.allclose(masked, sped, rtol=1e-5, atol=1e-6)


def test_norm_with_its_own_activation_keeps_live_channels():
    """A BN+ReLU leaf whose shift dwarfs the probe values must not look dead (all ReLU outputs 0)."""
    torch.manual_seed(0)
    model = TimmLike().eval()
    model.bn1.act = nn.ReLU()
    _randomise_norms(model)
    with torch.no_grad():
        model.bn1.bias.copy_(torch.tensor([-0.3, 0.5] * 4))  # half the channels sit below zero
        model.bn1.running_mean.zero_()
    x = torch.randn(2, 3, 8, 8) * 5
    masked, sped, _ = _flow(model, x, [{"op_names": ["conv1", "conv2"], "sparse_ratio": 0.5}])
    assert model.bn1.num_features == 4 and model.conv2.in_channels == 4
    assert torch.allclose(masked, sped, rtol=1e-5, atol=1e-6)


# ---- finding 3: tracer errors -----------------------------------------------------------------
class Helper(nn.Module):
    def forward(self, x):
        return x * 2


def returns_tuple(fn):
    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):  # HuggingFace-style decorator over forward
        out = fn(self, *args, **kwargs)
        return out if kwargs.get("return_tuple") is None else (out,)
    return wrapper


class PairWithNone(nn.Module):
    def forward(self, x):
        return x, None


class TracerTraps(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 8)
        self.out = nn.Linear(8, 2)
        self.pair = PairWithNone()
        self.register_buffer("pos", torch.arange(16).unsqueeze(0))
        object.__setattr__(self, "helper", Helper())  # a module that is not a submodule

    @returns_tuple
    def forward(self, x, mask=None, **kwargs):
        b, l = x.shape[0], x.shape[1]
        pad = torch.zeros(x.shape[0], x.shape[1], 6, dtype=x.dtype, device=x.device)  # varargs sizes
        pos = self.pos[:, :l].expand(b, l)  # a buffer expanded by proxy sizes
        big = torch.finfo(x.dtype).max  # finfo on the tensor's dtype
        if x.device.type == "cuda":  # a device comparison
            x = x * 1.0
        y, extra = self.pair(self.fc(x + pad))
        if extra is not None:  # a None inside a returned tuple stays None
            y = y + big
        if mask is not None:
            y = y * mask
        y = self.helper(torch.relu(y)) + pos.unsqueeze(-1).to(y.dtype) * 0
        return self.out(y)


def test_tracer_handles_varargs_sizes_finfo_device_none_and_foreign_modules():
    torch.manual_seed(0)
    model = TracerTraps().eval()
    x = torch.randn(2, 5, 6)
    trace = concrete_trace(model, x)
    assert any(n.op == "call_module" and n.target == "fc" for n in trace.graph.nodes)
    masked, sped, _ = _flow(model, x, [{"op_names": ["fc"], "sparse_ratio": 0.5}])
    assert model.fc.out_features == 4 and model.out.in_features == 4
    assert torch.allclose(masked, sped, rtol=1e-5, atol=1e-6)


# ---- finding 5: transposed and transposed-weight layers ---------------------------------------
class TinyUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.mid = nn.Conv2d(8, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(8, 6, 2, stride=2)
        self.up1d = nn.ConvTranspose1d(6, 4, 1)
        self.fuse = nn.Conv2d(6 + 3, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        u = self.up(torch.relu(self.mid(torch.relu(self.down(x)))))
        s = self.up1d(u.flatten(2)).view(x.shape[0], 4, *x.shape[2:])
        return self.head(torch.relu(self.fuse(torch.cat([u, x], 1)))) + s.mean(1, keepdim=True)


def test_conv_transpose_is_pruned_by_its_output_channels():
    torch.manual_seed(0)
    model = TinyUNet().eval()
    x = torch.randn(1, 3, 8, 8)
    config = [{"op_types": ["default"], "sparse_ratio": 0.5}, {"exclude_op_names": ["head"], "op_names": ["head"]}]
    config = [{"op_types": ["default"], "exclude_op_names": ["head"], "sparse_ratio": 0.5}]
    cl = auto_set_denpendency_group_ids(model, config, x)
    pruner = L1NormPruner(model, cl)
    _, masks = pruner.compress()
    up = masks["up"]["weight"]
    assert up.shape == (8, 6, 2, 2) and int((~up.transpose(0, 1).flatten(1).any(1)).sum()) == 3  # 3 of 6 outputs
    assert torch.equal(masks["up"]["bias"] != 0, up.transpose(0, 1).flatten(1).any(1))
    with torch.no_grad():
        masked = model(x)
    pruner.unwrap_model()
    ModelSpeedup(model, x, masks).speedup_model()
    assert model.up.out_channels == 3 and model.up.in_channels == 4 and model.fuse.in_channels == 3 + 3
    with torch.no_grad():
        assert torch.allclose(model(x), masked, rtol=1e-5, atol=1e-6)


class Conv1D(nn.Module):
    """HuggingFace's GPT-2 Conv1D: y = x @ W + b with W stored [in, out]."""

    def __init__(self, nf, nx):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.2)
        self.bias = nn.Parameter(torch.randn(nf) * 0.1)

    def forward(self, x):
        size_out = x.size()[:-1] + (self.nf,)
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(size_out)


class GPT2MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_fc = Conv1D(16, 8)
        self.c_proj = Conv1D(8, 16)

    def forward(self, x):
        return x + self.c_proj(F.gelu(self.c_fc(x)))


def test_hf_conv1d_is_pruned_by_its_output_dim_and_shrinks():
    torch.manual_seed(0)
    model = GPT2MLP().eval()
    x = torch.randn(2, 3, 8)
    masked, sped, _ = _flow(model, x, [{"op_names": ["c_fc"], "sparse_ratio": 0.5}])
    assert model.c_fc.weight.shape == (8, 8) and model.c_fc.nf == 8 and model.c_proj.weight.shape == (8, 8)
    assert torch.allclose(masked, sped, rtol=1e-5, atol=1e-6)


# ---- finding 7: a Linear feeding an LSTM/GRU is shrunk ----------------------------------------
class TextRNN(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.proj = nn.Linear(8, 12)
        self.rnn = cell(12, 6, batch_first=True, bidirectional=True)
        self.head = nn.Linear(12, 2)

    def forward(self, tokens):
        out, _ = self.rnn(torch.tanh(self.proj(self.emb(tokens))))
        return self.head(out[:, -1])


def test_linear_feeding_lstm_and_gru_is_shrunk():
    for cell in (nn.LSTM, nn.GRU):
        torch.manual_seed(0)
        model = TextRNN(cell).eval()
        x = torch.randint(0, 20, (2, 5))
        masked, sped, _ = _flow(model, x, [{"op_names": ["proj"], "sparse_ratio": 0.5}])
        assert model.proj.out_features == 6 and model.rnn.input_size == 6
        assert model.rnn.weight_ih_l0.shape[1] == 6 and model.rnn.weight_ih_l0_reverse.shape[1] == 6
        assert torch.allclose(masked, sped, rtol=1e-5, atol=1e-6)


# ---- finding 4: conflict resolution is bounded ------------------------------------------------
class HardCodedView(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.c = nn.Linear(8 * 16, 4)

    def forward(self, x):
        return self.c(torch.relu(self.a(x)).view(1, 128))  # only verification finds this conflict


def test_conflict_resolution_is_bounded_and_falls_back_to_the_masked_model(caplog):
    torch.manual_seed(0)
    model = HardCodedView().eval()
    x = torch.randn(1, 3, 4, 4)
    masks = {"a": {"weight": torch.ones(8, 3, 1, 1)}}
    masks["a"]["weight"][:4] = 0
    ms = ModelSpeedup(model, x, masks)
    ms.max_rounds = 0  # no round allowed: the bound is hit at once
    with caplog.at_level("WARNING"):
        ms.speedup_model()
    assert "conflicts not resolved" in caplog.text
    assert model.a.out_channels == 8  # nothing shrunk, but the result is still the masked model
    ref = HardCodedView().eval()
    ref.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(model(x), ref(x))


# ---- finding 7: a shared (tied) layer -------------------------------------------------------
class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.shared = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        y = torch.relu(self.shared(torch.relu(self.shared(torch.relu(self.stem(x))))))
        return self.head(y.mean((2, 3)))


def test_tied_layer_is_grouped_with_what_it_reads_and_shrinks():
    torch.manual_seed(0)
    model = Tied().eval()
    x = torch.randn(1, 3, 6, 6)
    masked, sped, _ = _flow(model, x, [{"op_names": ["stem", "shared"], "sparse_ratio": 0.5}])
    assert model.stem.out_channels == 4 and model.shared.out_channels == 4 and model.shared.in_channels == 4
    assert torch.allclose(masked, sped, rtol=1e-5, atol=1e-6)
