"""The RVOS network, split by role: encoder (ResNet trunk + skip reductions), ConvLSTM cell,
recurrent decoder, and the model that wires them over object slots and frames."""
