"""The training loop: read top to bottom, it is the whole of ``deepswap train``.

Each iteration takes a batch of warped faces of A and of B, runs both through the shared encoder
and each through its own decoder, and steps Adam on the masked SSIM + L1 loss. The last quarter
of the run's budget is its finishing stage (``finishing``): the learning rate falls
(``scheduled_lr``), the faces come unwarped and unmoved (only flipped and relit) and, for models
with a swap critic (``critic.py``), the critic judges A drawn by B's decoder against B's own faces.
Every ``SEGMENTER_EVERY`` iterations the learned face mask (``segmenter.py``) takes a step on the
batch's faces with synthetic occluders in front of them. Around that:
resume from ``WS/model``, progress events, preview grids, ``loss.csv`` and its curve, TensorBoard
when installed, checkpoints every few minutes and on Ctrl-C/SIGTERM/SIGHUP or a stop request, a
stop on NaN/Inf, and DistributedDataParallel under ``torchrun`` (rank 0 writes everything).

``train`` reads in this order: ``resume_or_build`` (the ``Trainee``: model, optimizers, config),
``TrainStep`` (one optimisation step), ``Records`` (what rank 0 writes, checkpoints included),
``Budget`` (iterations or minutes, and the share of them done) and ``run_loop`` (the iterations).
"""

from __future__ import annotations

import functools
import math
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .. import _io
from ..coverage import WORTH_TELLING, coverage_between
from ..errors import DeepswapError
from ..progress import ProgressCallback, Reporter
from ..workspace import PERSON_KEYS, WorkspaceLike, as_workspace, other_person
from ..writers import writes_workspace
from . import checkpoint, report
from .config import COVERAGE, TrainConfig, TrainOptions
from .critic import PatchCritic, critic_loss, generator_loss, inner_face_slices
from .data import FINISHING_AUGMENT, REGION_CACHE_BYTES, PersonFaces, TrainingStream, make_loader, preview_faces
from .loss import LossWeights, reconstruction_loss
from .models import ModelSpec, SwapModel, build_model, model_spec
from .runtime import Runtime, process_rank, setup_runtime
from .segmenter import EVERY as SEGMENTER_EVERY
from .segmenter import Segmenter, SegmenterStep, build_segmenter, steps_taken

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
        inputs = _faces_tensor(faces[key], runtime)
        if model.output_resolution != model.resolution:
            inputs = torch.nn.functional.interpolate(inputs, size=model.resolution, mode="area")
        with runtime.autocast():
            rows += [faces[key], _uint8_images(model.swap(inputs, key)[0]), _uint8_images(model.swap(inputs, other_person(key))[0])]
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


@dataclass
class Trainee:
    """What a run trains, resumed from ``WS/model`` or built anew: the model and its Adam, the swap
    critic and its Adam (models with a ``critic_weight``), the learned face mask and its Adam, and
    the run's config."""

    name: str
    spec: ModelSpec
    net: SwapModel
    optimizer: torch.optim.Optimizer
    config: TrainConfig
    saved: dict[str, Any] | None  # the checkpoint's state.json; None for a new model
    critic: PatchCritic | None = None
    critic_optimizer: torch.optim.Optimizer | None = None
    segmenter: Segmenter | None = None
    segmenter_optimizer: torch.optim.Optimizer | None = None

    @property
    def start(self) -> int:
        """The iteration the run starts from."""
        return self.saved["iteration"] if self.saved else 0

    @property
    def training(self) -> dict[str, Any]:
        """The training state saved with the checkpoint ({} for a new model)."""
        return self.saved["training"] if self.saved else {}


