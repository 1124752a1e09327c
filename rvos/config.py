"""The one configuration object, built from `params.yaml`.

The dataclass defaults below are the shipped `params.yaml`, value for value (tests/test_config.py
checks it), so code that builds a section without a params file (`rvos demo` outside a project,
tests) gets the same settings as the pipeline.

Each section of `params.yaml` is a frozen dataclass below; `load_config()` checks every key and type
and refuses unknown keys, so that a typo in `dvc exp run -S train.lrr=...` is an error instead of a
silently ignored setting. Range checks live in each section's `__post_init__`.
"""

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from rvos.errors import RvosError

Mode = Literal["one_shot", "zero_shot"]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


# ----------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class SyntheticConfig:
    """Size of the embedded, procedurally generated dataset (DAVIS-2017 layout)."""

    train_videos: int = 48
    val_videos: int = 128  # the test set (DAVIS 'val'): the target is a bootstrap std of J&F <= 0.015
    min_frames: int = 25
    max_frames: int = 50
    height: int = 240
    width: int = 432
    max_objects: int = 5  # every video has 1..max_objects objects

    def __post_init__(self) -> None:
        _check(self.train_videos >= 1 and self.val_videos >= 1, "needs at least one train and one val video")
        _check(2 <= self.min_frames <= self.max_frames, "needs 2 <= min_frames <= max_frames")
        _check(self.height >= 32 and self.width >= 32, "height and width must be >= 32")
        _check(1 <= self.max_objects <= 254, "max_objects must be in 1..254")


@dataclass(frozen=True)
class Davis2017Config:
    """Where the official DAVIS-2017 trainval archive comes from and what it must hash to."""

    url: str = "https://data.vision.ee.ethz.ch/csergi/share/davis/DAVIS-2017-trainval-480p.zip"
    # from tensorflow/datasets' checksums.tsv; empty: the size is still checked, the hash only logged
    sha256: str = "e3d0b5b77c3d031b000a19e0e25e3e2cac65d183755601bc2cf066df1a2aa492"
    size_bytes: int = 832766765  # 0: take the size from the server's Content-Length

    def __post_init__(self) -> None:
        _check(self.size_bytes >= 0, "size_bytes must be >= 0")


@dataclass(frozen=True)
class PathSourceConfig:
    """A dataset the user already has on disk (archive or folder)."""

    path: str = ""


@dataclass(frozen=True)
class ArchiveConfig:
    """What extracting one dataset archive may write at most (a decompression bomb is refused).

    Far above the real datasets: the DAVIS-2017 480p trainval archive extracts to under 1 GB and its
    largest file is a few MB; a YouTube-VOS release with every frame is tens of GB."""

    max_total_mb: int = 200_000  # all members together, uncompressed (MiB)
    max_member_mb: int = 1024  # any one member, uncompressed (MiB)

    def __post_init__(self) -> None:
        _check(self.max_total_mb >= 1, "max_total_mb must be >= 1")
        _check(self.max_member_mb >= 1, "max_member_mb must be >= 1")


@dataclass(frozen=True)
class DataConfig:
    source: Literal["synthetic", "davis2017", "youtubevos", "local"] = "synthetic"
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    davis2017: Davis2017Config = field(default_factory=Davis2017Config)
    youtubevos: PathSourceConfig = field(default_factory=PathSourceConfig)
    local: PathSourceConfig = field(default_factory=PathSourceConfig)
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)


@dataclass(frozen=True)
class SplitConfig:
    """How videos are divided into train / valid (checkpoint selection) / test (final metrics)."""

    valid_fraction: float = 0.2  # of the training videos, held out for per-epoch validation
    youtube_test_fraction: float = 0.2  # YouTube-VOS train-val share (the original's 80/20 split)

    def __post_init__(self) -> None:
        _check(0.0 < self.valid_fraction < 1.0, "valid_fraction must be in (0, 1)")
        _check(0.0 < self.youtube_test_fraction < 1.0, "youtube_test_fraction must be in (0, 1)")


@dataclass(frozen=True)
class IndexConfig:
    """The LMDB holding every frame and mask pre-resized to the training resolution."""

    height: int = 128
    width: int = 224
    jpeg_quality: int = 90
    map_size_mb: int = 4096

    def __post_init__(self) -> None:
        _check(self.height >= 32 and self.width >= 32, "height and width must be >= 32")
        _check(1 <= self.jpeg_quality <= 100, "jpeg_quality must be in 1..100")
        _check(self.map_size_mb >= 1, "map_size_mb must be >= 1")


