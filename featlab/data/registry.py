"""The registry of dataset loaders. Entries are declared here (their names are known without
importing the loaders) and registered by their modules."""
from ..registry import Registry

DATASETS = Registry("dataset", declared={
    "coco": "featlab.data.coco",
    "cifar10": "featlab.data.cifar10",
    "imagefolder": "featlab.data.imagefolder",
    "synthetic": "featlab.data.synthetic",
})