def resume_or_build(folder: Path, options: TrainOptions, runtime: Runtime) -> Trainee:
    """The model to train: resumed from the checkpoint in ``folder`` (checked whole before anything
    is written; its architecture cannot change) or, without one, built from ``options``."""
    saved = checkpoint.read_state(folder)
    name = choose_model(saved, options.model, folder)
    spec = model_spec(name)
    if saved is not None:
        net, saved = checkpoint.load_model(folder, runtime.device)
        if any(net.options.get(key) != value for key, value in options.architecture.items()):
            raise DeepswapError(f"{folder}: the saved {name!r} model has options {net.options}; "
                                f"they cannot change when resuming (move {folder} away to start anew)")
    else:
        torch.manual_seed(options.seed)  # the same seed gives the same initial weights (and, on DDP, on every rank)
        net = build_model(name, **options.architecture).to(runtime.device)
    config = resolve_config(saved["training"] if saved else {}, options, spec.batch_size, spec.learning_rate,
                            runtime.bf16)
    if runtime.cuda:  # on a 2-core AVX2 CPU channels_last made the lite loop ~7 % slower (benchmarks/train.py)
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate, betas=spec.betas, fused=True)
    if saved is not None:
        checkpoint.load_optimizer(folder, saved, net, optimizer)
    trainee = Trainee(name, spec, net, optimizer, config, saved)
    if spec.critic_weight:
        trainee.critic, trainee.critic_optimizer = build_critic(folder, saved, config.seed, runtime.device)
    trainee.segmenter, trainee.segmenter_optimizer = build_segmenter(config.seed, runtime.device)
    if saved is not None:  # a checkpoint from before the learned mask starts a new one
        checkpoint.load_companion(folder, saved, "segmenter", trainee.segmenter, trainee.segmenter_optimizer)
    return trainee


def build_critic(folder: Path, saved: dict[str, Any] | None, seed: int,
                 device: torch.device) -> tuple[PatchCritic, torch.optim.Optimizer]:
    """The swap critic (critic.py) and its Adam, trained in the finishing stage and kept in the
    checkpoint: restored from ``saved`` when it holds them, else new."""
    with torch.random.fork_rng(devices=[]):  # the same first critic for a new run and a resumed one
        torch.manual_seed(seed)
        critic = PatchCritic().to(device)
    optimizer = torch.optim.Adam(critic.parameters(), lr=CRITIC_LR, betas=(0.5, 0.999))
    if saved is not None:
        checkpoint.load_companion(folder, saved, "critic", critic, optimizer)
    return critic, optimizer


