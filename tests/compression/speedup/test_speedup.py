"""ModelSpeedup: exact shapes after speedup and equality with the masked model.

Tolerance: float32, max |sped-up − masked| ≤ 1e-4 (the models here are small, so the
observed differences are ~1e-7).
"""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nniray.compression.speedup import (ModelSpeedup, ReplaceContext, Replacer, SpeedupVerificationError,
                                        UnsupportedOperationError, concrete_trace)

from models import (BasicBlock, Bottleneck, ResNet, align_bn, filter_mask, masked_copy, randomize_bn,
                    resnet18)

ATOL = 1e-4


def speedup_and_compare(model, masks, x, n_eval=3):
    model = randomize_bn(model).eval()
    ref = align_bn(masked_copy(model, masks), masks, x)
    xs = [x] + [torch.randn_like(x) for _ in range(n_eval)]
    with torch.no_grad():
        expected = [ref(v) for v in xs]
    ModelSpeedup(model, x, masks).speedup_model()
    with torch.no_grad():
        for v, e in zip(xs, expected):
            got = model(v)
            assert got.shape == e.shape
            assert torch.allclose(got, e, atol=ATOL), float((got - e).abs().max())
    return model


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


class PlainCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.conv3 = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        return self.conv3(F.relu(self.conv2(F.relu(self.conv1(x)))))


def test_plain_cnn_shapes_and_equivalence():
    m = PlainCNN()
    masks = {"conv1": filter_mask(m.conv1, [0, 2, 5]), "conv2": filter_mask(m.conv2, range(0, 16, 2))}
    m = speedup_and_compare(m, masks, torch.randn(2, 3, 8, 8))
    assert (m.conv1.in_channels, m.conv1.out_channels) == (3, 3)
    assert (m.conv2.in_channels, m.conv2.out_channels) == (3, 8)
    assert (m.conv3.in_channels, m.conv3.out_channels) == (8, 4)
    assert m.conv2.weight.shape == (8, 3, 3, 3) and m.conv1.bias.shape == (3,)


class ConvBnFc(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.bn(self.conv(x))))
        return self.fc(x.view(x.size(0), -1))


def test_conv_bn_pool_flatten_linear():
    m = ConvBnFc()
    masks = {"conv": filter_mask(m.conv, [1, 3, 4, 7])}
    m = speedup_and_compare(m, masks, torch.randn(2, 3, 8, 8))
    assert m.conv.out_channels == 4 and m.bn.num_features == 4
    assert m.bn.running_mean.shape == (4,)
    assert m.fc.in_features == 4 * 16 and m.fc.out_features == 10


def test_indirect_sparsity_from_linear_input_mask():
    """Pruned Linear input columns make the producer's channels unnecessary (indirect)."""
    m = ConvBnFc()
    wm = torch.ones_like(m.fc.weight)
    wm[:, :16] = 0  # every feature of channel 0 is ignored
    m = speedup_and_compare(m, {"fc": {"weight": wm}}, torch.randn(2, 3, 8, 8))
    assert m.conv.out_channels == 7 and m.fc.in_features == 7 * 16


def test_resnet_basic_block_with_dependency_groups():
    from nniray.compression.pruning import L1NormPruner
    from nniray.compression.speedup import auto_set_denpendency_group_ids
    m = randomize_bn(resnet18(width=16)).eval()
    x = torch.randn(1, 3, 32, 32)
    cl = auto_set_denpendency_group_ids(m, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}], x)
    pruner = L1NormPruner(m, cl)
    _, masks = pruner.compress()
    pruner.unwrap_model()
    masks = {k: {t: v.clone() for t, v in d.items()} for k, d in masks.items()}
    m = speedup_and_compare(m, masks, x)
    assert m.conv1.out_channels == 8
    assert (m.layer1[0].conv1.in_channels, m.layer1[0].conv1.out_channels) == (8, 8)
    assert m.layer1[0].conv2.out_channels == 8 and m.layer1[1].bn2.num_features == 8
    assert m.layer2[0].downsample[0].out_channels == 16 == m.layer2[1].conv2.out_channels
    assert m.fc.in_features == 64


