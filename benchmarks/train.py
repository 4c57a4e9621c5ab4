"""Training speed: parameters, FLOPs per sample, samples/s on this CPU and on a GPU (with MFU), and
the whole `deepswap train` loop of the `original` model against the faceswap reference.

    python benchmarks/train.py                      # models on CPU (+ GPU when present) and the loop
    python benchmarks/train.py --cpu-only --quick   # a few minutes on a 2-core CPU
    python benchmarks/train.py --gpu-only --quick   # < 4 minutes on an H100
    python benchmarks/train.py --loop-only [--workspace WS] [--model original]
    python benchmarks/train.py --step-only          # lite's CPU step now against before 2026-12-07

A *sample* is one face through the shared encoder and its person's decoder, forward and backward;
an iteration at batch B processes B faces of each person, 2·B samples. "Model" figures time the
training step alone (synthetic inputs, L1 loss, fused Adam); "loop" figures time `deepswap.train`
itself: data loading, warp augmentation, SSIM/L1 loss, both decoders, optimiser.

Measured 2026-11-26 (the 2-core CPU shared with other jobs, so ±15 %):
- 2-core AMD EPYC (Zen 4, AVX512-BF16), model step, samples/s bf16 | fp32 at batch 16 / 64:
  original 21.9 / 22.9 | 13.2 / 10.9; lite 97.6 / 102.2 | 56.2 / 54.7; hd (bf16, batch 16) 2.0.
- same CPU, whole loop of `original`: 23.7 (batch 16, 2.0× faceswap) and 25.1 (batch 64, 1.6×) in
  bf16; 13.8 and 12.6 in fp32.
- H100 80GB HBM3, bf16 + channels_last, model step: original 15,856 samples/s (18 % MFU, batch 64),
  lite 21,576 (6 %), hd 3,492 (27 %, batch 64), 3,794 (30 %, batch 128), compiled 6,149 (48 %, 476
  TFLOP/s, batch 128); whole `train` loop of hd 2,739 / 3,269 eager and 3,547 / 4,895 compiled at
  batch 64 / 128.
- 2026-12-02, 2-core AMD EPYC with AVX2 only (fp32), the whole `lite` loop in 30-minute runs
  (iterations 700–1400): 3.07 and 3.12 iterations/s as `deepswap train` runs it, 2.90 with the model
  and inputs channels_last, so CPUs keep the default layout (a 200-iteration try had suggested
  the opposite: startup dominates such short runs).
- 2026-12-04, 2-core AMD EPYC (Zen 4, AVX512-BF16), `lite` at 128 px in 30-minute `quality.py` runs
  (bf16): 6,766 iterations (3.76/s) before and 7,870 (4.37/s, +16 %) after the data workers kept the
  face regions they had read in memory (one worker: 136–139 face pairs/s from disk, 467–540 from
  memory, 3.4–3.9×; the "data" line) and SSIM's blur became two matrix products (the loss of one
  person's batch of 8, forward and backward: 37 → 26 ms).
- 2026-12-07, 2-core AMD EPYC with AVX2 only (fp32), `--step-only` (lite's step with its loss and
  Adam at batch 8, alternated in one process): before 269 and 275 ms, now 228 and 222 ms (1.18× and
  1.24×), from the decoders' last 5×5 convolution at half resolution (in the same process's
  profile its forward and backward took 32 ms a decoder, the 3×3 one in its place 25), the pixel
  shuffle as a view and a copy (forward + backward of the largest: 9.6 → 3.0 ms) and SSIM's target
  statistics outside the backward pass (one person's loss: 51 → 32–37 ms).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from deepswap.train.loss import LossWeights, reconstruction_loss  # noqa: E402
from deepswap.train.models import MODELS, build_model  # noqa: E402
from deepswap.train.models.layers import Decoder, Upscale  # noqa: E402

# Dense bf16 tensor-core peaks (FLOP/s) by card name; MFU = achieved model FLOP/s ÷ peak.
BF16_PEAK = {"H100": 989e12, "H200": 989e12, "GH200": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12,
             "RTX 4090": 165e12, "A10G": 70e12}
# faceswap (Keras 3 on PyTorch) training its `original` model on a 2-core CPU, both persons counted.
FACESWAP_CPU = {16: 12.0, 64: 16.0}
REPO = Path(__file__).resolve().parents[1]


def flops_per_sample(name: str, batch: int = 2, **options) -> float:
    """Forward + backward FLOPs of one sample (counted on the meta device: no arithmetic is done)."""
    with torch.device("meta"):
        model = build_model(name, **options)
        faces = torch.rand(batch, 3, model.resolution, model.resolution)
    counter = FlopCounterMode(display=False)
    with counter:
        out_a, out_b = model(faces, faces)
        (out_a.float().mean() + out_b.float().mean()).backward()
    return counter.get_total_flops() / (2 * batch)


def time_steps(name: str, batch: int, device: torch.device, bf16: bool, steps: int, warmup: int,
               compile_model: bool = False, **options) -> float:
    """Seconds per training iteration (batch faces of each person) of the model alone."""
    torch.manual_seed(0)
    model = build_model(name, **options).to(device)
    channels_last = device.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    spec = MODELS[name]
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.learning_rate, betas=spec.betas, fused=True)
    engine = torch.compile(model) if compile_model else model
    size = model.resolution
    inputs = [torch.rand(batch, 3, size, size, device=device) for _ in range(2)]
    if channels_last:
        inputs = [x.contiguous(memory_format=torch.channels_last) for x in inputs]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()

    def step() -> None:
        with autocast:
            outputs = engine(*inputs)
        loss = sum((model.split_output(out)[0].float() - x).abs().mean() for out, x in zip(outputs, inputs))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - started)
    del model, optimizer, engine
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return statistics.median(times)


def profile_hd(batch: int) -> None:
    """The CUDA kernels that take the most time in hd training steps (eager), to see what bounds MFU."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        time_steps("hd", batch, torch.device("cuda"), True, steps=3, warmup=0)
    print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=18, max_name_column_width=70))


