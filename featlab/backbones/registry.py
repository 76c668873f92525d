"""The registry of backbones. Entries are declared here (their names are known without
importing torch) and registered by their modules."""
from ..registry import Registry

BACKBONES = Registry("backbone", declared={
    "imagenet-resnet18": "featlab.backbones.imagenet",
    "places365-resnet18": "featlab.backbones.places365",
    "synthetic-object": "featlab.backbones.synthetic",
    "synthetic-scene": "featlab.backbones.synthetic",
})