def test_residual_without_groups_keeps_union():
    """Different channels pruned on the two sides of an add: the union is kept (padding)."""
    blk = BasicBlock(8, 8)
    masks = {"conv2": filter_mask(blk.conv2, [0, 1, 2, 3]), "conv1": filter_mask(blk.conv1, [0, 1, 2, 3])}
    blk = speedup_and_compare(blk, masks, torch.randn(2, 8, 6, 6))
    assert blk.conv1.out_channels == 4 and blk.conv2.in_channels == 4
    assert blk.conv2.out_channels == 8  # the identity branch needs all 8 channels


def test_bottleneck_resnet():
    m = ResNet(Bottleneck, [1, 1, 1, 1], width=8)
    masks = {}
    for name, mod in m.named_modules():
        if isinstance(mod, nn.Conv2d) and name.endswith(("conv1", "conv2")) and "layer" in name:
            masks[name] = filter_mask(mod, range(0, mod.out_channels, 2))
    m = speedup_and_compare(m, masks, torch.randn(1, 3, 32, 32))
    assert (m.layer1[0].conv2.in_channels, m.layer1[0].conv2.out_channels) == (4, 4)
    assert m.layer1[0].conv3.in_channels == 4 and m.layer1[0].conv3.out_channels == 32


class DenseLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 6, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(10)
        self.c = nn.Conv2d(10, 5, 1)

    def forward(self, x):
        return self.c(F.relu(self.bn(torch.cat([self.a(x), self.b(x)], 1))))


def test_concat_densenet_style():
    m = DenseLike()
    masks = {"a": filter_mask(m.a, [0, 2, 4]), "b": filter_mask(m.b, [1])}
    m = speedup_and_compare(m, masks, torch.randn(2, 3, 6, 6))
    assert m.a.out_channels == 3 and m.b.out_channels == 1
    assert m.bn.num_features == 4 and m.c.in_channels == 4


class InvertedResidual(nn.Module):
    def __init__(self, c=8, t=4, groups=None):
        super().__init__()
        h = c * t
        self.expand = nn.Conv2d(c, h, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(h)
        self.dw = nn.Conv2d(h, h, 3, padding=1, groups=groups or h, bias=False)
        self.bn2 = nn.BatchNorm2d(h)
        self.project = nn.Conv2d(h, c, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = F.relu6(self.bn1(self.expand(x)))
        y = F.relu6(self.bn2(self.dw(y)))
        return x + self.bn3(self.project(y))


def test_depthwise_conv_keeps_group_structure():
    m = InvertedResidual()
    keep = [0, 3, 5, 8, 13, 21, 30, 31]
    m = speedup_and_compare(m, {"expand": filter_mask(m.expand, keep)}, torch.randn(2, 8, 5, 5))
    assert m.expand.out_channels == 8
    assert (m.dw.in_channels, m.dw.out_channels, m.dw.groups) == (8, 8, 8)
    assert m.dw.weight.shape == (8, 1, 3, 3) and m.project.in_channels == 8


def test_grouped_conv_uneven_groups_are_padded():
    m = InvertedResidual(groups=4)  # 32 channels, 4 groups of 8
    keep = [0, 1, 2, 8, 9, 16, 24, 25, 26, 27]  # 3, 2, 1, 4 kept per group
    m = speedup_and_compare(m, {"expand": filter_mask(m.expand, keep)}, torch.randn(2, 8, 5, 5))
    assert m.dw.groups == 4 and m.dw.in_channels == 16  # every group padded to 4
    assert m.expand.out_channels == 16


class SENet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc1 = nn.Conv2d(8, 4, 1)
        self.fc2 = nn.Conv2d(4, 8, 1)
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        x = F.relu(self.conv(x))
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return self.out(x * s)


def test_squeeze_excitation_gate():
    m = SENet()
    m = speedup_and_compare(m, {"conv": filter_mask(m.conv, [0, 1, 4, 6])}, torch.randn(2, 3, 6, 6))
    assert m.conv.out_channels == 4 and m.fc1.in_channels == 4
    assert m.fc2.out_channels == 4  # the gate of a pruned channel is not needed (indirect)
    assert m.out.in_channels == 4


class TinyAttention(nn.Module):
    def __init__(self, d=16, heads=4):
        super().__init__()
        self.hd = d // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ln = nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, 32), nn.Linear(32, d)

    def forward(self, x):
        b, t, _ = x.shape
        q = self.q(x).view(b, t, -1, self.hd).transpose(1, 2)
        k = self.k(x).view(b, t, -1, self.hd).transpose(1, 2)
        v = self.v(x).view(b, t, -1, self.hd).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-2, -1) / self.hd ** 0.5, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, -1)
        x = self.ln(x + self.o(y))
        return x + self.fc2(F.gelu(self.fc1(x)))


