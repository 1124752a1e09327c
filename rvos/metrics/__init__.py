"""Video object segmentation metrics.

- `rvos.metrics.davis`: J and F with the official DAVIS-2017 rules, per-object statistics, and the
  semi-supervised and unsupervised sequence protocols;
- `rvos.metrics.evaluate`: `rvos evaluate`, a whole DAVIS results folder into the official CSVs + JSON;
- `rvos.metrics.youtube`: a local *proxy* of the YouTube-VOS score (the server's code is not public);
- `rvos.metrics.bench`: `rvos bench metrics`, our speed and numbers against the official code.
"""