class TrainStep:
    """One optimisation step over a batch: both people through the shared encoder, each through its
    own decoder (under DDP and ``torch.compile`` when asked); with ``judge`` also the swap critic's
    part, with ``segment`` also the learned mask's step. Returns the detached losses of A and B."""

    def __init__(self, trainee: Trainee, runtime: Runtime, compile_model: bool) -> None:
        self.trainee, self.runtime = trainee, runtime
        self.engine: torch.nn.Module = trainee.net
        self.critic_engine = trainee.critic
        segmenter_engine: torch.nn.Module = trainee.segmenter
        if runtime.world_size > 1:
            device_ids = [runtime.device.index] if runtime.cuda else None
            self.engine = DistributedDataParallel(trainee.net, device_ids=device_ids)
            if trainee.critic is not None:
                self.critic_engine = DistributedDataParallel(trainee.critic, device_ids=device_ids)
            segmenter_engine = DistributedDataParallel(trainee.segmenter, device_ids=device_ids)
        self.segment_step = SegmenterStep(segmenter_engine, trainee.segmenter_optimizer)
        if compile_model:
            self.engine = torch.compile(self.engine)
        self.weights = LossWeights(ssim=trainee.spec.ssim_weight, frequency=trainee.spec.frequency_weight,
                                   background=trainee.spec.background_weight)
        self.inner_face = inner_face_slices(trainee.net.output_resolution, trainee.config.coverage)

    def __call__(self, data: dict[str, torch.Tensor], learning_rate: float, judge: bool,
                 segment: bool = False) -> torch.Tensor:
        optimizer = self.trainee.optimizer
        for group in optimizer.param_groups:
            group["lr"] = learning_rate
        optimizer.zero_grad(set_to_none=True)
        losses = self.backward(data, judge)
        optimizer.step()
        if segment:
            self.segment_step(*(torch.cat([data[f"{key}_{name}"] for key in PERSON_KEYS])
                                for name in ("segment", "segment_label", "segment_weight")),
                              rate_share=learning_rate / self.trainee.config.learning_rate)
        return losses

    def backward(self, data: dict[str, torch.Tensor], judge: bool) -> torch.Tensor:
        """Forward and backward over one batch. With ``judge`` also A drawn by B's decoder, whose
        inner face the swap critic scores against B's (that loss trains B's decoder), and then the
        critic's own step."""
        net, runtime = self.trainee.net, self.runtime
        inputs = [data[f"{key}_warped"].float().div_(255) for key in PERSON_KEYS]
        if runtime.cuda:
            inputs = [x.contiguous(memory_format=torch.channels_last) for x in inputs]
        with runtime.autocast():
            outputs = self.engine(*inputs, swap=judge)
        person_losses = []
        for key, output in zip(PERSON_KEYS, outputs):
            rgb, mask_logits = net.split_output(output)
            person_losses.append(reconstruction_loss(
                rgb, mask_logits, data[f"{key}_target"].float() / 255, data[f"{key}_mask"].float() / 255,
                data[f"{key}_features"].float() / 255, self.weights))
        total = person_losses[0] + person_losses[1]
        if judge:
            rows, columns = self.inner_face
            drawn = net.split_output(outputs[2])[0][:, :, rows, columns]
            total = total + self.trainee.spec.critic_weight * self.fooling_loss(drawn)
        total.backward()
        if judge:
            self.judge(data["b_target"][:, :, rows, columns].float() / 255, drawn)
        return torch.stack(person_losses).detach()

    def fooling_loss(self, drawn: torch.Tensor) -> torch.Tensor:
        """The critic's verdict on the drawn swaps, as a loss for the decoder (the critic itself unchanged)."""
        critic = self.trainee.critic
        critic.requires_grad_(False)
        with self.runtime.autocast():
            loss = generator_loss(critic, drawn)
        critic.requires_grad_(True)
        return loss

    def judge(self, real: torch.Tensor, drawn: torch.Tensor) -> None:
        """The critic's own step: B's real inner faces against the drawn swaps."""
        optimizer = self.trainee.critic_optimizer
        optimizer.zero_grad(set_to_none=True)
        with self.runtime.autocast():
            judged = critic_loss(self.critic_engine, real, drawn)
        judged.backward()
        optimizer.step()


class Budget:
    """How long a run trains: to ``end`` iterations, for ``minutes``, or (neither) until stopped.
    Its clock starts when it is made."""

    def __init__(self, end: int | None, minutes: float | None) -> None:
        self.end, self.minutes = end, minutes
        self.started = time.monotonic()

    def share_done(self, iteration: int) -> float | None:
        """The share of the budget done: of the iterations to reach (so a resumed run continues the
        schedule exactly), else of this run's minutes, else None."""
        if self.end is not None:
            return iteration / self.end
        if self.minutes is not None:
            return self.seconds() / (self.minutes * 60)
        return None

    def seconds(self, now: float | None = None) -> float:
        """Seconds since the run started (until ``now``, a ``time.monotonic()`` reading)."""
        return (time.monotonic() if now is None else now) - self.started

    def time_up(self, now: float) -> bool:
        return self.minutes is not None and self.seconds(now) >= self.minutes * 60

    def seconds_left(self, start: int, iteration: int, now: float) -> float:
        """The time left at this run's pace (inf when it trains until stopped)."""
        if self.end:
            return (self.end - iteration) / ((iteration - start) / max(self.seconds(now), 1e-9))
        if self.minutes:
            return max(0.0, self.minutes * 60 - self.seconds(now))
        return math.inf


