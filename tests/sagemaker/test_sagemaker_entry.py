"""The job's entry point, run here as SageMaker would run it: from the unpacked source archive,
torchrun with gloo on CPU. Two processes reach the loss of one at the same global batch, and a
run killed mid-way resumes from its checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from adapters_local.data.tasks import NEW_TASKS, make_items, to_jsonl_record
from customize.sagemaker.launch_plan import plan_from_env
from customize.sagemaker.package import build_source_archive

STEPS = 24


@pytest.fixture(scope="module")
def job_dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sm-entry")
    archive = build_source_archive(root / "pkg")
    with tarfile.open(archive.path) as packed:
        packed.extractall(root / "code", filter="data")
    task = next(iter(NEW_TASKS.values()))
    items = make_items([task], 56, seed=1)
    for channel, chosen in (("train", items[:48]), ("eval", items[48:])):
        (root / channel).mkdir()
        (root / channel / f"{channel}.jsonl").write_text(
            "".join(json.dumps(to_jsonl_record(i)) + "\n" for i in chosen)
        )
    return root


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(
    root: Path,
    tag: str,
    processes: int,
    rows_per_step: int,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    hps = {
        "method": "lora",
        "base": "builtin",
        "steps": str(STEPS),
        "lr": "0.005",
        "rank": "8",
        "targets": "q_proj,k_proj,v_proj,o_proj",
        "row_len": "128",
        "rows_per_step": str(rows_per_step),
        "eval_every": "4",
        "seed": "0",
        "processes_per_host": str(processes),
    }
    env = {
        **os.environ,
        "SM_HOSTS": '["algo-1"]',
        "SM_CURRENT_HOST": "algo-1",
        "SM_NUM_GPUS": "0",
        "SM_CHANNEL_TRAIN": str(root / "train"),
        "SM_CHANNEL_EVAL": str(root / "eval"),
        "SM_MODEL_DIR": str(root / f"model-{tag}"),
        "SM_HPS": json.dumps(hps),
        "STRATA_CHECKPOINT_DIR": str(root / f"ck-{tag}"),
        "STRATA_MASTER_ADDR": "127.0.0.1",
        "STRATA_MASTER_PORT": str(_port()),
        "OMP_NUM_THREADS": "1",
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "entry.py"],
        cwd=root / "code",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # one process group: killing it kills torchrun and its workers
    )


def _finish(process: subprocess.Popen[bytes]) -> str:
    output, _ = process.communicate(timeout=240)
    text = output.decode()
    assert process.returncode == 0, text
    return text


@pytest.mark.slow
def test_two_gloo_processes_match_one_and_a_killed_run_resumes(job_dirs: Path) -> None:
    single = _finish(_start(job_dirs, "one", processes=1, rows_per_step=4))
    one = json.loads((job_dirs / "model-one" / "adapter" / "report.json").read_text())
    assert one["world_size"] == 1 and one["steps_done"] == STEPS
    assert "strata-train step=24/24 eval_loss=" in single  # the lines MetricDefinitions parse

    # Two processes, two rows each: the same four rows per optimizer step. Killed after its
    # first checkpoint, then started again as SageMaker restarts an interrupted spot job.
    killed = _start(job_dirs, "two", processes=2, rows_per_step=2)
    state = job_dirs / "ck-two" / "run" / "checkpoint" / "state.pt"
    deadline = time.monotonic() + 180
    while not state.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    assert state.exists(), "the run ended before writing a checkpoint"
    assert not (job_dirs / "model-two" / "adapter").exists()  # it really did not finish

    resumed = _finish(_start(job_dirs, "two", processes=2, rows_per_step=2))
    assert "strata-train resuming from" in resumed
    two = json.loads((job_dirs / "model-two" / "adapter" / "report.json").read_text())
    assert two["world_size"] == 2 and two["steps_done"] == STEPS
    assert two["best_eval_loss"] < one["eval_loss_curve"][0][1]  # it learned
    # Gradients are averaged weighted by each rank's answer tokens, so two processes follow the
    # one-process curve to float precision (unweighted averaging was 1.7% off here).
    assert [v for _, v in two["eval_loss_curve"]] == pytest.approx(
        [v for _, v in one["eval_loss_curve"]], rel=1e-3
    )
    assert (job_dirs / "model-two" / "adapter" / "adapter_model.safetensors").is_file()


# Loaded by every process of the resumed run: rank 1 reads the checkpoint's adapter late, as on a
# slow disk or a busy host, and notes which checkpoint it found then (its state file's inode).
SLOW_RANK_ONE = """
import os
if os.environ.get("RANK") == "1":
    import time
    from pathlib import Path
    import peft
    load = peft.PeftModel.from_pretrained.__func__
    def late(cls, model, model_id, *args, **kwargs):
        time.sleep(5)
        state = Path(model_id).parent / "state.pt"
        Path(os.environ["SLOW_RANK_SAW"]).write_text(str(state.stat().st_ino))
        return load(cls, model, model_id, *args, **kwargs)
    peft.PeftModel.from_pretrained = classmethod(late)
"""


@pytest.mark.slow
def test_a_run_killed_after_its_last_checkpoint_resumes_on_every_rank(
    job_dirs: Path, tmp_path: Path
) -> None:
    """Killed after the last step's checkpoint, before the model was saved: on resume no step
    was left, so no all-reduce held rank 0 back, and it replaced the checkpoint while rank 1 was
    still to load it. When the two met, rank 1 found no folder and peft took the path for a Hub
    repo id (seen in CI); otherwise rank 1 silently loaded rank 0's new checkpoint."""
    _finish(_start(job_dirs, "last", processes=2, rows_per_step=2))
    shutil.rmtree(job_dirs / "model-last")  # what a kill after the last checkpoint leaves
    state = job_dirs / "ck-last" / "run" / "checkpoint" / "state.pt"
    left = state.stat().st_ino
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(SLOW_RANK_ONE)
    path = os.pathsep.join(p for p in (str(slow), os.environ.get("PYTHONPATH", "")) if p)
    saw = tmp_path / "rank-1-saw"
    env = {"PYTHONPATH": path, "SLOW_RANK_SAW": str(saw)}
    resumed = _finish(_start(job_dirs, "last", 2, 2, extra_env=env))
    assert "strata-train resuming from" in resumed
    assert int(saw.read_text()) == left  # rank 1 resumed from the checkpoint the kill left
    report = json.loads((job_dirs / "model-last" / "adapter" / "report.json").read_text())
    assert report["world_size"] == 2 and report["steps_done"] == STEPS
    assert (job_dirs / "model-last" / "adapter" / "adapter_model.safetensors").is_file()


def test_launch_plan_spans_all_gpus_of_all_instances() -> None:
    env = {
        "SM_HOSTS": '["algo-1", "algo-2", "algo-3"]',
        "SM_CURRENT_HOST": "algo-2",
        "SM_NUM_GPUS": "8",
        "SM_CHANNEL_TRAIN": "/opt/ml/input/data/train",
    }
    plan = plan_from_env(env, {})
    assert plan.world_size == 24 and plan.node_rank == 1
    args = plan.torchrun_args("entry.py")
    assert args[1:3] == ["-m", "torch.distributed.run"]
    assert "--nnodes=3" in args and "--node_rank=1" in args and "--nproc_per_node=8" in args
    assert "--master_addr=algo-1" in args and args[-2:] == ["entry.py", "--worker"]
    assert plan.channels == {"train": Path("/opt/ml/input/data/train")}
    with pytest.raises(ValueError, match="SM_CURRENT_HOST"):
        plan_from_env({**env, "SM_CURRENT_HOST": "algo-9"}, {})
