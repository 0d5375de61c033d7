"""The SageMaker training job's entry point: torchrun across all GPUs of all instances.

Run as ``entry.py`` (what SageMaker's toolkit starts on each instance) it launches torchrun for
this node; torchrun starts ``entry.py --worker`` once per GPU, which runs the project's own trainer
(``adapters_local.training``) with the job's hyper-parameters. Training writes into the checkpoint
folder SageMaker syncs with S3, so a spot interruption or a restart resumes from the last
checkpoint; rank 0 then copies the adapter, report.json and (if asked) the merged export into
``SM_MODEL_DIR``, which SageMaker uploads when the job ends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def _trainer_request(plan: object, hps: dict[str, str]) -> dict[str, object]:
    """The job's hyper-parameters as ``TrainRequest`` fields: what the job was not told is left
    to the recipe for the base's size (``adapters_local.training.recipes``), as on a laptop."""
    from customize.sagemaker.hyperparams import LOOP_KEYS, typed
    from customize.sagemaker.launch_plan import LaunchPlan, channel_file

    assert isinstance(plan, LaunchPlan)
    values = typed(hps)
    method = values.pop("method", "lora")
    base = str(values.pop("base", "builtin"))
    if "base" in plan.channels:  # a Hugging Face folder given as an S3 channel
        base = str(plan.channels["base"])
    kwargs: dict[str, object] = {
        "method": method,
        "base": base,
        "data": channel_file(plan.channels["train"], "train"),
        "eval_data": channel_file(plan.channels["eval"], "eval")
        if "eval" in plan.channels
        else None,
        "out": plan.checkpoint_dir / "run",
        "device": "cpu" if plan.gpus == 0 else None,
    }
    if "preset" in values:
        kwargs["preset"] = str(values.pop("preset"))
    if method == "lora":
        for key in ("rank", "alpha", "dropout"):
            if key in values:
                kwargs[key] = values.pop(key)
        if "targets" in values:
            kwargs["targets"] = tuple(t for t in str(values.pop("targets")).split(",") if t)
    else:
        if "style" in values:
            style = str(values.pop("style"))
            kwargs["style"] = "houlsby" if style == "houlsby" else "pfeiffer"
        if "reduction_factor" in values:
            kwargs["reduction_factor"] = values.pop("reduction_factor")
    for key in LOOP_KEYS:
        if key in values:
            kwargs[key] = values.pop(key)
    return kwargs


def worker() -> int:
    from adapters_local.training.checkpoint import checkpoint_dir
    from adapters_local.training.distributed import is_main_process
    from adapters_local.training.loop import train
    from adapters_local.training.settings import TrainRequest
    from customize.sagemaker.launch_plan import hyperparameters, plan_from_env

    hps = hyperparameters(os.environ)
    plan = plan_from_env(os.environ, hps)
    request = TrainRequest(**_trainer_request(plan, hps))  # type: ignore[arg-type]
    resume = (checkpoint_dir(request.out) / "state.pt").is_file()
    if resume and is_main_process():
        print(f"strata-train resuming from {checkpoint_dir(request.out)}", flush=True)
    report = train(request, resume=resume)
    if is_main_process():
        _publish(request.out, plan.model_dir, request, hps.get("export"))
        print(
            f"strata-train done steps={report['steps_done']} "
            f"best_eval_loss={report['best_eval_loss']}",
            flush=True,
        )
    return 0


def _publish(run: Path, model_dir: Path, settings: object, export_dtype: str | None) -> None:
    """The adapter and its report into SM_MODEL_DIR; the merged export too when asked for."""
    from adapters_local.training.settings import TrainRequest

    assert isinstance(settings, TrainRequest)
    adapter = model_dir / "adapter"
    if adapter.exists():
        shutil.rmtree(adapter)
    shutil.copytree(run, adapter, ignore=shutil.ignore_patterns("checkpoint", "checkpoint.*"))
    if export_dtype and settings.method == "lora":
        from adapters_local.export.merge import export_merged

        result = export_merged(settings.base, adapter, model_dir / "export", export_dtype)
        for problem in result.problems:
            print(f"strata-train export check: {problem}", flush=True)


def launch() -> int:
    from customize.sagemaker.launch_plan import hyperparameters, plan_from_env

    plan = plan_from_env(os.environ, hyperparameters(os.environ))
    args = plan.torchrun_args(str(Path(__file__).resolve()))
    print(
        f"strata-train node {plan.node_rank + 1}/{len(plan.hosts)}: "
        f"{plan.processes_per_host} process(es), world size {plan.world_size}",
        flush=True,
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")]
        ),
    }
    return subprocess.call(args, env=env)


if __name__ == "__main__":
    # SageMaker passes the hyper-parameters as arguments too; they are read from SM_HPS instead.
    sys.exit(worker() if "--worker" in sys.argv[1:] else launch())