class Records:
    """What a run keeps in ``WS/model`` (rank 0 only): the loss log and its curve, preview grids,
    TensorBoard when installed, and checkpoints, kept as ``best/`` too when their recent loss is
    the lowest so far."""

    def __init__(self, folder: Path, trainee: Trainee, runtime: Runtime, reporter: Reporter,
                 preview_set: dict[str, np.ndarray]) -> None:
        self.folder, self.trainee, self.runtime, self.reporter = folder, trainee, runtime, reporter
        self.preview_set = preview_set
        self.history = report.read_loss_log(folder / "loss.csv", up_to=trainee.start) if runtime.main else []
        self.board = _tensorboard(folder) if runtime.main else None
        self.elapsed_before = float(trainee.training.get("elapsed_seconds", 0.0))
        self.best_loss = float(trainee.training.get("best_loss") or math.inf)
        self.state = trainee.saved  # the checkpoint last written (or resumed from)

    def log(self, iteration: int, losses: tuple[float, float], rate: float, seconds: float,
            seconds_left: float) -> None:
        """Add a row to the loss history (and TensorBoard) and report it as progress."""
        mean_a, mean_b = losses
        learning_rate = self.trainee.optimizer.param_groups[0]["lr"]
        self.history.append({"iteration": iteration, "loss_a": mean_a, "loss_b": mean_b,
                             "learning_rate": learning_rate, "samples_per_second": rate,
                             "elapsed_seconds": self.elapsed_before + seconds})
        if self.board is not None:
            self.board.add_scalars("loss", {"a": mean_a, "b": mean_b}, iteration)
            self.board.add_scalar("samples_per_second", rate, iteration)
        figures = {"loss_a": mean_a, "loss_b": mean_b, "samples_per_second": rate, "learning_rate": learning_rate}
        eta = {"eta_seconds": seconds_left} if math.isfinite(seconds_left) else {}
        self.reporter.update(iteration, values=figures | eta)

    def preview(self, iteration: int) -> None:
        """Draw the preview grid (and rewrite the loss files)."""
        net = self.trainee.net
        net.eval()
        grid = render_preview(net, self.preview_set, self.runtime)
        net.train()
        _io.write_image(self.folder / "preview.png", grid)
        self.reporter.file(self.folder / "preview.png", f"preview at iteration {iteration}")
        self.write_loss_files()
        if self.board is not None:
            self.board.add_image("preview", grid, iteration, dataformats="HWC")

    def save(self, iteration: int, seconds: float) -> None:
        """Checkpoint, and keep it as best/ when the recent loss is the lowest so far."""
        trainee = self.trainee
        recent = [(row["loss_a"] + row["loss_b"]) / 2 for row in self.history[-20:] if row["iteration"] > trainee.start]
        recent_loss = sum(recent) / len(recent) if recent else math.inf
        lowest = min(self.best_loss, recent_loss)
        training_state = {**trainee.config.to_saved(), "world_size": self.runtime.world_size,
                          "elapsed_seconds": self.elapsed_before + seconds,
                          "recent_loss": recent_loss if math.isfinite(recent_loss) else None,
                          "best_loss": lowest if math.isfinite(lowest) else None,
                          "segmenter_steps": steps_taken(trainee.segmenter_optimizer)}
        companions = {"segmenter": (trainee.segmenter, trainee.segmenter_optimizer)}
        if trainee.critic_optimizer and trainee.critic_optimizer.state:
            companions["critic"] = (trainee.critic, trainee.critic_optimizer)
        self.state = checkpoint.save_checkpoint(self.folder, trainee.net, trainee.optimizer, iteration,
                                                training_state, companions)
        if recent_loss < self.best_loss:
            self.best_loss = recent_loss
            checkpoint.save_best(self.folder, self.state)
        self.write_loss_files()

    def write_loss_files(self) -> None:
        report.write_loss_log(self.folder / "loss.csv", self.history)
        _io.write_image(self.folder / "loss.png", report.loss_curve(self.history))
        self.reporter.file(self.folder / "loss.png", "loss curve")

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


def agree_to_stop(stopping: bool, finite: bool, runtime: Runtime) -> tuple[bool, bool]:
    """``(stopping, finite)`` as all ranks agree: every rank stops at the same iteration, and on
    any rank's NaN."""
    if runtime.world_size == 1:
        return stopping, finite
    flags = torch.tensor([float(stopping), float(not finite)], device=runtime.device)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    return bool(flags[0]), not bool(flags[1])


