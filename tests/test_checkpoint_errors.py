"""Bad checkpoints given to every command that loads one: one line, exit 2, nothing written."""

import argparse

import pytest
import torch

from rvos.cli import main
from rvos.model.checkpoint import model_payload
from rvos.model.rvos import RVOS, ModelSpec
from rvos.model.torch_files import save_torch
from tests.test_demo import write_video


def good_payload() -> dict:
    torch.manual_seed(0)
    return model_payload(RVOS(ModelSpec("resnet18", 16, 3, 2, False)), (32, 48), "zero_shot")


def bad_checkpoints(folder) -> dict:
    """name -> (checkpoint file, the part of the error line that says what is wrong)."""
    folder.mkdir()
    cases = {}

    def payload_case(name, change, message):
        payload = good_payload()
        change(payload)
        save_torch(folder / f"{name}.pt", payload)
        cases[name] = (folder / f"{name}.pt", message)

    (folder / "empty.pt").write_bytes(b"")
    cases["empty file"] = (folder / "empty.pt", "checkpoint is an empty file (0 bytes)")
    save_torch(folder / "whole.pt", good_payload())
    whole = (folder / "whole.pt").read_bytes()
    (folder / "cut.pt").write_bytes(whole[: len(whole) // 2])
    cases["truncated file"] = (folder / "cut.pt", "cannot load checkpoint (")
    (folder / "text.pt").write_text("not a checkpoint\n")
    cases["text file"] = (folder / "text.pt", "cannot load checkpoint (")
    # A pickled object (here an argparse.Namespace): torch refuses it and advises weights_only=False.
    torch.save({"format": "rvos-checkpoint", "args": argparse.Namespace(lr=1)}, folder / "pickle.pt")
    cases["pickled object"] = (folder / "pickle.pt", "refused, because loading it would run code")
    payload_case("no input_size", lambda p: p.pop("input_size"), "input_size is None, expected [height")
    payload_case("bad input_size", lambda p: p.update(input_size=[0, 48]), "input_size is [0, 48], expected")
    payload_case("input_size text", lambda p: p.update(input_size="32x48"), "input_size is '32x48'")
    payload_case(
        "unknown encoder", lambda p: p["spec"].update(encoder="vgg16"), "unknown encoder 'vgg16' (known:"
    )
    payload_case("no spec", lambda p: p.pop("spec"), "checkpoint has no architecture")
    payload_case("unknown mode", lambda p: p.update(mode="few_shot"), "mode is 'few_shot', expected")
    payload_case("mode of the other kind", lambda p: p.update(mode="one_shot"), "does not match the arch")
    payload_case("no weights", lambda p: p.pop("model"), "checkpoint has no weights")
    payload_case(
        "unknown spec key", lambda p: p["spec"].update(layers=3), "does not match its architecture ("
    )
    payload_case("not rvos", lambda p: p.update(format="other"), "not an rvos checkpoint")
    payload_case("other version", lambda p: p.update(version=9), "checkpoint version 9")
    return cases


CASES = [
    "empty file", "truncated file", "text file", "pickled object", "no input_size", "bad input_size",
    "input_size text", "unknown encoder", "no spec", "unknown mode", "mode of the other kind",
    "no weights", "unknown spec key", "not rvos", "other version",
]  # fmt: skip


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "weights_only" not in err, err  # never torch's advice to load the file unsafely
    return errors[0]


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return bad_checkpoints(tmp_path_factory.mktemp("bad") / "checkpoints")


@pytest.mark.parametrize("case", CASES)
def test_demo_and_export_refuse_a_bad_checkpoint_in_one_line(tmp_path, capsys, cases, case):
    assert sorted(cases) == sorted(CASES)
    path, message = cases[case]
    video = write_video(tmp_path / "clip.avi", 2)
    for argv in (["demo", str(video), "--checkpoint", str(path)], ["export", str(path)]):
        out = tmp_path / "out"
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, "--out", str(out)])
        assert exit_info.value.code == 2, argv
        line = one_error_line(capsys)
        assert str(path) in line and message in line, line
        assert not out.exists() and not list(tmp_path.glob(".out.tmp-*"))


@pytest.mark.parametrize("case", ["empty file", "pickled object", "no input_size", "unknown encoder"])
def test_infer_stage_refuses_a_bad_checkpoint_in_one_line(tmp_path, monkeypatch, capsys, cases, case):
    path, message = cases[case]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("mode: zero_shot\n")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "rvos.pt").write_bytes(path.read_bytes())
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["infer"])
    assert exit_info.value.code == 2
    line = one_error_line(capsys)
    assert "models/rvos.pt" in line and message in line, line
    assert not (tmp_path / "outputs").exists()
