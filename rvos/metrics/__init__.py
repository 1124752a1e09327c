"""Video object segmentation metrics.

- `rvos.metrics.davis`: J and F with the official DAVIS-2017 rules, per-object statistics, and the
  semi-supervised and unsupervised sequence protocols;
- `rvos.metrics.evaluate`: a whole DAVIS results folder into the official CSVs + JSON (`rvos evaluate`);
- `rvos.metrics.youtube`: a local *proxy* of the YouTube-VOS score (the server's code is not public);
- `rvos.metrics.report`: headline numbers, per-sequence rows and the trivial baselines of the
  `metrics` stage.
"""

# The headline metric's name in reports/metrics.json, `dvc exp show` and MLflow alike: MLflow metric
# keys may not contain "&" (alphanumerics, _ - . / : and spaces only), so J&F is spelled out.
JF = "J_and_F"
