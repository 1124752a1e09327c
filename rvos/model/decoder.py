"""The recurrent decoder: four ConvLSTM levels from stride 32 to stride 4, one slot at a time.

Level 0 reads the coarsest skip feature; level k reads [upsampled h of level k-1, skip feature k].
After level 3 the hidden state is upsampled x2 and `conv_out` gives one mask logit map at stride 2.
Hidden channels are hidden, hidden/2, hidden/4, hidden/8 (128/64/32/16 in the paper).
Upsampling is bilinear with align_corners=True, like the original's nn.UpsamplingBilinear2d.
"""

import torch
import torch.nn.functional as F
from torch import nn

from rvos.model.convlstm import ConvLSTMCell
from rvos.model.encoder import skip_channels

LevelStates = list[tuple[torch.Tensor, torch.Tensor]]  # (h, c) per level, coarsest first


def decoder_hidden_channels(hidden_size: int) -> tuple[int, int, int, int]:
    return (hidden_size, hidden_size // 2, hidden_size // 4, hidden_size // 8)


def upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


class RecurrentDecoder(nn.Module):
    def __init__(self, hidden_size: int, kernel_size: int, mask_channels: int, dropout: float = 0.0) -> None:
        super().__init__()
        hidden = decoder_hidden_channels(hidden_size)
        skips = skip_channels(hidden_size)
        inputs = [skips[0]] + [hidden[k - 1] + skips[k] for k in range(1, 4)]
        self.cells = nn.ModuleList(
            ConvLSTMCell(inputs[k], hidden[k], kernel_size, mask_channels) for k in range(4)
        )
        self.conv_out = nn.Conv2d(hidden[3], 1, kernel_size, padding=kernel_size // 2)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(
        self,
        skips: list[torch.Tensor],  # 4 x (N, C_k, h_k, w_k), coarsest first
        masks: list[torch.Tensor] | None,  # 4 x (N, mask_channels, h_k, w_k) mask pyramid, or None
        spatial: LevelStates | None,  # states of the previous slot in this frame
        temporal: list[torch.Tensor] | None,  # h per level of this slot in the previous frame
    ) -> tuple[torch.Tensor, LevelStates]:
        states: LevelStates = []
        x = skips[0]
        for k, cell in enumerate(self.cells):
            h, c = cell(
                x,
                masks[k] if masks is not None else None,
                spatial[k] if spatial is not None else None,
                temporal[k] if temporal is not None else None,
            )
            states.append((h, c))
            # Dropout only on what flows down the levels; the stored recurrent states stay intact.
            h = self.dropout(h)
            if k < 3:
                x = torch.cat([upsample(h, skips[k + 1].shape[-2:]), skips[k + 1]], dim=1)
            else:
                x = upsample(h, (h.shape[-2] * 2, h.shape[-1] * 2))
        return self.conv_out(x), states  # logits (N, 1, H/2, W/2)
