"""ResNets with torchvision's module names, initialisation and forward, without importing it.

``import torchvision`` costs about 1.5 s of every command's start here (its ``ops`` package
imports ``torch._dynamo``), more than a whole 64 px extraction of the demo's clean condition
spends outside the forward passes. featlab builds its networks from this module instead; the
state dicts are torchvision's (the same keys, so torchvision's ImageNet file and the CSAIL
Places365 checkpoint load unchanged), and ``tests/backbones/test_resnet.py`` checks against
torchvision that the same seed gives the same parameter bytes and that the outputs are the same
bytes.

``resnet10-w16`` is a ResNet-10 (one BasicBlock per stage) whose stages have 16, 32, 64 and
128 channels: the same module names and forward as ResNet18 (12 BatchNorm layers, a 128-d
penultimate layer), about 1/30 of its multiply-adds. It is what the measured section of
``featlab train`` uses on a shared CPU; ``resnet18`` is the fusion paper's network.
"""
from __future__ import annotations

import torch
from torch import nn


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None):
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x if self.downsample is None else self.downsample(x)  # after bn2, as torchvision
        return self.relu(out)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None):
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision's ResNet (no groups, no dilation) with stage widths ``widths``.

    Parameters
    ----------
    block : BasicBlock or Bottleneck
    layers : 4 ints — blocks per stage
    widths : 4 ints — channels per stage (``conv1`` has ``widths[0]``)
    num_classes : int
    """

    def __init__(self, block, layers, widths=(64, 128, 256, 512), num_classes: int = 1000):
        super().__init__()
        self.inplanes = widths[0]
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
        for m in self.modules():  # torchvision's initialisation, in its order
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(_conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _factory(block, layers, widths=(64, 128, 256, 512)):
    def make(weights=None, num_classes: int = 1000) -> ResNet:
        if weights is not None:
            raise ValueError("featlab builds networks without weights; load a state dict")
        return ResNet(block, layers, widths, num_classes)

    return make


resnet18 = _factory(BasicBlock, [2, 2, 2, 2])
resnet34 = _factory(BasicBlock, [3, 4, 6, 3])
resnet50 = _factory(Bottleneck, [3, 4, 6, 3])
resnet10_w16 = _factory(BasicBlock, [1, 1, 1, 1], (16, 32, 64, 128))