def announce(reporter: Reporter, trainee: Trainee, runtime: Runtime, faces: dict[str, PersonFaces],
             end: int | None) -> None:
    """The run's opening note, and its task counted in iterations."""
    net, name = trainee.net, trainee.name
    pixels = f"{net.resolution} px" + (f" → {net.output_resolution} px" if net.output_resolution != net.resolution else "")
    reporter.note(f"training {name} ({net.parameter_count() / 1e6:.1f} M parameters, {pixels}) on "
                  f"{runtime.device.type}{' ×' + str(runtime.world_size) if runtime.world_size > 1 else ''}, "
                  f"{'bf16' if runtime.bf16 else 'fp32'}, batch {trainee.config.batch_size} per person, "
                  f"faces A {len(faces['a'])} B {len(faces['b'])}, from iteration {trainee.start}")
    reporter.task(f"train {name}", total=end, unit="iterations", done=trainee.start)


def coverage_note(reporter: Reporter, faces: dict[str, PersonFaces], name_b: str) -> None:
    """A few lines, before training starts, on the kinds of A's faces that B's faces do not cover
    (landmarks only: quick); nothing when they cover all but a few."""
    coverage = coverage_between(faces["a"].landmarks, faces["a"].ids, faces["b"].landmarks, faces["b"].ids, name_b)
    if coverage.lines(WORTH_TELLING):
        reporter.note(coverage.summary(WORTH_TELLING) + "\n  (B's model cannot draw what B's faces never show)")


def nan_note(iteration: int, loss: float, state: dict[str, Any] | None) -> str:
    """What to tell the user when the loss stopped being finite."""
    kept = f"the last good checkpoint (iteration {state['iteration']}) is kept" if state else "no checkpoint was written"
    what = "NaN" if math.isnan(loss) else "infinite"
    return (f"stopped: the loss became {what} at iteration {iteration}; {kept}. "
            "Try a lower learning rate or --precision fp32.")