def test_transformer_block_head_pruning():
    m = TinyAttention()
    heads = [0, 1, 2, 3, 8, 9, 10, 11]  # heads 0 and 2 of 4 (head_dim 4)
    masks = {n: filter_mask(getattr(m, n), heads) for n in ("q", "k", "v")}
    masks["fc1"] = filter_mask(m.fc1, range(0, 32, 2))
    m = speedup_and_compare(m, masks, torch.randn(2, 5, 16))
    assert m.q.out_features == m.k.out_features == m.v.out_features == 8
    assert m.o.in_features == 8 and m.o.out_features == 16
    assert m.fc1.out_features == 16 and m.fc2.in_features == 16


def test_linear_only_mlp():
    m = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Dropout(0.1), nn.Linear(20, 30), nn.Tanh(), nn.Linear(30, 3))
    masks = {"0": filter_mask(m[0], range(5)), "3": filter_mask(m[3], range(0, 30, 3))}
    m = speedup_and_compare(m, masks, torch.randn(4, 10))
    assert m[0].weight.shape == (5, 10) and m[3].weight.shape == (10, 5) and m[5].weight.shape == (3, 10)


def test_masks_from_file(tmp_path):
    m = PlainCNN()
    masks = {"conv1": filter_mask(m.conv1, [1, 2])}
    path = tmp_path / "masks.pth"
    torch.save(masks, path)
    ModelSpeedup(m, torch.randn(1, 3, 8, 8), str(path)).speedup_model()
    assert m.conv1.out_channels == 2 and m.conv2.in_channels == 2


class MyLinear(nn.Module):
    """A custom module with parameters that speedup has no built-in replacer for."""

    def __init__(self, i, o):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(o, i) * 0.3)

    def forward(self, x):
        return x @ self.weight.t()


