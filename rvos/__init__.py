"""RVOS: recurrent video object segmentation as a reproducible pipeline."""
