"""Small model replicas for speedup/dependency tests (torchvision is not in the main env)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, c, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.downsample = None
        if stride != 1 or cin != c:
            self.downsample = nn.Sequential(nn.Conv2d(cin, c, 1, stride, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, c, stride=1, groups=1, width_per_group=64):
        super().__init__()
        width = int(c * (width_per_group / 64.0)) * groups
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != c * 4:
            self.downsample = nn.Sequential(nn.Conv2d(cin, c * 4, 1, stride, bias=False), nn.BatchNorm2d(c * 4))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ResNet layout (same module names)."""

    def __init__(self, block, layers, num_classes=10, width=64, groups=1, width_per_group=64):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        kw = dict(groups=groups, width_per_group=width_per_group) if block is Bottleneck else {}
        self.layer1 = self._make(block, width, layers[0], 1, kw)
        self.layer2 = self._make(block, width * 2, layers[1], 2, kw)
        self.layer3 = self._make(block, width * 4, layers[2], 2, kw)
        self.layer4 = self._make(block, width * 8, layers[3], 2, kw)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)

    def _make(self, block, c, n, stride, kw):
        layers = [block(self.inplanes, c, stride, **kw)]
        self.inplanes = c * block.expansion
        layers += [block(self.inplanes, c, 1, **kw) for _ in range(1, n)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(num_classes=10, width=64):
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, width)


def randomize_bn(model, seed=0):
    """Non-trivial BN statistics so BN really changes values in the tests."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.randn(m.num_features, generator=g) * 0.5 + 1)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


def masked_copy(model, masks):
    """The masked model: weights × masks (bias aligned to fully pruned filters), and a
    BatchNorm fed directly by a masked conv gets that conv's channel mask (NNI 3.0 align)."""
    import copy
    from nniray.compression.speedup import concrete_trace
    ref = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, targets in masks.items():
            mod = ref.get_submodule(name)
            for t, m in targets.items():
                getattr(mod, t).mul_(m)
            if "bias" not in targets and getattr(mod, "bias", None) is not None and "weight" in targets:
                mod.bias.mul_((targets["weight"].flatten(1).sum(1) != 0).float())
    return ref


def align_bn(ref, masks, x):
    """Mask every BatchNorm channel whose input is identically zero (NNI 3.0 `align`).

    Independent of speedup: runs the masked model on random inputs (clamping activations made
    identity) with hooks that zero each BN's output channels where its input channel was zero.
    """
    dead = {}

    def pre(mod, inp):
        t = inp[0]
        dims = [d for d in range(t.dim()) if d != 1]
        dead[mod] = ~(t != 0).any(dim=dims)

    def post(mod, inp, out):
        keep = (~dead[mod]).float().view([1, -1] + [1] * (out.dim() - 2))
        return out * keep

    hooks = []
    for m in ref.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            hooks += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    # Clamping activations become identity while probing, so only *structural* zeros count
    # (a ReLU that happens to be dead on the probe samples is not a pruned channel).
    names = [(F, "relu"), (F, "relu6"), (F, "hardtanh"), (F, "hardswish"), (torch, "relu"), (torch, "relu_")]
    saved = [(mod, n, getattr(mod, n)) for mod, n in names]
    try:
        for mod, n, _ in saved:
            setattr(mod, n, lambda t, *a, **k: t)
        with torch.no_grad():
            ref(torch.randn((4,) + tuple(x.shape[1:])))
    finally:
        for mod, n, f in saved:
            setattr(mod, n, f)
    for h in hooks:
        h.remove()
    with torch.no_grad():
        for m, d in dead.items():
            m.weight[d] = 0
            m.bias[d] = 0
    return ref


def filter_mask(module, keep_idx):
    """A weight mask keeping output channels ``keep_idx`` (dim 0)."""
    m = torch.zeros_like(module.weight)
    m[list(keep_idx)] = 1
    return {"weight": m}
