"""Image encoder: a torchvision ResNet trunk tapped at layer1..layer4, plus the skip reductions.

Spec section 1.1: the four taps (strides 4, 8, 16, 32) each go through a 3x3 conv + BatchNorm (no ReLU)
that reduces them to hidden, hidden, hidden/2, hidden/4 channels (coarsest first). The reductions
belong to the decoder's optimizer group; only the trunk is "the encoder" with its own learning rate.
"""

import logging
from pathlib import Path

import torch
import torchvision
from torch import nn

from rvos.errors import RvosError
from rvos.model.torch_files import load_torch, state_dict_problem

log = logging.getLogger(__name__)

# output channels of layer4, layer3, layer2, layer1 (coarsest first)
TRUNK_CHANNELS = {
    "resnet18": (512, 256, 128, 64),
    "resnet34": (512, 256, 128, 64),
    "resnet50": (2048, 1024, 512, 256),
    "resnet101": (2048, 1024, 512, 256),
}

_IMAGENET_WEIGHTS = {
    "resnet18": torchvision.models.ResNet18_Weights.IMAGENET1K_V1,
    "resnet34": torchvision.models.ResNet34_Weights.IMAGENET1K_V1,
    "resnet50": torchvision.models.ResNet50_Weights.IMAGENET1K_V1,
    "resnet101": torchvision.models.ResNet101_Weights.IMAGENET1K_V1,
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ResNetTrunk(nn.Module):
    """conv1 .. layer4 of a torchvision ResNet (no pooling head). Parameter names match torchvision's."""

    def __init__(self, name: str) -> None:
        super().__init__()
        resnet = getattr(torchvision.models, name)(weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            resnet.layer1,
            resnet.layer2,
            resnet.layer3,
            resnet.layer4,
        )

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        # images: (N, 3, H, W), ImageNet-normalised
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        x2 = self.layer1(x)  # (N, C2, H/4, W/4)
        x3 = self.layer2(x2)  # (N, C3, H/8, W/8)
        x4 = self.layer3(x3)  # (N, C4, H/16, W/16)
        x5 = self.layer4(x4)  # (N, C5, H/32, W/32)
        return [x5, x4, x3, x2]


class SkipReductions(nn.Module):
    """3x3 conv + BN per tap, to (hidden, hidden, hidden/2, hidden/4) channels, coarsest first."""

    def __init__(self, trunk_channels: tuple[int, ...], hidden_size: int, kernel_size: int) -> None:
        super().__init__()
        out_channels = skip_channels(hidden_size)
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2)
            for c_in, c_out in zip(trunk_channels, out_channels)
        )
        self.norms = nn.ModuleList(nn.BatchNorm2d(c) for c in out_channels)

    def forward(self, taps: list[torch.Tensor]) -> list[torch.Tensor]:
        return [norm(conv(x)) for x, conv, norm in zip(taps, self.convs, self.norms)]


def skip_channels(hidden_size: int) -> tuple[int, int, int, int]:
    return (hidden_size, hidden_size, hidden_size // 2, hidden_size // 4)


def imagenet_weights_file(name: str) -> str:
    """File name torchvision uses for the ImageNet weights of `name` (e.g. resnet18-f37072fd.pth)."""
    return Path(_IMAGENET_WEIGHTS[name].url).name


def load_imagenet_weights(trunk: ResNetTrunk, name: str, weights_path: str = "") -> None:
    """Load ImageNet weights from `weights_path` or the local torch hub cache; never download.

    Offline machines (CI among them) cannot fetch the weights, so a missing file is a clear error
    that says where to put it.
    """
    file_name = imagenet_weights_file(name)
    path = Path(weights_path) if weights_path else Path(torch.hub.get_dir()) / "checkpoints" / file_name
    if not path.is_file():
        raise RvosError(
            f"{path}: ImageNet weights for {name} not found; download {_IMAGENET_WEIGHTS[name].url} "
            f"to {Path(torch.hub.get_dir()) / 'checkpoints'}/ or set model.weights_path, "
            "or use model.pretrained: none"
        )
    state = load_torch(path, f"ImageNet weights for {name}")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    try:
        missing, unexpected = trunk.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shapes of another network: torch lists every tensor, we say one line
        raise RvosError(f"{path}: not {name} weights ({state_dict_problem(err)})") from None
    if missing or unexpected:
        raise RvosError(f"{path}: not {name} weights (missing {missing[:3]}, unexpected {unexpected[:3]})")
    log.info("loaded ImageNet weights for %s from %s", name, path)
