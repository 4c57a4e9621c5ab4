"""The training loop: read top to bottom, it is the whole of ``deepswap train``.

Each iteration takes a batch of warped faces of A and of B, runs both through the shared encoder
and each through its own decoder, and steps Adam on the masked SSIM + L1 loss. The last quarter
of the run's budget is its finishing stage (``finishing``): the learning rate falls
(``scheduled_lr``), the faces come unwarped and unmoved (only flipped and relit) and, for models
with a swap critic (``critic.py``), the critic judges A drawn by B's decoder against B's own faces.
Around that:
resume from ``WS/model``, progress events, preview grids, ``loss.csv`` and its curve, TensorBoard
when installed, checkpoints every few minutes and on Ctrl-C/SIGTERM/SIGHUP or a stop request, a
stop on NaN/Inf, and DistributedDataParallel under ``torchrun`` (rank 0 writes everything).
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .. import _io
from ..errors import DeepswapError
from ..progress import ProgressCallback, Reporter
from ..workspace import PERSON_KEYS, WorkspaceLike, as_workspace
from ..writers import writes_workspace
from . import checkpoint, report
from .config import COVERAGE, Precision, TrainConfig, TrainOptions
from .critic import PatchCritic, critic_loss, generator_loss, inner_face_box
from .data import FINISHING_AUGMENT, REGION_CACHE_BYTES, PersonFaces, TrainingStream, make_loader, preview_faces
from .loss import LossWeights, reconstruction_loss
from .models import SwapModel, build_model, model_spec
from .swapper import native_bf16

PREVIEW_FACES = 8
CRITIC_LR = 2e-4  # Adam's rate for the swap critic (β1 0.5, as for GANs)


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
    stopped_by: str  # "iterations", "minutes", "signal" (a signal or a stop request), "nan"
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


def process_rank() -> int:
    """This process's rank in a ``torchrun`` job (0 when it runs alone)."""
    return int(os.environ.get("RANK", "0"))


def setup_runtime(precision: Precision) -> Runtime:
    """Pick the device (CUDA when present), join the process group when run under ``torchrun``
    (nccl on GPUs, gloo on CPUs), and set the fast-math switches."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
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
    return Runtime(device=device, bf16=bf16, rank=process_rank(), world_size=world_size)


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


FINISHING_SHARE = 0.25  # the last share of a run's budget (--iterations or --minutes): its finishing stage
FINAL_LR = 0.1  # of the base rate, reached at the end of the budget


def finishing(progress: float | None) -> bool:
    """Whether a run with ``progress`` (the share of its budget done, None without one) is in its
    finishing stage, the last ``FINISHING_SHARE`` of the budget: the learning rate falls and the random
    warp, turn, zoom and shift are off (``FINISHING_AUGMENT``), so the model settles on drawing each
    face exactly as convert aligns it, not its warped or moved average — DeepFaceLab's "random warp
    off" stage, made part of every budget."""
    return progress is not None and progress >= 1 - FINISHING_SHARE


