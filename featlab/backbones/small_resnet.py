"""Small ResNets for CPU experiments: torchvision's ResNet with fewer blocks and channels.

``resnet10-w16`` is a ResNet-10 (one BasicBlock per stage) whose stages have 16, 32, 64 and
128 channels: the same module names and forward as torchvision's ResNet18 (``conv1``,
``bn1``, ``layer1``..``layer4``, ``avgpool``, ``fc``; 12 BatchNorm layers, a 128-d
penultimate layer), about 1/30 of its multiply-adds. It is what the measured section of
``featlab train`` uses on a shared CPU; ``resnet18`` is the fusion paper's network.
"""
from __future__ import annotations

from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet


class SmallResNet(ResNet):
    """torchvision ResNet with stage widths ``widths`` (default 64, 128, 256, 512).

    Parameters
    ----------
    block : BasicBlock or Bottleneck
    layers : 4 ints — blocks per stage
    widths : 4 ints — channels per stage (``conv1`` has ``widths[0]``)
    num_classes : int
    """

    def __init__(self, block, layers, widths=(64, 128, 256, 512), num_classes: int = 1000):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = widths[0], 1, 1, 64
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, widths[0], layers[0])
        self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3] * block.expansion, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def resnet10_w16(weights=None, num_classes: int = 1000) -> SmallResNet:
    """ResNet-10, stage widths 16-32-64-128 (``weights`` must be None: no pretrained)."""
    if weights is not None:
        raise ValueError("resnet10-w16 has no pretrained weights")
    return SmallResNet(BasicBlock, [1, 1, 1, 1], (16, 32, 64, 128), num_classes)
