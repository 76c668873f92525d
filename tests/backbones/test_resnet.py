"""featlab's ResNets against torchvision's: same seed -> same parameter bytes, same outputs
and the same BatchNorm outputs in the same order (the store's layer order follows it)."""
import pytest
import torch
import torchvision
from torchvision.models.resnet import BasicBlock as TVBasic

from featlab.backbones import resnet


def _pair(name, classes):
    torch.manual_seed(7)
    ours = getattr(resnet, name)(num_classes=classes)
    torch.manual_seed(7)
    theirs = getattr(torchvision.models, name)(weights=None, num_classes=classes)
    return ours, theirs


def _bn_outputs(net, x):
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: seen.append((n, o.clone())))
             for n, m in net.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    out = net(x)
    for h in hooks:
        h.remove()
    return out, seen


@pytest.mark.parametrize("name,classes,size", [("resnet18", 16, 64), ("resnet34", 10, 32),
                                               ("resnet50", 5, 32)])
def test_same_parameters_and_outputs_as_torchvision(name, classes, size):
    ours, theirs = _pair(name, classes)
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key
    x = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(1))
    for train in (True, False):
        ours.train(train), theirs.train(train)
        (out_a, bn_a), (out_b, bn_b) = _bn_outputs(ours, x), _bn_outputs(theirs, x)
        assert out_a.detach().numpy().tobytes() == out_b.detach().numpy().tobytes()
        assert [n for n, _ in bn_a] == [n for n, _ in bn_b]
        assert all(torch.equal(u, v) for (_, u), (_, v) in zip(bn_a, bn_b))
        if train:  # the same gradients too (featlab train, the attacks)
            out_a.square().sum().backward(), out_b.square().sum().backward()
            for (key, p), q in zip(ours.named_parameters(), theirs.parameters()):
                assert torch.equal(p.grad, q.grad), key


class _NarrowTorchvisionResNet(torchvision.models.ResNet):
    """torchvision's ResNet with stage widths 16-32-64-128 (what resnet10-w16 was built from
    before featlab had its own ResNets): the reference for resnet10-w16."""

    def __init__(self, num_classes):
        torch.nn.Module.__init__(self)
        widths, nn = (16, 32, 64, 128), torch.nn
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = widths[0], 1, 1, 64
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(TVBasic, widths[0], 1)
        self.layer2 = self._make_layer(TVBasic, widths[1], 1, stride=2)
        self.layer3 = self._make_layer(TVBasic, widths[2], 1, stride=2)
        self.layer4 = self._make_layer(TVBasic, widths[3], 1, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def test_resnet10_w16_matches_a_narrow_torchvision_resnet():
    torch.manual_seed(3)
    ours = resnet.resnet10_w16(num_classes=12)
    torch.manual_seed(3)
    theirs = _NarrowTorchvisionResNet(num_classes=12)
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert ours.fc.in_features == 128 and len(list(ours.layer1)) == 1
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert ours(x).numpy().tobytes() == theirs(x).numpy().tobytes()


def test_weights_are_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="load a state dict"):
        resnet.resnet18(weights="IMAGENET1K_V1")


def test_featlab_does_not_import_torchvision_to_build_networks():
    import subprocess
    import sys
    code = ("import sys; from featlab.backbones.trained import make_net; make_net('resnet18', 3); "
            "import featlab.backbones.synthetic, featlab.backbones.places365, "
            "featlab.backbones.imagenet; print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-1500:]
    assert out.stdout.strip() == "False"