class WithCustom(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = MyLinear(6, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(torch.relu(self.fc(x)))


def test_unsupported_module_error_names_op_and_node():
    m = WithCustom()
    with pytest.raises(UnsupportedOperationError) as e:
        ModelSpeedup(m, torch.randn(2, 6), {"fc": filter_mask(m.fc, [0, 1, 2])}).speedup_model()
    msg = str(e.value)
    assert "MyLinear" in msg and "fx node 'fc'" in msg and "customized_replacers" in msg


def test_unsupported_functional_op_error_names_op_and_node():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            y = F.relu(self.conv(x))
            return y, torch.nonzero(y)  # data-dependent output shape

    m = Bad()
    with pytest.raises(UnsupportedOperationError) as e:
        ModelSpeedup(m, torch.randn(1, 3, 4, 4), {"conv": filter_mask(m.conv, [0])}).speedup_model()
    msg = str(e.value)
    assert "fx node 'nonzero'" in msg and "torch.nonzero" in msg and "customized_mask_updaters" in msg


def test_customized_replacer_is_used():
    calls = []

    class MyLinearReplacer(Replacer):
        def replace(self, module, ctx: ReplaceContext):
            if not isinstance(module, MyLinear):
                return None
            calls.append(ctx.module_name)
            new = MyLinear(len(ctx.in_keep(-1)), len(ctx.out_keep(-1)))
            new.weight.data = module.weight.data[ctx.out_keep(-1)][:, ctx.in_keep(-1)].clone()
            return new

    m = WithCustom()
    masks = {"fc": filter_mask(m.fc, [0, 1, 2])}
    ref = masked_copy(m, masks)
    x = torch.randn(3, 6)
    ModelSpeedup(m, x, masks, customized_replacers=[MyLinearReplacer()]).speedup_model()
    assert calls == ["fc"]
    assert m.fc.weight.shape == (3, 6) and m.head.in_features == 3
    assert torch.allclose(m(x), ref(x), atol=ATOL)


def test_bad_masks_are_rejected_with_field_names():
    m = PlainCNN()
    with pytest.raises(KeyError, match="conv9"):
        ModelSpeedup(m, torch.randn(1, 3, 8, 8), {"conv9": {"weight": torch.ones(1)}})
    with pytest.raises(ValueError, match=r"masks\['conv1'\]\['weight'\] has shape"):
        ModelSpeedup(m, torch.randn(1, 3, 8, 8), {"conv1": {"weight": torch.ones(3)}})


def test_hard_coded_view_widens_instead_of_breaking():
    class Fixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)
            self.fc = nn.Linear(64, 2)

        def forward(self, x):
            return self.fc(self.conv(x).view(-1, 64))

    m = Fixed()
    m = speedup_and_compare(m, {"conv": filter_mask(m.conv, [0, 1])}, torch.randn(1, 3, 4, 4))
    # view(-1, 64) hard-codes the size: speedup widens back (zero channels stay) instead of
    # producing a model that crashes or computes something else
    assert m.conv.out_channels == 4 and m.fc.in_features == 64


def test_concrete_trace_follows_python_control_flow():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            y = self.conv(x)
            if y.size(1) > 2:  # symbolic_trace cannot decide this
                y = torch.relu(y)
            for t in y.unbind(0):
                y = y + t.sum()
            return y

    with pytest.raises(Exception):
        torch.fx.symbolic_trace(Branchy())
    tr = concrete_trace(Branchy(), torch.randn(2, 3, 4, 4))
    targets = [n.target for n in tr.graph.nodes if n.op == "call_function"]
    assert torch.relu in targets
    assert tr.values["conv"].shape == (2, 4, 4, 4)


class Decoder(nn.Module):
    """Embedding → Linear, and Conv → GroupNorm → ConvTranspose2d."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.proj = nn.Linear(8, 4)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.gn = nn.GroupNorm(4, 8)
        self.up = nn.ConvTranspose2d(8, 6, 2, stride=2)
        self.head = nn.Conv2d(6, 2, 1)

    def forward(self, tokens, img):
        a = self.proj(self.emb(tokens)).mean(1)
        b = self.head(F.relu(self.up(F.relu(self.gn(self.conv(img))))))
        return b.mean((2, 3)) + a[:, :2]


def test_embedding_groupnorm_convtranspose():
    m = Decoder().eval()
    emb_mask = torch.ones_like(m.emb.weight)
    emb_mask[:, [1, 5]] = 0  # prune embedding dims 1 and 5
    masks = {"emb": {"weight": emb_mask},
             "conv": filter_mask(m.conv, [0, 1, 4, 5]),  # whole GroupNorm groups 0 and 2
             "up": {"weight": torch.ones_like(m.up.weight)}}
    masks["up"]["weight"][:, [2, 3]] = 0  # ConvTranspose weight is (in, out, k, k): out channels 2, 3
    masks["up"]["bias"] = torch.tensor([1.0, 1, 0, 0, 1, 1])
    ref = masked_copy(m, masks)
    with torch.no_grad():  # GroupNorm groups fed only by pruned filters are masked (align)
        ref.gn.weight[[2, 3, 6, 7]] = 0
        ref.gn.bias[[2, 3, 6, 7]] = 0
    inputs = (torch.randint(0, 20, (2, 5)), torch.randn(2, 3, 4, 4))
    ModelSpeedup(m, inputs, masks).speedup_model()
    assert m.emb.weight.shape == (20, 6) and m.proj.in_features == 6
    assert m.conv.out_channels == 4 and (m.gn.num_groups, m.gn.num_channels) == (2, 4)
    assert (m.up.in_channels, m.up.out_channels) == (4, 4) and m.head.in_channels == 4
    with torch.no_grad():
        assert torch.allclose(m(*inputs), ref(*inputs), atol=ATOL)


def test_user_graph_module_and_mask_updater():
    from nniray.compression.speedup import MaskUpdater

    seen = []

    class CountingUpdater(MaskUpdater):  # observes, then defers to the built-in probing
        def detect(self, speedup, node):
            return node.op == "call_module" and node.target == "conv2"

        def direct_update(self, speedup, node, input_masks):
            seen.append(node.name)
            return NotImplemented

    m = PlainCNN()
    gm = torch.fx.symbolic_trace(m)
    masks = {"conv1": filter_mask(m.conv1, [0, 1, 2, 3])}
    ref = masked_copy(m, masks)
    x = torch.randn(2, 3, 8, 8)
    ModelSpeedup(m, x, masks, graph_module=gm, customized_mask_updaters=[CountingUpdater()]).speedup_model()
    assert seen == ["conv2"]
    assert m.conv1.out_channels == 4 and m.conv2.in_channels == 4
    assert torch.allclose(m(x), ref(x), atol=ATOL)


class NaiveModel(nn.Module):
    """The MNIST model of NNI's speedup notebook (spec §5.1): conv1 Conv2d(1, 20, 5) → 10 filters."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5, 1)
        self.conv2 = nn.Conv2d(20, 50, 5, 1)
        self.fc1 = nn.Linear(4 * 4 * 50, 500)
        self.fc2 = nn.Linear(500, 10)
        self.relu1, self.relu2, self.relu3 = nn.ReLU6(), nn.ReLU6(), nn.ReLU6()
        self.max_pool1, self.max_pool2 = nn.MaxPool2d(2, 2), nn.MaxPool2d(2, 2)

    def forward(self, x):
        x = self.max_pool1(self.relu1(self.conv1(x)))
        x = self.max_pool2(self.relu2(self.conv2(x)))
        x = x.view(-1, x.size()[1:].numel())
        x = self.relu3(self.fc1(x))
        return F.log_softmax(self.fc2(x), dim=1)  # v2.5 logged "aten::log_softmax is not Supported"


def test_nni_notebook_naive_model_with_l1_pruner():
    from nniray.compression.pruning import L1NormPruner
    m = NaiveModel().eval()
    pruner = L1NormPruner(m, [{"op_names": ["conv1"], "sparse_ratio": 0.5}])
    _, masks = pruner.compress()
    pruner.unwrap_model()
    masks = {k: {t: v.clone() for t, v in d.items()} for k, d in masks.items()}
    ref = masked_copy(m, masks)
    x = torch.randn(3, 1, 28, 28)
    ModelSpeedup(m, torch.rand(1, 1, 28, 28), masks).speedup_model()
    assert (m.conv1.in_channels, m.conv1.out_channels) == (1, 10)
    assert (m.conv2.in_channels, m.conv2.out_channels) == (10, 50)
    assert m.fc1.in_features == 800
    assert torch.allclose(m(x), ref(x), atol=ATOL)


def test_dict_dummy_input_is_passed_as_kwargs():
    m = Decoder().eval()
    masks = {"conv": filter_mask(m.conv, [0, 1, 2, 3])}  # GroupNorm groups 0 and 1 kept whole
    inputs = {"tokens": torch.randint(0, 20, (2, 5)), "img": torch.randn(2, 3, 4, 4)}
    ref = masked_copy(m, masks)
    with torch.no_grad():
        ref.gn.weight[4:] = 0
        ref.gn.bias[4:] = 0
    ModelSpeedup(m, inputs, masks).speedup_model()
    assert m.conv.out_channels == 4 and m.gn.num_groups == 2
    with torch.no_grad():
        assert torch.allclose(m(**inputs), ref(**inputs), atol=ATOL)