def gpu_peak() -> tuple[str, float | None]:
    name = torch.cuda.get_device_name()
    for key, peak in sorted(BF16_PEAK.items(), key=lambda item: -len(item[0])):
        if key in name:
            return name, peak
    return name, None


def model_table(args: argparse.Namespace) -> None:
    print("\n== models at default size ==")
    print(f"{'model':9s} {'px':>4s} {'params':>9s} {'GFLOP/sample':>13s}  (forward + backward)")
    for name, spec in MODELS.items():
        with torch.device("meta"):
            params = build_model(name).parameter_count()
        print(f"{name:9s} {spec.options['resolution']:4d} {params / 1e6:8.1f}M {flops_per_sample(name) / 1e9:13.2f}")


def cpu_table(args: argparse.Namespace) -> None:
    threads = torch.get_num_threads()
    bf16_native = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    print(f"\n== CPU: {os.cpu_count()} cores, {threads} threads, native bf16: {bf16_native}; model step only ==")
    try:
        print(f"load average before: {os.getloadavg()[0]:.2f} (other processes share these cores)")
    except OSError:
        pass
    precisions = ["bf16", "fp32"] if not args.quick else ["bf16" if bf16_native else "fp32"]
    print(f"{'model':9s} {'precision':9s} {'batch':>5s} {'s/iteration':>11s} {'samples/s':>10s} {'GFLOP/s':>8s}")
    for name in args.models:
        flops = flops_per_sample(name)
        for precision in precisions:
            for batch in (16, 64):
                if name == "hd" and (batch == 64 or precision == "fp32"):
                    continue  # minutes per iteration on a small CPU
                steps = 1 if (name == "hd" or batch == 64) else 2
                seconds = time_steps(name, batch, torch.device("cpu"), precision == "bf16", steps=steps, warmup=1)
                rate = 2 * batch / seconds
                print(f"{name:9s} {precision:9s} {batch:5d} {seconds:11.2f} {rate:10.1f} {rate * flops / 1e9:8.0f}",
                      flush=True)


def plain_layers(model: torch.nn.Module) -> torch.nn.Module:
    """The model as it ran before 2026-12-07: its decoders' layers one after another, ATen's pixel shuffle."""
    for module in model.modules():
        if isinstance(module, Decoder):
            module.halved = False
        if isinstance(module, Upscale):
            module[2] = torch.nn.PixelShuffle(2)
    return model


