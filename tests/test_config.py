from pathlib import Path

import pytest

from rvos.config import Config, config_from_dict, config_to_dict, flatten, load_config
from rvos.errors import RvosError

ROOT = Path(__file__).resolve().parents[1]


def test_project_params_file_is_valid_and_complete():
    config = load_config(ROOT / "params.yaml")
    assert isinstance(config, Config)
    assert config.mode == "one_shot"
    assert config.data.source == "synthetic"
    # every field is spelled out in params.yaml (no silent defaults in the pipeline)
    import yaml

    in_file = set(flatten(yaml.safe_load((ROOT / "params.yaml").read_text())))
    assert in_file == set(flatten(config_to_dict(config)))


def test_code_defaults_are_the_shipped_params():
    """One source of defaults: a section built without a params file equals the shipped params.yaml,
    key by key (so `rvos demo` outside a project and the pipeline agree)."""
    shipped = flatten(config_to_dict(load_config(ROOT / "params.yaml")))
    defaults = flatten(config_to_dict(Config()))
    assert {k: v for k, v in defaults.items() if shipped[k] != v} == {}


def test_unknown_key_is_named():
    with pytest.raises(RvosError, match=r"unknown key 'train\.lrr'"):
        config_from_dict({"train": {"lrr": 0.1}})


def test_wrong_type_is_named():
    with pytest.raises(RvosError, match=r"train\.epochs = 'ten' must be an integer"):
        config_from_dict({"train": {"epochs": "ten"}})
    with pytest.raises(RvosError, match=r"train\.augment\.flip = 1 must be true or false"):
        config_from_dict({"train": {"augment": {"flip": 1}}})


def test_unknown_choice_lists_the_valid_ones():
    with pytest.raises(RvosError, match=r"data\.source = 'kinetics' is not one of synthetic \| davis2017"):
        config_from_dict({"data": {"source": "kinetics"}})
    with pytest.raises(RvosError, match=r"mode = 'few_shot'"):
        config_from_dict({"mode": "few_shot"})


def test_range_checks_name_the_full_key():
    with pytest.raises(RvosError, match=r"train\.epochs must be >= 1"):
        config_from_dict({"train": {"epochs": 0}})
    with pytest.raises(RvosError, match=r"model\.hidden_size must be a multiple of 8"):
        config_from_dict({"model": {"hidden_size": 12}})
    with pytest.raises(RvosError, match=r"model\.feedback_threshold must be in \[0, 1\)"):
        config_from_dict({"model": {"feedback_threshold": 1.0}})
    with pytest.raises(RvosError, match=r"train\.empty_weight, overlap_weight and bce_weight must be >= 0"):
        config_from_dict({"train": {"bce_weight": -1}})
    with pytest.raises(RvosError, match=r"zero_shot_matching"):
        config_from_dict({"train": {"zero_shot_matching": "greedy"}})
    with pytest.raises(RvosError, match=r"infer\.min_area_fraction must be in \[0, 1\)"):
        config_from_dict({"infer": {"min_area_fraction": 1.5}})
    with pytest.raises(RvosError, match=r"infer\.zero_shot_mask_threshold must be in \(0, 1\)"):
        config_from_dict({"infer": {"zero_shot_mask_threshold": 0}})


def test_ints_are_accepted_for_floats_but_not_bools():
    assert config_from_dict({"train": {"lr": 1}}).train.lr == 1.0
    with pytest.raises(RvosError, match="must be a number"):
        config_from_dict({"train": {"lr": True}})


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(RvosError, match=r"missing\.yaml: cannot read params file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: [one_shot\n")
    with pytest.raises(RvosError, match=r"bad\.yaml: not valid YAML"):
        load_config(bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("seed: 1.5\n")
    with pytest.raises(RvosError, match=r"wrong\.yaml: params: seed = 1.5 must be an integer"):
        load_config(wrong)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"seed": -1}, r"params: seed must be >= 0"),
        ({"train": {"weight_decay": -1e-6}}, r"params: train\.weight_decay must be >= 0"),
        ({"train": {"encoder_weight_decay": -1}}, r"params: train\.encoder_weight_decay must be >= 0"),
        ({"train": {"lr": 0}}, r"params: train\.lr must be > 0"),
        ({"train": {"encoder_lr": -1}}, r"params: train\.encoder_lr must be >= 0"),
        ({"model": {"kernel_size": -1}}, r"params: model\.kernel_size must be odd and >= 1"),
        ({"train": {"augment": {"rotation_deg": -5}}}, r"params: train\.augment\.rotation_deg must be in"),
        ({"train": {"augment": {"translation": 1.5}}}, r"params: train\.augment\.translation must be in"),
        ({"train": {"augment": {"shear_deg": -1}}}, r"params: train\.augment\.shear_deg must be in"),
        ({"runtime": {"threads": -2}}, r"params: runtime\.threads must be >= 0"),
        ({"runtime": {"num_workers": -1}}, r"params: runtime\.num_workers must be >= 0"),
        ({"metrics": {"workers": 0}}, r"params: metrics\.workers must be >= 1"),
        ({"data": {"davis2017": {"size_bytes": -1}}}, r"params: data\.davis2017\.size_bytes must be >= 0"),
        ({"data": {"archive": {"max_total_mb": 0}}}, r"params: data\.archive\.max_total_mb must be >= 1"),
        ({"data": {"archive": {"max_member_mb": -1}}}, r"params: data\.archive\.max_member_mb must be >= 1"),
    ],
)
def test_every_numeric_param_is_range_checked_by_its_key(values, message):
    with pytest.raises(RvosError, match=message):
        config_from_dict(values)


def test_duplicate_key_is_refused_with_its_line(tmp_path):
    twice = tmp_path / "twice.yaml"
    twice.write_text("train:\n  lr: 0.1\n  epochs: 2\n  lr: 0.2\n")
    with pytest.raises(RvosError, match=r"twice\.yaml: not valid YAML \(duplicate key 'lr' on line 4\)"):
        load_config(twice)
    # the same key in two different sections is not a duplicate
    ok = tmp_path / "ok.yaml"
    ok.write_text("train:\n  epochs: 2\nindex:\n  height: 64\n")
    assert load_config(ok).index.height == 64
