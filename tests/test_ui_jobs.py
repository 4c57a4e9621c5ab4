"""The web UI's background jobs: real library steps in child processes, as the server runs them."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

import deepswap
from deepswap.errors import DeepswapError
from deepswap.ui.jobs import FAILED, STOPPED, Busy, Job, JobManager, decode_job, encode_job
from deepswap.workspace import init_workspace

TINY = {"resolution": 32, "width": 8, "latent": 32}


def wait_for(condition, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def finished(job: Job) -> Job:
    wait_for(lambda: not job.active)
    return job


def test_a_job_crosses_to_the_worker_as_json_and_comes_back_whole(tmp_path: Path) -> None:
    """The worker's stdin carries JSON, not pickle: paths and every option dataclass come back equal
    (and are checked again when rebuilt); anything else is refused before a process starts."""
    arguments = {"workspace": tmp_path / "ws", "evaluate": deepswap.EvaluateOptions(max_frames=30),
                 "options": deepswap.ConvertOptions(start=1.5, replace=deepswap.ReplaceSettings(detail=0.5, color="hist"),
                                                    sign_cert=tmp_path / "cert.pem", sign_key=tmp_path / "key.pem"),
                 "train": deepswap.TrainOptions(minutes=2, architecture={"width": 8, "resolution": 32}),
                 "extract": deepswap.ExtractOptions(person="a", fps=5)}
    data = encode_job("convert", arguments)
    json.loads(data)
    assert b"pickle" not in data
    assert decode_job(data) == ("convert", arguments)
    with pytest.raises(TypeError):
        encode_job("convert", {"workspace": object()})


def test_a_failing_step_shows_the_line_the_cli_prints(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    init_workspace(folder, "alice", "bob")
    with pytest.raises(DeepswapError) as expected:
        deepswap.extract(folder)
    jobs = JobManager()
    job = finished(jobs.start(folder, "extract", "extracting", "extract",
                              {"workspace": folder, "options": deepswap.ExtractOptions()}))
    assert job.state == FAILED
    assert job.error == str(expected.value)
    assert jobs.latest(folder) is job and jobs.running(folder) is None


def test_a_failed_download_is_named_like_the_cli_names_it(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    init_workspace(folder, "alice", "bob")
    deepswap.add_sources(folder, "a", ["http://127.0.0.1:9/nothing-listens-here.mp4"])
    with pytest.raises(DeepswapError) as expected:
        deepswap.fetch_sources(folder)
    job = finished(JobManager().start(folder, "fetch", "fetching", "fetch", {"workspace": folder}))
    assert job.state == FAILED and job.error == str(expected.value)
    assert "nothing-listens-here" in job.error
    assert [task.unit for task in job.tasks.values()] == ["bytes"]  # the download showed as a task of its own


@pytest.mark.slow
def test_stopping_training_saves_like_ctrl_c_and_one_job_runs_per_workspace(tmp_path: Path, extracted_workspace: Path) -> None:
    folder = tmp_path / "ws"
    shutil.copytree(extracted_workspace, folder)
    options = deepswap.TrainOptions(batch_size=4, architecture=TINY, workers=0)  # until stopped
    jobs = JobManager()
    job = jobs.start(folder, "train", "training", "train", {"workspace": folder, "options": options})
    with pytest.raises(Busy, match="busy with training"):
        jobs.start(folder, "extract", "extracting", "extract", {"workspace": folder, "options": deepswap.ExtractOptions()})
    wait_for(lambda: len(job.loss) >= 3)
    jobs.stop(folder)
    finished(job)
    assert job.state == STOPPED, job.error
    saved = json.loads((folder / "model" / "state.json").read_text())
    assert saved["iteration"] == job.result["iteration"] >= 3
    assert job.loss[-1][0] <= saved["iteration"]
    assert any(path.endswith("preview.png") for path in job.files)

    # Stopping the server (shutdown) stops a running job the same way: it saves before the server ends.
    again = jobs.start(folder, "train", "training", "train", {"workspace": folder, "options": options})
    wait_for(lambda: again.loss and again.loss[-1][0] >= saved["iteration"] + 2)
    jobs.shutdown()
    assert finished(again).state == STOPPED
    assert json.loads((folder / "model" / "state.json").read_text())["iteration"] == again.result["iteration"] > saved["iteration"]