def step_before_after(name: str = "lite", rounds: int = 10) -> None:
    """The CPU training step of ``name`` with its own loss (SSIM, L1, frequency) and Adam, as it runs
    now and as it ran before (``plain_layers``, and SSIM's statistics of the target carrying a
    gradient, as they did), alternated step by step on the same random faces in one process."""
    spec = MODELS[name]
    weights = LossWeights(ssim=spec.ssim_weight, frequency=spec.frequency_weight, background=spec.background_weight)
    batch = spec.batch_size
    arms = {}
    for arm in ("before", "now"):
        torch.manual_seed(0)
        model = build_model(name)
        arms[arm] = (plain_layers(model) if arm == "before" else model,
                     torch.optim.Adam(model.parameters(), lr=spec.learning_rate, betas=spec.betas, fused=True))
    size, drawn = arms["now"][0].resolution, arms["now"][0].output_resolution
    inputs = [torch.rand(batch, 3, size, size) for _ in range(2)]
    targets = [torch.rand(batch, 3, drawn, drawn) for _ in range(2)]
    masks, features = torch.rand(batch, drawn, drawn), torch.rand(batch, 2, drawn, drawn)

    def step(arm: str) -> float:
        model, optimizer = arms[arm]
        started = time.perf_counter()
        outputs = model(*inputs)
        loss = sum(reconstruction_loss(model.split_output(output)[0], None, target.requires_grad_(arm == "before"),
                                       masks, features, weights) for output, target in zip(outputs, targets))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - started

    times: dict[str, list[float]] = {arm: [] for arm in arms}
    for round_ in range(rounds + 2):
        for arm in (("before", "now") if round_ % 2 else ("now", "before")):
            seconds = step(arm)
            if round_ >= 2:
                times[arm].append(seconds)
    before, now = (statistics.median(times[arm]) * 1e3 for arm in ("before", "now"))
    print(f"\n== `{name}` training step on this CPU (model, loss, Adam; batch {batch}), alternated ==\n"
          f"before (plain decoder layers, SSIM's target statistics with gradients): {before:.0f} ms; "
          f"now: {now:.0f} ms ({before / now:.2f}× as fast)", flush=True)


def gpu_table(args: argparse.Namespace) -> None:
    card, peak = gpu_peak()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda")
    print(f"\n== GPU: {card}, bf16 peak {peak / 1e12 if peak else float('nan'):.0f} TFLOP/s; bf16 autocast + "
          f"channels_last; model step only ==")
    print(f"{'model':9s} {'batch':>5s} {'compile':>7s} {'ms/iter':>8s} {'samples/s':>10s} {'TFLOP/s':>8s} {'MFU':>6s}")
    plan = []
    for name in args.models:
        batches = {"hd": (32, 64, 128)}.get(name, (64, 128)) if not args.quick else {"hd": (64, 128)}.get(name, (64,))
        plan += [(name, batch, False) for batch in batches]
        if name == "hd" or not args.quick:
            plan.append((name, max(batches), True))
    for name, batch, compiled in plan:
        flops = flops_per_sample(name)
        started = time.perf_counter()
        seconds = time_steps(name, batch, device, True, steps=10 if args.quick else 25, warmup=3,
                             compile_model=compiled)
        rate = 2 * batch / seconds
        achieved = rate * flops
        mfu = f"{100 * achieved / peak:5.1f}%" if peak else "  n/a"
        print(f"{name:9s} {batch:5d} {'yes' if compiled else 'no':>7s} {seconds * 1e3:8.1f} {rate:10.0f} "
              f"{achieved / 1e12:8.1f} {mfu}   ({time.perf_counter() - started:.0f} s incl. warm-up)", flush=True)
    for options in args.hd_variants:
        values = dict(item.split("=") for item in options.split(","))
        values = {key: int(value) for key, value in values.items()}
        batch = values.pop("batch", 64)
        flops = flops_per_sample("hd", **values)
        seconds = time_steps("hd", batch, device, True, steps=10, warmup=3, **values)
        rate = 2 * batch / seconds
        mfu = f"{100 * rate * flops / peak:5.1f}%" if peak else "  n/a"
        print(f"hd {options:24s} {seconds * 1e3:8.1f} ms {rate:8.0f} samples/s {rate * flops / 1e12:6.1f} TFLOP/s {mfu} "
              f"({flops / 1e9:.1f} GFLOP/sample)", flush=True)
    if args.profile:
        profile_hd(128)


def grid_workspace(folder: Path) -> Path:
    """A workspace with faces extracted from the bundled GRID clips (A: s1, B: another speaker)."""
    from deepswap.extract import ExtractOptions, extract
    from deepswap.sources import add_sources
    from deepswap.workspace import init_workspace

    grid = REPO / "src" / "deepswap" / "data" / "grid"
    root = folder / "ws"
    init_workspace(root, "s1", "lrwp9a")
    add_sources(root, "a", [str(clip) for clip in sorted((grid / "s1").glob("*.mp4"))[:2]])
    add_sources(root, "b", [str(grid / "speakers" / "lrwp9a.mp4")])
    extract(root, ExtractOptions(fps=10))
    return root


