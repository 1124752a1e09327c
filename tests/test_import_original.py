"""`rvos import-original` on checkpoints laid out like the original project's (random weights)."""

import pickle
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from rvos.cli import main
from rvos.model.checkpoint import load_model


def original_encoder_state(resnet: str, hidden: int) -> dict:
    """Keys of the original FeatureExtractor: base.<resnet incl. fc>, sk5..sk2, bn5..bn2."""
    torch.manual_seed(1)
    state = {
        f"base.{k}": v for k, v in getattr(torchvision.models, resnet)(weights=None).state_dict().items()
    }
    trunk = {"resnet18": [512, 256, 128, 64], "resnet50": [2048, 1024, 512, 256]}[resnet]
    outs = [hidden, hidden, hidden // 2, hidden // 4]
    for level, c_in, c_out in zip([5, 4, 3, 2], trunk, outs):
        state.update(
            {f"sk{level}.{k}": v for k, v in nn.Conv2d(c_in, c_out, 3, padding=1).state_dict().items()}
        )
        bn = nn.BatchNorm2d(c_out)
        bn.running_mean.uniform_()
        state.update({f"bn{level}.{k}": v for k, v in bn.state_dict().items()})
    return state


def original_decoder_state(hidden: int, one_shot: bool) -> dict:
    """Keys of the original RSIS / RSISMask decoder: clstm_list.<i>.Gates and conv_out (+ a stale fc_stop)."""
    torch.manual_seed(2)
    hiddens = [hidden, hidden // 2, hidden // 4, hidden // 8]
    inputs = [hidden, 2 * hiddens[0], 2 * hiddens[1], 2 * hiddens[2]]
    state = {}
    for i, (c_in, h) in enumerate(zip(inputs, hiddens)):
        gates = nn.Conv2d(c_in + 2 * h + int(one_shot), 4 * h, 3, padding=1)
        state.update({f"clstm_list.{i}.Gates.{k}": v for k, v in gates.state_dict().items()})
    state.update({f"conv_out.{k}": v for k, v in nn.Conv2d(hiddens[3], 1, 3, padding=1).state_dict().items()})
    state["fc_stop.weight"] = torch.zeros(1, 10)  # left in old checkpoints; RVOS has no stop head
    return state


def save_pair(folder: Path, encoder: dict, decoder: dict, parallel: bool = False) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "module." if parallel else ""
    torch.save({prefix + k: v for k, v in encoder.items()}, folder / "encoder.pt")
    torch.save({prefix + k: v for k, v in decoder.items()}, folder / "decoder.pt")
    return folder / "encoder.pt", folder / "decoder.pt"


@pytest.mark.parametrize(
    "resnet,hidden,one_shot,parallel",
    [("resnet18", 32, True, False), ("resnet50", 64, False, True)],
)
def test_original_checkpoints_convert_and_keep_every_weight(tmp_path, resnet, hidden, one_shot, parallel):
    encoder, decoder = original_encoder_state(resnet, hidden), original_decoder_state(hidden, one_shot)
    enc_path, dec_path = save_pair(tmp_path / "orig", encoder, decoder, parallel)
    # args.pkl would run code if unpickled; the converter must never open it
    marker = tmp_path / "pwned"
    payload = pickle.dumps(type("Evil", (), {"__reduce__": lambda self: (marker.touch, ())})())
    (tmp_path / "orig" / "args.pkl").write_bytes(payload)
    out = tmp_path / "model.pt"
    main(
        [
            "import-original",
            "--encoder",
            str(enc_path),
            "--decoder",
            str(dec_path),
            "--out",
            str(out),
            "--height",
            "256",
            "--width",
            "448",
        ]
    )
    assert not marker.exists()

    payload = torch.load(out, map_location="cpu", weights_only=True)
    assert payload["mode"] == ("one_shot" if one_shot else "zero_shot")
    assert payload["input_size"] == [256, 448]
    assert payload["spec"] == {
        "encoder": resnet,
        "hidden_size": hidden,
        "kernel_size": 3,
        "max_objects": 10,
        "one_shot": one_shot,
        "dropout": 0.0,
        "feedback_threshold": 0.0,  # the original feeds soft masks back
        "zero_shot_mask_input": False,  # and its zero-shot decoder has no mask input
        "zero_shot_canvas": False,  # nor a canvas
        "target_similarity": False,  # nor similarity maps
    }
    model, _ = load_model(out)
    state = model.state_dict()
    assert torch.equal(state["encoder.layer1.0.conv1.weight"], encoder["base.layer1.0.conv1.weight"])
    assert torch.equal(state["skips.convs.0.weight"], encoder["sk5.weight"])  # stride 32 first
    assert torch.equal(state["skips.norms.3.running_mean"], encoder["bn2.running_mean"])
    assert torch.equal(state["decoder.cells.2.gates.weight"], decoder["clstm_list.2.Gates.weight"])
    assert torch.equal(state["decoder.conv_out.bias"], decoder["conv_out.bias"])
    converted = sum(v.numel() for k, v in encoder.items() if not k.startswith("base.fc."))
    converted += sum(v.numel() for k, v in decoder.items() if not k.startswith("fc_stop"))
    assert sum(v.numel() for v in state.values()) == converted
    with torch.no_grad():
        feats = model.encode(torch.rand(1, 3, 64, 96))
        masks = torch.rand(1, 2, 64, 96) if one_shot else None
        assert model.decode(feats, 2, (64, 96), masks)[0].shape == (1, 2, 64, 96)


def test_mismatched_or_foreign_files_are_clear_errors(tmp_path, capsys):
    encoder = original_encoder_state("resnet18", 32)
    enc_path, dec_path = save_pair(tmp_path, encoder, original_decoder_state(64, True))
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "import-original",
                "--encoder",
                str(enc_path),
                "--decoder",
                str(dec_path),
                "--out",
                str(tmp_path / "m.pt"),
            ]
        )
    assert exit_info.value.code == 2
    assert "does not fit hidden size 32" in capsys.readouterr().err
    torch.save({"weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(SystemExit):
        main(
            [
                "import-original",
                "--encoder",
                str(tmp_path / "other.pt"),
                "--decoder",
                str(dec_path),
                "--out",
                str(tmp_path / "m.pt"),
            ]
        )
    assert "not an original RVOS encoder file" in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()