# ---------------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class ModelConfig:
    """RVOS architecture (spec section 1). The paper preset is resnet101 / hidden 128 / 10 slots."""

    encoder: Literal["resnet18", "resnet34", "resnet50", "resnet101"] = "resnet18"
    pretrained: Literal["imagenet", "none"] = "none"
    weights_path: str = ""  # explicit ImageNet weights file; else the torch hub cache is searched
    hidden_size: int = 64  # ConvLSTM hidden channels at the coarsest level (halved per level)
    kernel_size: int = 3
    max_objects: int = 5  # object slots decoded per frame (10 in the paper)
    dropout: float = 0.0
    feedback_threshold: float = 0.2  # own masks fed back binarized at this probability; 0 = soft
    zero_shot_mask_input: bool = True  # zero-shot slots also read their previous mask; False = original
    zero_shot_canvas: bool = True  # zero-shot slots also read the union of the earlier slots' masks
    target_similarity: bool = True  # one-shot slots also read how alike each place is to their object

    def __post_init__(self) -> None:
        _check(0.0 <= self.feedback_threshold < 1.0, "feedback_threshold must be in [0, 1)")
        _check(self.hidden_size >= 8 and self.hidden_size % 8 == 0, "hidden_size must be a multiple of 8")
        _check(self.kernel_size >= 1 and self.kernel_size % 2 == 1, "kernel_size must be odd and >= 1")
        _check(1 <= self.max_objects <= 255, "max_objects must be in 1..255")
        _check(0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)")


# ------------------------------------------------------------------------------------- training


@dataclass(frozen=True)
class AugmentConfig:
    """One random flip + affine per clip, shared by all its frames (bilinear images, nearest masks)."""

    enabled: bool = True
    flip: bool = True
    rotation_deg: float = 10.0
    translation: float = 0.1  # fraction of height / width
    shear_deg: float = 5.7  # the original meant 0.1 rad; it was read as degrees (spec section 7)
    zoom_min: float = 0.7
    zoom_max: float = 1.4

    def __post_init__(self) -> None:
        _check(0.0 < self.zoom_min <= self.zoom_max, "needs 0 < zoom_min <= zoom_max")
        _check(0.0 <= self.rotation_deg <= 180.0, "rotation_deg must be in [0, 180]")
        _check(0.0 <= self.translation < 1.0, "translation must be in [0, 1)")
        _check(0.0 <= self.shear_deg < 90.0, "shear_deg must be in [0, 90)")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 12
    batch_size: int = 4
    clip_len: int = 5
    lr: float = 1.0e-3  # decoder + skip reductions
    weight_decay: float = 1.0e-6
    encoder_lr: float = 1.0e-3  # paper: 1e-6 (ImageNet encoder); a scratch encoder must learn
    encoder_weight_decay: float = 1.0e-6
    lr_schedule: Literal["constant", "cosine"] = "constant"  # per-epoch lr factor (original: constant)
    teacher_forcing_epochs: int = 5  # one-shot "ST+" curriculum: GT previous masks, then own predictions
    clips_per_video: int = 0  # 0: the original's non-overlapping clips; N: N random clips per video
    # consecutive clips trained in sequence with the recurrent state carried over (truncated BPTT);
    # 1: every clip starts from its own first frame (the original)
    window_clips: int = 1
    # one-shot target similarity: the objects' references come from each clip's first frame (`clip`)
    # or from the video's first annotated frame, as in inference (`video`: scored lower, docs/experiments.md)
    reference_frame: Literal["video", "clip"] = "clip"
    validate_every: int = 2  # validation (clip loss; video J&F, the checkpoint choice) every N epochs + last
    empty_weight: float = 1.0  # weight of the loss that teaches slots without an object to stay empty
    overlap_weight: float = 0.0  # zero-shot: weight of the loss on two slots covering the same pixels
    bce_weight: float = 3.0  # per-pixel binary cross-entropy added to soft IoU (0 = the original loss)
    # zero-shot: which slot is trained on which object (rvos.training.objective.zero_shot_slot_ids)
    zero_shot_matching: Literal["first_slots", "all_slots", "reading_order"] = "all_slots"
    precision: Literal["bf16", "fp32"] = "bf16"  # bf16 autocast (CUDA, and CPUs with native bf16)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, "epochs must be >= 1")
        _check(self.batch_size >= 1, "batch_size must be >= 1")
        _check(self.clip_len >= 1, "clip_len must be >= 1")
        _check(self.lr > 0, "lr must be > 0")
        _check(self.encoder_lr >= 0, "encoder_lr must be >= 0")
        _check(self.weight_decay >= 0, "weight_decay must be >= 0")
        _check(self.encoder_weight_decay >= 0, "encoder_weight_decay must be >= 0")
        _check(self.teacher_forcing_epochs >= 0, "teacher_forcing_epochs must be >= 0")
        _check(self.clips_per_video >= 0, "clips_per_video must be >= 0")
        _check(self.window_clips >= 1, "window_clips must be >= 1")
        _check(self.validate_every >= 1, "validate_every must be >= 1")
        _check(
            min(self.empty_weight, self.overlap_weight, self.bce_weight) >= 0,
            "empty_weight, overlap_weight and bce_weight must be >= 0",
        )