def stream_rates(source: Path, pairs: int = 400) -> None:
    """Face pairs/s that one data worker prepares for `lite` (64 px in, 128 px out) once every face
    has been read, keeping the face regions in memory and not: what the region cache saves."""
    from deepswap.train.data import PersonFaces, TrainingStream
    from deepswap.workspace import Workspace

    people = {key: PersonFaces.load(Workspace.open(source), key) for key in ("a", "b")}
    warm = max(len(faces) for faces in people.values())
    rates = {}
    for cache_bytes in (0, 1 << 30):
        stream = TrainingStream(people, resolution=64, coverage=0.8, seed=0, output_resolution=128, cache_bytes=cache_bytes)
        for n in range(warm):
            stream[n]
        started = time.perf_counter()
        for n in range(warm, warm + pairs):
            stream[n]
        rates[cache_bytes > 0] = pairs / (time.perf_counter() - started)
    print(f"data: one worker prepares {rates[False]:.0f} face pairs/s reading every face from disk, {rates[True]:.0f} "
          f"keeping the face regions in memory ({rates[True] / rates[False]:.1f}×)", flush=True)


def loop_table(args: argparse.Namespace) -> None:
    from rich.console import Console

    from deepswap.train import read_state, train

    cuda = torch.cuda.is_available()
    name = args.loop_model or ("hd" if cuda else "original")
    batches = (64, 128) if cuda else (16, 64)
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(args.workspace) if args.workspace else grid_workspace(Path(scratch))
        print(f"\n== whole training loop: `deepswap train --model {name}` on {source} "
              f"({'GPU' if cuda else f'CPU, {os.cpu_count()} cores'}) ==")
        stream_rates(source)
        print(f"{'model':9s} {'batch':>5s} {'precision':>9s} {'samples/s':>10s} {'reference':>10s}")
        for batch in batches:
            for precision in (["auto"] if cuda or args.quick else ["auto", "fp32"]):
                root = Path(scratch) / f"run-{batch}-{precision}"
                shutil.copytree(source, root, ignore=shutil.ignore_patterns("model"))
                iterations = 30 if cuda else (10 if batch == 16 else 6)
                result = train(root, model=name, iterations=iterations, batch_size=batch, precision=precision,
                               console=Console(quiet=True), preview_every=10 ** 6, compile=cuda and args.compile)
                rates = [row["samples_per_second"] for row in result.history]
                steady = statistics.median(rates[len(rates) // 2:])  # after start-up and the first steps
                reference = FACESWAP_CPU.get(batch) if name == "original" and not cuda else None
                versus = f"{steady / reference:.1f}× faceswap" if reference else ""
                label = read_state(root / "model")["training"]["precision"]
                print(f"{name:9s} {batch:5d} {label:>9s} {steady:10.1f} {versus:>10s}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-only", action="store_true", help="skip the GPU figures")
    parser.add_argument("--gpu-only", action="store_true", help="only the GPU figures (and the FLOP table)")
    parser.add_argument("--loop-only", action="store_true", help="only the whole-loop figures")
    parser.add_argument("--step-only", action="store_true", help="only the CPU step of lite before and after")
    parser.add_argument("--quick", action="store_true", help="fewer configurations and steps")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--workspace", help="extracted workspace for the loop (default: extract bundled GRID clips)")
    parser.add_argument("--loop-model", choices=list(MODELS), help="model for the loop (original on CPU, hd on GPU)")
    parser.add_argument("--compile", action="store_true", help="torch.compile in the GPU loop")
    parser.add_argument("--hd-variants", nargs="*", default=[], metavar="K=V,...",
                        help="extra hd configurations timed on the GPU (eager), e.g. width=192 blocks=2,batch=128")
    parser.add_argument("--profile", action="store_true", help="print the top CUDA kernels of an hd step")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    if args.step_only:
        return step_before_after()
    if not args.loop_only:
        model_table(args)
        if not args.gpu_only:
            step_before_after()
            cpu_table(args)
        if cuda and not args.cpu_only:
            gpu_table(args)
        elif args.gpu_only:
            print("no CUDA device: no GPU figures")
    if args.loop_only or not (args.gpu_only or args.quick):
        loop_table(args)
    print(f"\nreference: faceswap trains `original` on a 2-core CPU at {FACESWAP_CPU[16]:.0f} samples/s (batch 16) and "
          f"{FACESWAP_CPU[64]:.0f} samples/s (batch 64), both persons counted, augmentation included")


if __name__ == "__main__":
    main()
