"""`rvos evaluate` end to end through `rvos.cli.main`."""

import json
from pathlib import Path

import pytest

from rvos.cli import main

FIXTURE = Path(__file__).parent / "data" / "davis-eval-mini"
CSV_NAMES = ["global_results-val.csv", "per-sequence_results-val.csv"]


def _argv(results: Path, task: str, out: Path, *extra: str) -> list[str]:
    return [
        "evaluate",
        "--davis-root",
        str(FIXTURE / "DAVIS"),
        "--results",
        str(results),
        "--task",
        task,
        "--out",
        str(out),
        *extra,
    ]


@pytest.mark.parametrize("task", ["semi-supervised", "unsupervised"])
def test_cli_writes_the_three_files(tmp_path, task):
    main(_argv(FIXTURE / "results" / task, task, tmp_path / "out", "--workers", "1"))
    for name in CSV_NAMES:
        assert (tmp_path / "out" / name).read_bytes() == (FIXTURE / "expected" / task / name).read_bytes()
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    expected = json.loads((FIXTURE / "expected" / task / "metrics_full-val.json").read_text())
    assert metrics["global"] == pytest.approx(expected["global"], abs=1e-6)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([*CSV_NAMES, "metrics.json"])


def test_cli_default_two_workers(tmp_path):
    main(_argv(FIXTURE / "results" / "semi-supervised", "semi-supervised", tmp_path / "out"))
    assert (tmp_path / "out" / "global_results-val.csv").read_bytes() == (
        FIXTURE / "expected" / "semi-supervised" / "global_results-val.csv"
    ).read_bytes()


def test_cli_bad_id_exits_2_without_output(tmp_path, capsys):
    argv = _argv(FIXTURE / "results" / "semi-supervised-bad-id", "semi-supervised", tmp_path / "out")
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--workers", "1"])
    assert exit_info.value.code == 2
    assert "object id 3 is above the 2 objects" in capsys.readouterr().err  # setup_logging owns stderr
    assert not (tmp_path / "out").exists()


def test_cli_missing_results_folder_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(_argv(tmp_path / "nowhere", "unsupervised", tmp_path / "out"))
    assert exit_info.value.code == 2
    assert "results folder is missing" in capsys.readouterr().err


def test_cli_unknown_set_exits_2(tmp_path):
    argv = _argv(FIXTURE / "results" / "semi-supervised", "semi-supervised", tmp_path / "out")
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--set", "test-dev"])
    assert exit_info.value.code == 2


def test_cli_out_that_is_a_file_fails_before_scoring(tmp_path, capsys, monkeypatch):
    import rvos.metrics.evaluate as evaluate

    scored = []
    monkeypatch.setattr(evaluate, "_score_job", lambda job: scored.append(job))  # must never be reached
    (tmp_path / "a_file").write_text("keep me")
    results = FIXTURE / "results" / "semi-supervised"
    for out, message in [
        (tmp_path / "a_file", "a_file: output path is a file, not a folder"),
        (tmp_path / "a_file" / "out", "cannot create the output folder: "),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main([*_argv(results, "semi-supervised", out), "--workers", "1"])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if " ERROR " in line]
        assert len(errors) == 1 and message in errors[0] and "Traceback" not in err, err
    assert scored == [] and (tmp_path / "a_file").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]