def scheduled_lr(iteration: int, base: float, warmup: int, progress: float | None = None) -> float:
    """Linear warm-up over the first ``warmup`` iterations, constant, then a cosine fall to
    ``FINAL_LR`` × base over the last ``FINISHING_SHARE`` of the budget (``progress``: the share of it
    done, 0..1; None when the run has no budget and trains until stopped). Adam at a high constant
    rate leaves the weights noisy and the faces soft; the fall settles them (benchmarks/quality.py)."""
    rate = base * min(1.0, (iteration + 1) / warmup) if warmup else base
    if progress is None:
        return rate
    fall = min(1.0, max(0.0, (progress - (1 - FINISHING_SHARE)) / FINISHING_SHARE))
    return rate * (FINAL_LR + (1 - FINAL_LR) * (1 + math.cos(math.pi * fall)) / 2)


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[threading.Event]:
    """While inside, Ctrl-C, SIGTERM and SIGHUP (a closed terminal or SSH session) set ``stop``
    instead of killing the process, so the loop can save and exit; a second Ctrl-C interrupts at once."""
    previous = {}

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])):
        try:
            previous[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread: signals cannot be caught here
            pass
    try:
        yield stop
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _faces_tensor(faces: np.ndarray, runtime: Runtime) -> torch.Tensor:
    return torch.from_numpy(faces).to(runtime.device).permute(0, 3, 1, 2).float() / 255


def _uint8_images(rgb: torch.Tensor) -> np.ndarray:
    return (rgb.float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def render_preview(model: SwapModel, faces: dict[str, np.ndarray], runtime: Runtime) -> np.ndarray:
    """The preview grid: rows A, A→A, A→B, B, B→B, B→A over the fixed preview faces (at the model's
    output resolution; the model sees them shrunk to its input resolution)."""
    rows = []
    for key in PERSON_KEYS:
        other = "b" if key == "a" else "a"
        inputs = _faces_tensor(faces[key], runtime)
        if model.output_resolution != model.resolution:
            inputs = torch.nn.functional.interpolate(inputs, size=model.resolution, mode="area")
        with runtime.autocast():
            rows += [faces[key], _uint8_images(model.swap(inputs, key)[0]), _uint8_images(model.swap(inputs, other)[0])]
    return report.preview_grid(rows, tile=max(128, model.output_resolution))


def _tensorboard(folder: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(folder / "tensorboard"))


def resolve_config(saved: dict[str, Any], options: TrainOptions, batch_size: int, learning_rate: float,
                   bf16: bool) -> TrainConfig:
    """The run's config: what was saved with the model, with this run's batch size and learning
    rate when given, else the model's defaults (``batch_size``, ``learning_rate``)."""
    if saved:
        config = TrainConfig.from_saved(saved)
        batch_size, learning_rate = config.batch_size, config.learning_rate
        seed, coverage = config.seed, config.coverage
    else:
        seed, coverage = options.seed, COVERAGE
    return TrainConfig(batch_size=options.batch_size or batch_size, learning_rate=options.learning_rate or learning_rate,
                       seed=seed, coverage=coverage, precision="bf16" if bf16 else "fp32")


@writes_workspace("train", takes_lock=lambda: process_rank() == 0)  # rank 0 alone writes the workspace
def train(workspace: WorkspaceLike, options: TrainOptions | None = None, on_progress: ProgressCallback | None = None,
          stop: threading.Event | None = None) -> TrainResult:
    """Train (or resume training) the workspace's face-swap model as ``options`` say.

    Progress: one ``task`` counted in iterations, a ``progress`` event per log step with values
    ``loss_a``, ``loss_b``, ``learning_rate``, ``samples_per_second`` and ``eta_seconds``, ``note``s,
    and a ``file`` event for each new preview grid and loss curve. Setting ``stop`` (or Ctrl-C,
    SIGTERM, SIGHUP) saves a checkpoint and returns. Checkpoints, previews and logs go to ``WS/model``.
    """
    options = options or TrainOptions()
    reporter = Reporter("train", on_progress)
    workspace = as_workspace(workspace)
    folder = workspace.model_dir
    iterations, minutes = options.iterations, options.minutes
    runtime = setup_runtime(options.precision)
    cuda = runtime.device.type == "cuda"

    # The data: each process trains on its own share of each person's faces.
    all_faces = {key: PersonFaces.load(workspace, key) for key in PERSON_KEYS}
    faces = {key: all_faces[key].shard(runtime.rank, runtime.world_size) for key in PERSON_KEYS}

    # The model: resumed from the checkpoint (checked whole before anything is written) or new.
    saved = checkpoint.read_state(folder)
    name = choose_model(saved, options.model, folder)
    spec = model_spec(name)
    architecture = dict(options.architecture)
    if saved is not None:
        net, saved = checkpoint.load_model(folder, runtime.device)
        if any(net.options.get(key) != value for key, value in architecture.items()):
            raise DeepswapError(f"{folder}: the saved {name!r} model has options {net.options}; "
                                f"they cannot change when resuming (move {folder} away to start anew)")
    else:
        torch.manual_seed(options.seed)  # the same seed gives the same initial weights (and, on DDP, on every rank)
        net = build_model(name, **architecture).to(runtime.device)
    training = saved["training"] if saved else {}
    config = resolve_config(training, options, spec.batch_size, spec.learning_rate, runtime.bf16)
    batch, base_lr = config.batch_size, config.learning_rate
    weights = LossWeights(ssim=spec.ssim_weight, frequency=spec.frequency_weight)
    if cuda:  # on a 2-core AVX2 CPU channels_last made the lite loop ~7 % slower (benchmarks/train.py)
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=base_lr, betas=spec.betas, fused=True)
    if saved is not None:
        checkpoint.load_optimizer(folder, saved, net, optimizer)
    # The swap critic (critic.py), trained with the finishing stage of a budget; kept in the checkpoint.
    critic = critic_optimizer = None
    if spec.critic_weight:
        with torch.random.fork_rng(devices=[]):  # the same first critic for a new run and a resumed one
            torch.manual_seed(config.seed)
            critic = PatchCritic().to(runtime.device)
        critic_optimizer = torch.optim.Adam(critic.parameters(), lr=CRITIC_LR, betas=(0.5, 0.999))
        if saved is not None:
            checkpoint.load_critic(folder, saved, critic, critic_optimizer)
    inner_rows, inner_columns = inner_face_box(net.output_resolution, config.coverage)
    start = saved["iteration"] if saved else 0
    end = iterations if iterations is not None else None
    if end is not None and start >= end:
        reporter.note(f"{folder}: the {name} model is already at iteration {start} (asked for {end}); nothing to do")
        return TrainResult(name, start, start, None, None, 0.0, 0.0, "iterations", folder)

    engine: torch.nn.Module = net
    if runtime.world_size > 1:
        engine = DistributedDataParallel(net, device_ids=[runtime.device.index] if cuda else None)
    if options.compile:
        engine = torch.compile(engine)
    critic_engine = critic
    if critic is not None and runtime.world_size > 1:
        critic_engine = DistributedDataParallel(critic, device_ids=[runtime.device.index] if cuda else None)

    workers = options.workers
    if workers is None:
        workers = min(8, max(1, (os.cpu_count() or 2) // (2 * runtime.world_size)))
    log_every = options.log_every or (10 if cuda else 1)
    preview_every = options.preview_every or (500 if cuda else 100)

    # What rank 0 writes: previews, the loss log and its curve, TensorBoard, checkpoints.
    history = report.read_loss_log(folder / "loss.csv", up_to=start) if runtime.main else []
    preview_set = {key: preview_faces(all_faces[key], PREVIEW_FACES, net.output_resolution, config.coverage)
                   for key in PERSON_KEYS}
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
        training_state = {**config.to_saved(), "world_size": runtime.world_size,
                          "elapsed_seconds": elapsed_before + seconds,
                          "recent_loss": recent_loss if math.isfinite(recent_loss) else None,
                          "best_loss": lowest if math.isfinite(lowest) else None}
        state = checkpoint.save_checkpoint(folder, net, optimizer, iteration, training_state,
                                           (critic, critic_optimizer) if critic_optimizer and critic_optimizer.state else None)
        if recent_loss < best_loss:
            best_loss = recent_loss
            checkpoint.save_best(folder, state)
        write_loss_files()

    def write_loss_files() -> None:
        report.write_loss_log(folder / "loss.csv", history)
        _io.write_image(folder / "loss.png", report.loss_curve(history))
        reporter.file(folder / "loss.png", "loss curve")

    if runtime.main:
        pixels = f"{net.resolution} px" + (f" → {net.output_resolution} px" if net.output_resolution != net.resolution else "")
        reporter.note(f"training {name} ({net.parameter_count() / 1e6:.1f} M parameters, {pixels}) on "
                      f"{runtime.device.type}{' ×' + str(runtime.world_size) if runtime.world_size > 1 else ''}, "
                      f"{'bf16' if runtime.bf16 else 'fp32'}, batch {batch} per person, faces A {len(all_faces['a'])} "
                      f"B {len(all_faces['b'])}, from iteration {start}")
        reporter.task(f"train {name}", total=end, unit="iterations", done=start)

    def train_step(data: dict[str, torch.Tensor], judge: bool) -> torch.Tensor:
        """Forward and backward over one batch: both people through the shared encoder, each through
        its own decoder. With ``judge`` also A drawn by B's decoder, whose inner face the swap critic
        scores against B's (that loss trains B's decoder), and then the critic's own step.
        Returns the detached losses of A and B."""
        inputs = [data[f"{key}_warped"].float().div_(255) for key in PERSON_KEYS]
        if cuda:
            inputs = [x.contiguous(memory_format=torch.channels_last) for x in inputs]
        with runtime.autocast():
            outputs = engine(*inputs, swap=judge)
        person_losses = []
        for key, output in zip(PERSON_KEYS, outputs):
            rgb, mask_logits = net.split_output(output)
            person_losses.append(reconstruction_loss(
                rgb, mask_logits, data[f"{key}_target"].float() / 255, data[f"{key}_mask"].float() / 255,
                data[f"{key}_features"].float() / 255, weights))
        total = person_losses[0] + person_losses[1]
        if judge:
            drawn = net.split_output(outputs[2])[0][:, :, inner_rows, inner_columns]
            real = data["b_target"][:, :, inner_rows, inner_columns].float() / 255
            critic.requires_grad_(False)
            with runtime.autocast():
                total = total + spec.critic_weight * generator_loss(critic, drawn)
            critic.requires_grad_(True)
        total.backward()
        if judge:
            critic_optimizer.zero_grad(set_to_none=True)
            with runtime.autocast():
                judged = critic_loss(critic_engine, real, drawn)
            judged.backward()
            critic_optimizer.step()
        return torch.stack(person_losses).detach()

    def batches_from(iteration: int, finish: bool) -> Iterator[dict[str, torch.Tensor]]:
        """The training batches from ``iteration`` on, augmented for the finishing stage or not."""
        stream = TrainingStream(faces, net.resolution, config.coverage, config.seed + runtime.rank,
                                augment=FINISHING_AUGMENT if finish else None, output_resolution=net.output_resolution,
                                cache_bytes=REGION_CACHE_BYTES // max(1, workers))
        return make_loader(stream, batch, iteration * batch, workers, pin_memory=cuda)

    def budget_done(iteration: int) -> float | None:
        """The share of the budget done: of the iterations to reach (so a resumed run continues the
        schedule exactly), else of this run's minutes, else None."""
        if end is not None:
            return iteration / end
        if minutes is not None:
            return (time.monotonic() - started) / (minutes * 60)
        return None

    iteration = start
    losses: list[torch.Tensor] = []
    stopped_by = "iterations"
    started = last_save = last_log = time.monotonic()
    logged_at = start
    with stop_on_signals(stop or threading.Event()) as interrupt:
        loader, in_finish = None, False
        while end is None or iteration < end:
            done = budget_done(iteration)
            if loader is None or finishing(done) != in_finish:
                in_finish = finishing(done)
                loader = batches_from(iteration, in_finish)
                if in_finish and runtime.main:
                    reporter.note(f"finishing stage from iteration {iteration}: random warp off, learning rate falling")
            batch_data = {k: v.to(runtime.device, non_blocking=True) for k, v in next(loader).items()}
            learning_rate = scheduled_lr(iteration, base_lr, spec.warmup, done)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate
            optimizer.zero_grad(set_to_none=True)
            judge = critic is not None and in_finish
            losses.append(train_step(batch_data, judge))
            optimizer.step()
            iteration += 1

            if (iteration - start) % log_every and iteration != end:
                continue
            # Every log_every iterations: read the losses back, decide whether to stop, report.
            now = time.monotonic()
            mean_a, mean_b = torch.stack(losses).float().mean(dim=0).tolist()
            losses.clear()
            finite = math.isfinite(mean_a) and math.isfinite(mean_b)
            stopping = not finite or interrupt.is_set() or (minutes is not None and now - started >= minutes * 60)
            if runtime.world_size > 1:  # every rank stops at the same iteration, and on any rank's NaN
                flags = torch.tensor([float(stopping), float(not finite)], device=runtime.device)
                dist.all_reduce(flags, op=dist.ReduceOp.MAX)
                stopping, finite = bool(flags[0]), not bool(flags[1])
            if not finite:
                stopped_by = "nan"
                if runtime.main:
                    kept = (f"the last good checkpoint (iteration {state['iteration']}) is kept" if state
                            else "no checkpoint was written")
                    what = "NaN" if math.isnan(mean_a + mean_b) else "infinite"
                    reporter.note(f"stopped: the loss became {what} at iteration {iteration}; {kept}. "
                                  "Try a lower learning rate or --precision fp32.")
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
                per_second = (iteration - start) / max(now - started, 1e-9)
                left = (end - iteration) / per_second if end else (max(0.0, minutes * 60 - (now - started)) if minutes else math.inf)
                figures = {"loss_a": mean_a, "loss_b": mean_b, "samples_per_second": rate,
                           "learning_rate": optimizer.param_groups[0]["lr"]}
                reporter.update(iteration, values=figures | ({"eta_seconds": left} if math.isfinite(left) else {}))
                if (iteration - start) % preview_every < log_every or stopping or iteration == end:
                    net.eval()
                    grid = render_preview(net, preview_set, runtime)
                    net.train()
                    _io.write_image(folder / "preview.png", grid)
                    reporter.file(folder / "preview.png", f"preview at iteration {iteration}")
                    write_loss_files()
                    if board is not None:
                        board.add_image("preview", grid, iteration, dataformats="HWC")
                if now - last_save >= options.save_every_minutes * 60 and not stopping:
                    last_save = now
                    save(iteration, now - started)
            if stopping:
                stopped_by = "signal" if interrupt.is_set() else "minutes"
                break

        seconds = time.monotonic() - started
        if stopped_by != "nan" and runtime.main:
            save(iteration, seconds)
            reporter.finish()
            reporter.note(f"saved {name} at iteration {iteration} in {folder}")
    del loader
    if board is not None:
        board.close()
    if runtime.world_size > 1:
        dist.barrier()
    last = history[-1] if history else {}
    rate = (iteration - start) * batch * 2 * runtime.world_size / max(seconds, 1e-9)
    return TrainResult(name, start, iteration, last.get("loss_a"), last.get("loss_b"), seconds, rate, stopped_by,
                       folder, history)
