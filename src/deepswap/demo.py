"""`deepswap demo`: the whole pipeline on the sample footage that ships with deepswap.

A = GRID speaker s1 (seven clips to learn from, one held back to convert), B = GRID speaker
lrwp9a (one 3-second clip: the realistic "little footage of the target" case). The footage is
from the GRID audio-visual corpus (Cooke, Barker, Cunningham & Shao 2006), CC BY 4.0.
Re-running the demo resumes: extracted faces are kept and training continues from its checkpoint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .options import check, option
from .progress import ProgressCallback, Reporter

SAMPLES = Path(__file__).parent / "data" / "grid"
HELD_BACK = "bbas1s.mp4"
CREDIT = ("GRID audio-visual corpus (Cooke, Barker, Cunningham & Shao 2006), CC BY 4.0, "
          "recorded with consenting volunteers")
# (name, architecture options, batch size, learning rate; None: the model's default): `lite` as it
# is on CPUs (narrow, batch 8, a high learning rate: the CLI's default too), but drawing 64-px faces:
# in the demo's 8 minutes (about 1,000 iterations at 128 px on 2 cores) the 128-px faces are still
# softer; they pull ahead in longer runs (30 minutes).
CPU_MODEL = ("lite", {"output_scale": 1}, None, None)
GPU_MODEL = ("hd", {}, 64, 2e-4)


@dataclass(frozen=True)
class DemoOptions:
    """Where the demo works and how long it trains (``minutes``, of this run)."""

    out: Path = option(Path("deepswap-demo"), help="Folder for the demo workspace and result.")
    minutes: float = option(8.0, minimum=0, above=True, help="Training time in minutes.")

    def __post_init__(self) -> None:
        check(self)


@dataclass(frozen=True)
class SampleFootage:
    """The footage that ships with deepswap: A's clips to learn from, B's clip, and A's held-back clip to convert."""

    a: list[Path]
    b: list[Path]
    held_back: Path
    names: tuple[str, str] = ("s1", "lrwp9a")


def sample_footage() -> SampleFootage:
    """The bundled GRID clips (s1 → lrwp9a) the demo uses."""
    clips = sorted((SAMPLES / "s1").glob("*.mp4"))
    return SampleFootage(a=[clip for clip in clips if clip.name != HELD_BACK], b=[SAMPLES / "speakers" / "lrwp9a.mp4"],
                         held_back=SAMPLES / "s1" / HELD_BACK)


@dataclass
class DemoResult:
    video: Path
    preview: Path
    loss_plot: Path
    workspace: Path
    iterations: int


def run_demo(options: DemoOptions = DemoOptions(), *, on_progress: ProgressCallback | None = None,
             model: tuple[str, dict[str, Any], int | None, float | None] | None = None, fps: float = 10.0) -> DemoResult:
    """Build a workspace in ``options.out`` from the sample footage, extract, train for ``options.minutes``,
    convert a held-back clip.

    ``model`` (name, architecture options, batch size, learning rate) overrides the choice made for this machine;
    ``fps`` is the rate faces are sampled from A's clips (B's one clip gives every frame). Every stage's
    progress events go to ``on_progress``, with ``demo`` notes between the stages.
    """
    import torch

    from .convert import ConvertOptions, convert
    from .extract import ExtractOptions, extract
    from .sources import add_sources
    from .train import TrainOptions, train
    from .workspace import CONFIG_NAME, Workspace, init_workspace

    reporter = Reporter("demo", on_progress)
    out, minutes = options.out, options.minutes
    cuda = torch.cuda.is_available()
    name, architecture, batch_size, learning_rate = model or (GPU_MODEL if cuda else CPU_MODEL)
    training = TrainOptions(model=name, minutes=minutes, batch_size=batch_size, architecture=architecture,
                            learning_rate=learning_rate)
    footage = sample_footage()
    reporter.note(
        f"deepswap demo: A = GRID speaker s1 ({len(footage.a)} clips), B = GRID speaker lrwp9a (1 clip); "
        f"footage: {CREDIT}.\nTraining the {name} model for {minutes:g} minutes on "
        f"{'the GPU' if cuda else 'the CPU'}, then converting a held-back clip (about {minutes + 1.5:.0f} minutes in all). "
        f"Re-run to resume and train further.")
    root = out / "workspace"
    workspace = Workspace.open(root) if (root / CONFIG_NAME).is_file() else init_workspace(root, *footage.names)
    add_sources(workspace, "a", [str(clip) for clip in footage.a])
    add_sources(workspace, "b", [str(clip) for clip in footage.b])

    reporter.note("1/3 extract faces")
    began = time.perf_counter()
    extract(workspace, ExtractOptions(person="a", fps=fps), on_progress)
    extract(workspace, ExtractOptions(person="b"), on_progress)  # every frame: B has little footage
    reporter.note(f"extracted in {time.perf_counter() - began:.0f} s")

    reporter.note("2/3 train")
    result = train(workspace, training, on_progress)

    reporter.note("3/3 convert the held-back clip")
    video = out / "demo_swap.mp4"
    convert(workspace, footage.held_back, video, ConvertOptions(side_by_side=True, force=True),
            on_progress)  # force: a re-run replaces its own earlier video
    return DemoResult(video=video, preview=workspace.model_dir / "preview.png", loss_plot=workspace.model_dir / "loss.png",
                      workspace=root, iterations=result.iteration)
