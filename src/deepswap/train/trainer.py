"""The training loop: read top to bottom, it is the whole of ``deepswap train``.

Each iteration takes a batch of warped faces of A and of B, runs both through the shared encoder
and each through its own decoder, and steps Adam on the masked SSIM + L1 loss. Around that:
resume from ``WS/model``, a progress line, preview grids, ``loss.csv`` and its curve, TensorBoard
when installed, checkpoints every few minutes and on Ctrl-C/SIGTERM, a stop on NaN/Inf, and
DistributedDataParallel under ``torchrun`` (rank 0 writes everything).
"""

from __future__ import annotations

import math
import os
import signal
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np
import torch
import torch.distributed as dist
from rich.console import Console
from torch.nn.parallel import DistributedDataParallel

from .. import _io
from ..errors import DeepswapError
from ..workspace import PERSON_KEYS, Workspace
from . import checkpoint, report
from .data import PersonFaces, TrainingStream, make_loader, preview_faces
from .loss import LossWeights, reconstruction_loss
from .models import SwapModel, build_model, model_spec
from .swapper import native_bf16

Precision = Literal["auto", "bf16", "fp32"]
COVERAGE = 0.8  # of the aligned crop that the models see (see data.face_region)
PREVIEW_FACES = 8


@dataclass
class TrainResult:
    """What a ``train`` call did."""

    model: str
    start_iteration: int
    iteration: int
    loss_a: float | None
    loss_b: float | None
    seconds: float
    samples_per_second: float
    stopped_by: str  # "iterations", "minutes", "signal", "nan"
    folder: Path
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class Runtime:
    """Where and how this process computes: device, precision, DDP rank."""

    device: torch.device
    bf16: bool
    rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()


