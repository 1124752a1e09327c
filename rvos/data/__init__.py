"""Datasets: sources (download), splits, the LMDB index and the PyTorch clip datasets."""
