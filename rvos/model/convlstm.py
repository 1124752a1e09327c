"""The ConvLSTM cell of RVOS (spec section 1.2).

One 3x3 convolution computes all four gates from the concatenation
[input, (previous mask), h_spatial, h_temporal]:
- h_spatial, c_spatial: state of the previous object slot in the same frame (the spatial recurrence,
  which carries the cell state),
- h_temporal: hidden state of the same slot in the previous frame (the temporal recurrence, which
  enters only as a gate input; its cell state is not carried),
- mask channels (none in the original zero-shot variant): the slot's mask from the previous frame
  (one-shot, and zero-shot with `zero_shot_mask_input`), then, with `zero_shot_canvas`, the union of the
  masks that the earlier slots of this frame predicted.
Missing states are zeros. Gate order i, f, o, g as in the original, so its weights load unchanged.
"""

import torch
from torch import nn


class ConvLSTMCell(nn.Module):
    def __init__(
        self, input_channels: int, hidden_channels: int, kernel_size: int, mask_channels: int
    ) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.mask_channels = mask_channels
        in_channels = input_channels + mask_channels + 2 * hidden_channels
        self.gates = nn.Conv2d(in_channels, 4 * hidden_channels, kernel_size, padding=kernel_size // 2)

    def forward(
        self,
        x: torch.Tensor,  # (N, C_in, h, w)
        mask: torch.Tensor | None,  # (N, mask_channels, h, w); None when mask_channels is 0
        spatial: tuple[torch.Tensor, torch.Tensor] | None,  # (h, c) of the previous slot, (N, C_h, h, w)
        temporal: torch.Tensor | None,  # h of this slot in the previous frame, (N, C_h, h, w)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = x.new_zeros(x.shape[0], self.hidden_channels, *x.shape[2:])
        h_spatial, c_spatial = spatial if spatial is not None else (zeros, zeros)
        h_temporal = temporal if temporal is not None else zeros
        parts = [x, mask, h_spatial, h_temporal] if self.mask_channels else [x, h_spatial, h_temporal]
        # Under bf16 autocast the convolution runs in bf16; the gates and the cell state stay in fp32,
        # because the cell state accumulates over every slot of a frame.
        i, f, o, g = self.gates(torch.cat(parts, dim=1)).float().chunk(4, dim=1)
        c = torch.sigmoid(f) * c_spatial + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c