@dataclass(frozen=True)
class InferConfig:
    mask_threshold: float = 0.5  # one-shot: a pixel goes to its most probable slot above this
    # one-shot: own masks fed back binarized at this probability when segmenting (training feeds back
    # at model.feedback_threshold); a model with soft feedback (the original's) keeps it soft
    feedback_threshold: float = 0.05
    zero_shot_mask_threshold: float = 0.2  # zero-shot slots are less sure of their pixels
    max_proposals: int = 20  # zero-shot: the unsupervised protocol scores at most 20
    min_area_fraction: float = 0.001  # zero-shot: smaller slots (on every frame) and regions are dropped
    split_components: bool = True  # zero-shot: one proposal per connected region of a slot

    def __post_init__(self) -> None:
        _check(0.0 < self.mask_threshold < 1.0, "mask_threshold must be in (0, 1)")
        _check(0.0 < self.feedback_threshold < 1.0, "feedback_threshold must be in (0, 1)")
        _check(0.0 < self.zero_shot_mask_threshold < 1.0, "zero_shot_mask_threshold must be in (0, 1)")
        _check(1 <= self.max_proposals <= 20, "max_proposals must be in 1..20")
        _check(0.0 <= self.min_area_fraction < 1.0, "min_area_fraction must be in [0, 1)")


@dataclass(frozen=True)
class MetricsConfig:
    workers: int = 2  # processes used to score sequences

    def __post_init__(self) -> None:
        _check(self.workers >= 1, "workers must be >= 1")


# ---------------------------------------------- undeclared sections: changing them re-runs nothing


@dataclass(frozen=True)
class RuntimeConfig:
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_workers: int = 0
    threads: int = 0  # torch intra-op threads; 0 = PyTorch's default

    def __post_init__(self) -> None:
        _check(self.num_workers >= 0, "num_workers must be >= 0")
        _check(self.threads >= 0, "threads must be >= 0")


@dataclass(frozen=True)
class MlflowConfig:
    experiment: str = "rvos"


@dataclass(frozen=True)
class Config:
    mode: Mode = "one_shot"
    seed: int = 123
    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    infer: InferConfig = field(default_factory=InferConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)

    def __post_init__(self) -> None:
        _check(self.seed >= 0, "seed must be >= 0")


# ------------------------------------------------------------------------------------- building


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Check `value` against the annotation `tp`; return it converted (int -> float, dict -> dataclass)."""
    if dataclasses.is_dataclass(tp):
        return build_section(tp, value, where)
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            choices = " | ".join(str(a) for a in typing.get_args(tp))
            raise RvosError(f"params: {where} = {value!r} is not one of {choices}")
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            try:
                return _convert(option, value, where)
            except RvosError as err:
                errors.append(str(err))
        raise RvosError(errors[0])
    if tp is bool:
        if not isinstance(value, bool):
            raise RvosError(f"params: {where} = {value!r} must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RvosError(f"params: {where} = {value!r} must be an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RvosError(f"params: {where} = {value!r} must be a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise RvosError(f"params: {where} = {value!r} must be a string")
        return value
    raise TypeError(f"unsupported annotation {tp!r} for {where}")


def build_section(cls: type, values: Any, where: str) -> Any:
    """Build and validate the section dataclass `cls` from a dict; `where` names it in errors."""
    if not isinstance(values, dict):
        raise RvosError(f"params: {where or 'the file'} must be a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise RvosError(f"params: unknown key '{key}' (known here: {', '.join(sorted(known))})")
    kwargs = {}
    for name in known & set(values):
        key = f"{where}.{name}" if where else name
        kwargs[name] = _convert(hints[name], values[name], key)
    try:
        return cls(**kwargs)
    except ValueError as err:
        raise RvosError(f"params: {_section_message(where, known, str(err))}") from None


def _section_message(where: str, known: set[str], message: str) -> str:
    """'workers must be >= 1' in section 'metrics' -> 'metrics.workers must be >= 1': the full key."""
    first = message.split(" ", 1)[0].rstrip(",")
    if first in known:
        return f"{where}.{message}" if where else message
    return f"{where or 'top level'}: {message}"


def config_from_dict(values: dict) -> Config:
    """Build and validate a `Config` from the parsed content of a params file."""
    return build_section(Config, values, "")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}' on line {line}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path = "params.yaml") -> Config:
    """Read and validate `params.yaml`; raise `RvosError` naming the file and key on any problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise RvosError(f"{path}: cannot read params file ({err.strerror})") from None
    try:
        values = yaml.load(text, Loader=_UniqueKeyLoader) or {}  # a SafeLoader subclass: still safe
    except yaml.YAMLError as err:
        raise RvosError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    try:
        return config_from_dict(values)
    except RvosError as err:
        raise RvosError(f"{path}: {err}") from None


def config_to_dict(config: Config) -> dict:
    """The config as nested plain dicts (for logging and for storing in checkpoints)."""
    return dataclasses.asdict(config)


def flatten(values: dict, prefix: str = "") -> dict[str, Any]:
    """{'train': {'lr': 1}} -> {'train.lr': 1}: the keys DVC and MLflow show."""
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