def setup_runtime(precision: Precision) -> Runtime:
    """Pick the device (CUDA when present), join the process group when run under ``torchrun``
    (nccl on GPUs, gloo on CPUs), and set the fast-math switches."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    else:
        device = torch.device("cpu")
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    # CPUs with AVX512-BF16 or AMX run bf16 convolutions about twice as fast (benchmarks/train.py).
    bf16 = precision == "bf16" or (precision == "auto" and native_bf16(device))
    return Runtime(device=device, bf16=bf16, rank=rank, world_size=world_size)


def choose_model(saved: dict[str, Any] | None, requested: str | None, folder: Path) -> str:
    """The model to train: the saved one when resuming (a different --model is an error, never an
    overwrite), else the requested one, else ``hd`` on a GPU and ``lite`` on a CPU."""
    if saved is not None:
        if requested is not None and requested != saved["model"]:
            raise DeepswapError(f"{folder}: holds a {saved['model']!r} model at iteration {saved['iteration']}; "
                                f"train it with --model {saved['model']}, or move {folder} away to start a {requested!r} one")
        return saved["model"]
    name = requested or ("hd" if torch.cuda.is_available() else "lite")
    model_spec(name)
    return name


def scheduled_lr(iteration: int, base: float, warmup: int) -> float:
    """Linear warm-up over the first ``warmup`` iterations, then constant (a pure function of the
    iteration, so a resumed run continues the schedule exactly)."""
    return base * min(1.0, (iteration + 1) / warmup) if warmup else base


@contextmanager
def stop_on_signals() -> Iterator[dict[str, bool]]:
    """While inside, Ctrl-C and SIGTERM set ``flag["stop"]`` instead of killing the process, so the
    loop can save and exit; a second Ctrl-C interrupts at once."""
    flag = {"stop": False}
    previous = {}

    def handler(signum: int, frame: Any) -> None:
        if flag["stop"] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag["stop"] = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread: signals cannot be caught here
            pass
    try:
        yield flag
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _faces_tensor(faces: np.ndarray, runtime: Runtime) -> torch.Tensor:
    return torch.from_numpy(faces).to(runtime.device).permute(0, 3, 1, 2).float() / 255


def _uint8_images(rgb: torch.Tensor) -> np.ndarray:
    return (rgb.float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def render_preview(model: SwapModel, faces: dict[str, np.ndarray], runtime: Runtime) -> np.ndarray:
    """The preview grid: rows A, A→A, A→B, B, B→B, B→A over the fixed preview faces."""
    rows = []
    for key in PERSON_KEYS:
        other = "b" if key == "a" else "a"
        inputs = _faces_tensor(faces[key], runtime)
        with runtime.autocast():
            rows += [faces[key], _uint8_images(model.swap(inputs, key)[0]), _uint8_images(model.swap(inputs, other)[0])]
    return report.preview_grid(rows, tile=max(128, model.resolution))


def _tensorboard(folder: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(folder / "tensorboard"))


def _eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def train(
    root: str | Path,
    model: str | None = None,
    iterations: int | None = None,
    minutes: float | None = None,
    batch_size: int | None = None,
    compile: bool = False,
    *,
    options: dict[str, Any] | None = None,
    precision: Precision = "auto",
    learning_rate: float | None = None,
    seed: int = 0,
    workers: int | None = None,
    log_every: int | None = None,
    preview_every: int | None = None,
    save_every_minutes: float = 10.0,
    console: Console | None = None,
) -> TrainResult:
    """Train (or resume training) the workspace's face-swap model.

    ``iterations`` is the iteration count to reach (a resumed run continues toward it); ``minutes``
    limits this run's time; with neither, training runs until Ctrl-C. ``options`` override the
    model's architecture (a new model only). ``precision`` "auto" uses bf16 on GPUs and on CPUs
    with native bf16, else fp32. ``learning_rate`` replaces the model's default (and is kept when
    resuming). Checkpoints, previews and logs go to ``WS/model``.
    """
    console = console or Console(stderr=True)
    workspace = Workspace.open(root)
    folder = workspace.model_dir
    if iterations is not None and iterations < 1:
        raise DeepswapError(f"--iterations must be ≥ 1, not {iterations}")
    if minutes is not None and not minutes > 0:
        raise DeepswapError(f"--minutes must be > 0, not {minutes}")
    if batch_size is not None and batch_size < 1:
        raise DeepswapError(f"--batch-size must be ≥ 1, not {batch_size}")
    runtime = setup_runtime(precision)
    cuda = runtime.device.type == "cuda"

    # The data: each process trains on its own share of each person's faces.
    all_faces = {key: PersonFaces.load(workspace, key) for key in PERSON_KEYS}
    faces = {key: all_faces[key].shard(runtime.rank, runtime.world_size) for key in PERSON_KEYS}

    # The model: resumed from the checkpoint (checked whole before anything is written) or new.
    saved = checkpoint.read_state(folder)
    name = choose_model(saved, model, folder)
    spec = model_spec(name)
    if saved is not None:
        net, saved = checkpoint.load_model(folder, runtime.device)
        if options and any(net.options.get(key) != value for key, value in options.items()):
            raise DeepswapError(f"{folder}: the saved {name!r} model has options {net.options}; "
                                f"they cannot change when resuming (move {folder} away to start anew)")
    else:
        torch.manual_seed(seed)  # the same seed gives the same initial weights (and, on DDP, on every rank)
        net = build_model(name, **(options or {})).to(runtime.device)
    training = saved["training"] if saved else {}
    batch = batch_size or training.get("batch_size") or spec.batch_size
    seed = training.get("seed", seed)
    base_lr = learning_rate or training.get("learning_rate") or spec.learning_rate
    coverage = training.get("coverage", COVERAGE)
    weights = LossWeights(ssim=spec.ssim_weight)
    if cuda:
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=base_lr, betas=spec.betas, fused=True)
    if saved is not None:
        checkpoint.load_optimizer(folder, saved, net, optimizer)
    start = saved["iteration"] if saved else 0
    end = iterations if iterations is not None else None
    if end is not None and start >= end:
        console.print(f"{folder}: the {name} model is already at iteration {start} (asked for {end}); nothing to do",
                      highlight=False, soft_wrap=True)
        return TrainResult(name, start, start, None, None, 0.0, 0.0, "iterations", folder)

    engine: torch.nn.Module = net
    if runtime.world_size > 1:
        engine = DistributedDataParallel(net, device_ids=[runtime.device.index] if cuda else None)
    if compile:
        engine = torch.compile(engine)

    stream = TrainingStream(faces, net.resolution, coverage, seed + runtime.rank)
    if workers is None:
        workers = min(8, max(1, (os.cpu_count() or 2) // (2 * runtime.world_size)))
    log_every = log_every or (10 if cuda else 1)
    preview_every = preview_every or (500 if cuda else 100)

    # What rank 0 writes: previews, the loss log and its curve, TensorBoard, checkpoints.
    history = report.read_loss_log(folder / "loss.csv", up_to=start) if runtime.main else []
    preview_set = {key: preview_faces(all_faces[key], PREVIEW_FACES, net.resolution, coverage) for key in PERSON_KEYS}
    board = _tensorboard(folder) if runtime.main else None
    elapsed_before = float(training.get("elapsed_seconds", 0.0))
    best_loss = float(training.get("best_loss") or math.inf)
    state = saved

    def save(iteration: int, seconds: float) -> None:
        """Checkpoint (rank 0), and keep it as best/ when the recent loss is the lowest so far."""
        nonlocal state, best_loss
        recent = [(row["loss_a"] + row["loss_b"]) / 2 for row in history[-20:] if row["iteration"] > start]
        recent_loss = sum(recent) / len(recent) if recent else math.inf
        lowest = min(best_loss, recent_loss)
        training_state = {"batch_size": batch, "learning_rate": base_lr, "seed": seed, "coverage": coverage,
                          "precision": "bf16" if runtime.bf16 else "fp32", "world_size": runtime.world_size,
                          "elapsed_seconds": elapsed_before + seconds,
                          "recent_loss": recent_loss if math.isfinite(recent_loss) else None,
                          "best_loss": lowest if math.isfinite(lowest) else None}
        state = checkpoint.save_checkpoint(folder, net, optimizer, iteration, training_state)
        if recent_loss < best_loss:
            best_loss = recent_loss
            checkpoint.save_best(folder, state)
        report.write_loss_log(folder / "loss.csv", history)
        _io.write_image(folder / "loss.png", report.loss_curve(history))

    if runtime.main:
        console.print(f"training {name} ({net.parameter_count() / 1e6:.1f} M parameters, {net.resolution} px) on "
                      f"{runtime.device.type}{' ×' + str(runtime.world_size) if runtime.world_size > 1 else ''}, "
                      f"{'bf16' if runtime.bf16 else 'fp32'}, batch {batch} per person, faces A {len(all_faces['a'])} "
                      f"B {len(all_faces['b'])}, from iteration {start}", highlight=False, soft_wrap=True)

    def train_step(data: dict[str, torch.Tensor]) -> torch.Tensor:
        """Forward and backward over one batch: both people through the shared encoder, each through
        its own decoder. Returns the detached losses of A and B."""
        inputs = [data[f"{key}_warped"].float().div_(255) for key in PERSON_KEYS]
        if cuda:
            inputs = [x.contiguous(memory_format=torch.channels_last) for x in inputs]
        with runtime.autocast():
            outputs = engine(*inputs)
        person_losses = []
        for key, output in zip(PERSON_KEYS, outputs):
            rgb, mask_logits = net.split_output(output)
            person_losses.append(reconstruction_loss(
                rgb, mask_logits, data[f"{key}_target"].float() / 255, data[f"{key}_mask"].float() / 255,
                data[f"{key}_features"].float() / 255, weights))
        (person_losses[0] + person_losses[1]).backward()
        return torch.stack(person_losses).detach()

    iteration = start
    losses: list[torch.Tensor] = []
    stopped_by = "iterations"
    started = last_report = last_save = last_log = time.monotonic()
    logged_at = start
    with stop_on_signals() as interrupt:
        loader = make_loader(stream, batch, start * batch, workers, pin_memory=cuda)
        while end is None or iteration < end:
            batch_data = {k: v.to(runtime.device, non_blocking=True) for k, v in next(loader).items()}
            for group in optimizer.param_groups:
                group["lr"] = scheduled_lr(iteration, base_lr, spec.warmup)
            optimizer.zero_grad(set_to_none=True)
            losses.append(train_step(batch_data))
            optimizer.step()
            iteration += 1

            if (iteration - start) % log_every and iteration != end:
                continue
            # Every log_every iterations: read the losses back, decide whether to stop, report.
            now = time.monotonic()
            mean_a, mean_b = torch.stack(losses).float().mean(dim=0).tolist()
            losses.clear()
            finite = math.isfinite(mean_a) and math.isfinite(mean_b)
            stop = not finite or interrupt["stop"] or (minutes is not None and now - started >= minutes * 60)
            if runtime.world_size > 1:  # every rank stops at the same iteration, and on any rank's NaN
                flags = torch.tensor([float(stop), float(not finite)], device=runtime.device)
                dist.all_reduce(flags, op=dist.ReduceOp.MAX)
                stop, finite = bool(flags[0]), not bool(flags[1])
            if not finite:
                stopped_by = "nan"
                if runtime.main:
                    kept = (f"the last good checkpoint (iteration {state['iteration']}) is kept" if state
                            else "no checkpoint was written")
                    what = "NaN" if math.isnan(mean_a + mean_b) else "infinite"
                    console.print(f"[red]stopped:[/] the loss became {what} at iteration {iteration}; {kept}. "
                                  "Try a lower learning rate or --precision fp32.", soft_wrap=True)
                break
            rate = (iteration - logged_at) * batch * 2 * runtime.world_size / max(now - last_log, 1e-9)
            last_log, logged_at = now, iteration
            if runtime.main:
                history.append({"iteration": iteration, "loss_a": mean_a, "loss_b": mean_b,
                                "learning_rate": optimizer.param_groups[0]["lr"], "samples_per_second": rate,
                                "elapsed_seconds": elapsed_before + now - started})
                if board is not None:
                    board.add_scalars("loss", {"a": mean_a, "b": mean_b}, iteration)
                    board.add_scalar("samples_per_second", rate, iteration)
                if now - last_report >= 5 or stop or iteration == end or iteration - start == log_every:
                    last_report = now
                    done = (iteration - start) / max(now - started, 1e-9)
                    left = (end - iteration) / done if end else (minutes * 60 - (now - started) if minutes else math.inf)
                    total = f"/{end}" if end else ""
                    console.print(f"iteration {iteration}{total}  loss A {mean_a:.4f}  B {mean_b:.4f}  "
                                  f"{rate:.1f} samples/s  ETA {_eta(left)}", highlight=False, soft_wrap=True)
                if (iteration - start) % preview_every < log_every or stop or iteration == end:
                    net.eval()
                    grid = render_preview(net, preview_set, runtime)
                    net.train()
                    _io.write_image(folder / "preview.png", grid)
                    report.write_loss_log(folder / "loss.csv", history)
                    _io.write_image(folder / "loss.png", report.loss_curve(history))
                    if board is not None:
                        board.add_image("preview", grid, iteration, dataformats="HWC")
                if now - last_save >= save_every_minutes * 60 and not stop:
                    last_save = now
                    save(iteration, now - started)
            if stop:
                stopped_by = "signal" if interrupt["stop"] else "minutes"
                break

        seconds = time.monotonic() - started
        if stopped_by != "nan" and runtime.main:
            save(iteration, seconds)
            console.print(f"saved {name} at iteration {iteration} in {folder}", highlight=False, soft_wrap=True)
    del loader
    if board is not None:
        board.close()
    if runtime.world_size > 1:
        dist.barrier()
    last = history[-1] if history else {}
    rate = (iteration - start) * batch * 2 * runtime.world_size / max(seconds, 1e-9)
    return TrainResult(name, start, iteration, last.get("loss_a"), last.get("loss_b"), seconds, rate, stopped_by,
                       folder, history)