def training_batches(faces: dict[str, PersonFaces], trainee: Trainee, runtime: Runtime, workers: int,
                     iteration: int, finish: bool) -> Iterator[dict[str, torch.Tensor]]:
    """The batches of this process's share of the faces from ``iteration`` on, augmented for the
    finishing stage or not."""
    net, config = trainee.net, trainee.config
    stream = TrainingStream(faces, net.resolution, config.coverage, config.seed + runtime.rank,
                            augment=FINISHING_AUGMENT if finish else None, output_resolution=net.output_resolution,
                            cache_bytes=REGION_CACHE_BYTES // max(1, workers), batch_size=config.batch_size,
                            segment_every=SEGMENTER_EVERY)
    # On a CPU torch's threads take every core: the workers use what they leave (data.lower_priority).
    return make_loader(stream, config.batch_size, iteration * config.batch_size, workers, pin_memory=runtime.cuda,
                       low_priority=not runtime.cuda)


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
    if options.mask_steps is not None:
        raise DeepswapError("mask steps train the learned mask alone: call deepswap.train_mask (the CLI's train does)")
    reporter = Reporter("train", on_progress)
    workspace = as_workspace(workspace)
    folder = workspace.model_dir
    runtime = setup_runtime(options.precision)

    # The data: each process trains on its own share of each person's faces.
    all_faces = {key: PersonFaces.load(workspace, key, options.skin_mask) for key in PERSON_KEYS}
    faces = {key: all_faces[key].shard(runtime.rank, runtime.world_size) for key in PERSON_KEYS}
    if options.balance_expressions:
        faces = {key: people.balanced() for key, people in faces.items()}
    trainee = resume_or_build(folder, options, runtime)
    start, end = trainee.start, options.iterations
    if end is not None and start >= end:
        reporter.note(f"{folder}: the {trainee.name} model is already at iteration {start} (asked for {end}); nothing to do")
        return TrainResult(trainee.name, start, start, None, None, 0.0, 0.0, "iterations", folder)

    step = TrainStep(trainee, runtime, options.compile)
    net, config = trainee.net, trainee.config
    preview_set = {key: preview_faces(all_faces[key], PREVIEW_FACES, net.output_resolution, config.coverage)
                   for key in PERSON_KEYS}
    records = Records(folder, trainee, runtime, reporter, preview_set)
    if runtime.main:
        coverage_note(reporter, all_faces, workspace.persons["b"].name)
        announce(reporter, trainee, runtime, all_faces, end)
    workers = options.workers
    if workers is None:
        workers = min(8, max(1, (os.cpu_count() or 2) // (2 * runtime.world_size)))
    batches_from = functools.partial(training_batches, faces, trainee, runtime, workers)

    budget = Budget(end, options.minutes)
    with stop_on_signals(stop or threading.Event()) as interrupt:
        iteration, stopped_by = run_loop(step, batches_from, budget, records, options, interrupt)
        seconds = budget.seconds()
        if stopped_by != "nan" and runtime.main:
            records.save(iteration, seconds)
            reporter.finish()
            reporter.note(f"saved {trainee.name} at iteration {iteration} in {folder}")
    records.close()
    if runtime.world_size > 1:
        dist.barrier()
    last = records.history[-1] if records.history else {}
    rate = (iteration - start) * config.batch_size * 2 * runtime.world_size / max(seconds, 1e-9)
    return TrainResult(trainee.name, start, iteration, last.get("loss_a"), last.get("loss_b"), seconds, rate,
                       stopped_by, folder, records.history)


def run_loop(step: TrainStep, batches_from: Callable[[int, bool], Iterator[dict[str, torch.Tensor]]],
             budget: Budget, records: Records, options: TrainOptions, interrupt: threading.Event) -> tuple[int, str]:
    """Step until the budget is spent, a stop is asked for or the loss is no longer finite; every
    ``log_every`` iterations log, preview and checkpoint (rank 0). Returns the iteration reached
    and what stopped the run: "iterations", "minutes", "signal" or "nan"."""
    trainee, runtime = step.trainee, step.runtime
    start, end = trainee.start, budget.end
    log_every = options.log_every or (10 if runtime.cuda else 1)
    preview_every = options.preview_every or (500 if runtime.cuda else 100)
    iteration, losses = start, []
    last_save = last_log = budget.started
    logged_at = start
    loader, in_finish = None, False
    while end is None or iteration < end:
        done = budget.share_done(iteration)
        if loader is None or finishing(done) != in_finish:
            in_finish = finishing(done)
            loader = batches_from(iteration, in_finish)
            if in_finish and runtime.main:
                records.reporter.note(f"finishing stage from iteration {iteration}: random warp off, "
                                      "learning rate falling")
        batch = {k: v.to(runtime.device, non_blocking=True) for k, v in next(loader).items()}
        learning_rate = scheduled_lr(iteration, trainee.config.learning_rate, trainee.spec.warmup, done)
        losses.append(step(batch, learning_rate, judge=trainee.critic is not None and in_finish,
                           segment=iteration % SEGMENTER_EVERY == 0))
        iteration += 1
        if (iteration - start) % log_every and iteration != end:
            continue
        # Every log_every iterations: read the losses back, decide whether to stop, report.
        now = time.monotonic()
        mean_a, mean_b = torch.stack(losses).float().mean(dim=0).tolist()
        losses.clear()
        finite = math.isfinite(mean_a) and math.isfinite(mean_b)
        stopping, finite = agree_to_stop(not finite or interrupt.is_set() or budget.time_up(now), finite, runtime)
        if not finite:
            if runtime.main:
                records.reporter.note(nan_note(iteration, mean_a + mean_b, records.state))
            return iteration, "nan"
        rate = (iteration - logged_at) * trainee.config.batch_size * 2 * runtime.world_size / max(now - last_log, 1e-9)
        last_log, logged_at = now, iteration
        if runtime.main:
            records.log(iteration, (mean_a, mean_b), rate, budget.seconds(now), budget.seconds_left(start, iteration, now))
            if (iteration - start) % preview_every < log_every or stopping or iteration == end:
                records.preview(iteration)
            if now - last_save >= options.save_every_minutes * 60 and not stopping:
                last_save = now
                records.save(iteration, budget.seconds(now))
        if stopping:
            return iteration, "signal" if interrupt.is_set() else "minutes"
    return iteration, "iterations"
