"""The command line's messages for mistakes: each is one clear line (or list), exit 2, nothing written."""
from __future__ import annotations

from pathlib import Path

import pytest

from csresearch import studies
from csresearch.cli import main
from csresearch.world import WorldConfig, generate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "data"
    generate(WorldConfig(n_accounts=60, seed=3), folder)
    return folder


def _err_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "Traceback" not in err and "[Errno" not in err
    return err


# ------------------------------------------------------------------------------------------- study parameters
def test_an_unknown_set_key_suggests_the_nearest_parameters(tmp_path, capsys):
    assert main(["study", "--set", "segmnt=smb", "--out", str(tmp_path / "out")]) == 2
    assert "--set: unknown parameter 'segmnt' (did you mean segment?)" in _err_line(capsys)
    assert not (tmp_path / "out").exists()


def test_an_unknown_key_in_a_params_file_suggests_and_names_the_file(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text("segment: smb\nlagdays: 30\nhealth: health_score\n")
    assert main(["study", str(path), "--out", str(tmp_path / "out")]) == 2
    err = _err_line(capsys)
    assert f"{path}: unknown parameter 'lagdays' (did you mean lag_days?)" in err
    assert f"{path}: unknown parameter 'health' (did you mean health_score_metric?)" in err


def test_a_set_key_is_blamed_on_set_not_on_the_params_file(tmp_path, capsys):
    assert main(["study", str(ROOT / "params" / "smb.yaml"), "--set", "lag_dayz=3", "--out", str(tmp_path / "o")]) == 2
    err = _err_line(capsys)
    assert "--set: unknown parameter 'lag_dayz' (did you mean lag_days?)" in err and "smb.yaml" not in err


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n  # and another\n"])
def test_an_empty_params_file_is_an_error_naming_it(tmp_path, capsys, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    assert main(["study", str(path), "--out", str(tmp_path / "out")]) == 2
    assert f"{path}: the params file is empty" in _err_line(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value, message", [
    ("0", "argument --workers: must be 1 or more (studies run at once), not 0"),
    ("-2", "argument --workers: must be 1 or more (studies run at once), not -2"),
    ("two", "argument --workers: must be a whole number of 1 or more, not 'two'"),
])
def test_workers_must_be_at_least_one(tmp_path, capsys, value, message):
    with pytest.raises(SystemExit) as exit_:
        main(["study", "--workers", value, "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------- the output folder
def _blocked_outputs(tmp_path: Path) -> list[tuple[Path, str]]:
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder\n")
    cases = [(a_file / "out", f"{a_file} is a file, not a folder"), (a_file, f"{a_file} is a file, not a folder")]
    if Path("/proc/self").is_dir():  # Linux: /proc accepts no new folders
        cases.append((Path("/proc/nope"), "no folder can be created in /proc"))
    return cases


def test_an_impossible_output_folder_is_one_line_naming_it(tmp_path, tiny_world, capsys):
    for out, why in _blocked_outputs(tmp_path):
        assert main(["study", "--data", str(tiny_world), "--out", str(out)]) == 2
        err = _err_line(capsys)
        assert err == f"csresearch study: cannot write the output folder {out}: {why}"


# ------------------------------------------------------------------------------------------- generate
@pytest.mark.parametrize("args, message", [
    (["--observed-from", "2026-06-30"], "--observed-from must be before the extraction date (--as-of 2026-06-30, "
                                        "the default), not 2026-06-30: a snapshot starts before it is extracted"),
    (["--observed-from", "2025-01-01", "--as-of", "2024-12-31"], "--observed-from must be before the extraction date "
                                        "(--as-of 2024-12-31), not 2025-01-01: a snapshot starts before it is extracted"),
    (["--observed-from", "2024-13-01"], "--observed-from must be a date YYYY-MM-DD, not '2024-13-01'"),
    (["--observed-from", "last year"], "--observed-from must be a date YYYY-MM-DD, not 'last year'"),
    (["--as-of", "2024-02-30"], "--as-of must be a date YYYY-MM-DD, not '2024-02-30'"),
])
def test_generate_rejects_a_snapshot_date_not_before_extraction(tmp_path, capsys, args, message):
    out = tmp_path / "world"
    assert main(["generate", "--out", str(out), "--accounts", "20", *args]) == 2
    assert _err_line(capsys) == f"csresearch generate: error: {message}"
    assert not out.exists()


def test_generate_accepts_a_snapshot_before_extraction(tmp_path, capsys):
    assert main(["generate", "--out", str(tmp_path / "w"), "--accounts", "30", "--observed-from", "2026-06-29"]) == 0
    assert "observed_from: '2026-06-29'" in (tmp_path / "w" / "dataset.yaml").read_text()


# ------------------------------------------------------------------------------------------- paths
def test_params_paths_are_relative_to_the_params_file(tmp_path, tiny_world, monkeypatch):
    params = tiny_world.parent / "params"
    params.mkdir()
    (params / "study.yaml").write_text("data_dir: ../data\noutput_dir: ../figures\nsegment: null\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec, = studies.plan([params / "study.yaml"])
    assert spec.params["data_dir"] == str(tiny_world.resolve())
    assert spec.params["output_dir"] == str((tiny_world.parent / "figures").resolve())
    assert spec.name == "study"


def test_command_line_paths_are_relative_to_the_working_directory(tmp_path, tiny_world, monkeypatch):
    params = tiny_world.parent / "conf"
    params.mkdir()
    (params / "study.yaml").write_text("data_dir: nowhere\n")  # overridden below: never looked up
    monkeypatch.chdir(tiny_world.parent)
    for kwargs in ({"data": "data"}, {"sets": ["data_dir=data"]}):
        spec, = studies.plan([params / "study.yaml"], **kwargs)
        assert spec.params["data_dir"] == str(tiny_world.resolve())


def test_the_bundled_params_run_from_any_working_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    spec, = studies.plan([ROOT / "params" / "smb.yaml"])
    assert spec.params["data_dir"] == str(ROOT / "data" / "sample") and spec.params["segment"] == "smb"
    # and through the command, up to the output folder check (a file stands where the folder would be)
    (tmp_path / "out").write_text("")
    assert main(["study", str(ROOT / "params" / "smb.yaml"), "--out", "out"]) == 2
    assert _err_line(capsys) == "csresearch study: cannot write the output folder out: out is a file, not a folder"
