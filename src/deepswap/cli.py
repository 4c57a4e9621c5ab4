"""The `deepswap` command line: a thin layer over the library API (see ``deepswap/__init__.py``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from .errors import DeepswapError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Swap faces in video with a shared-encoder autoencoder. Every output is labelled synthetic.")
console = Console()
err_console = Console(stderr=True)

Workspace = Annotated[Path, typer.Argument(help="Workspace folder.", show_default=False)]
Person = Annotated[str, typer.Argument(help="Person: a or b.", show_default=False)]
Start = Annotated[Optional[float], typer.Option("--start", help="Start time in seconds.")]
Duration = Annotated[Optional[float], typer.Option("--duration", help="Duration in seconds.")]


@app.command()
def init(
    workspace: Workspace,
    a: Annotated[str, typer.Option("--a", help="Name of person A (the face to replace).")],
    b: Annotated[str, typer.Option("--b", help="Name of person B (the face to put in).")],
) -> None:
    """Create a workspace for swapping person A and person B."""
    from .workspace import init_workspace

    init_workspace(workspace, a, b)
    console.print(f"created workspace [bold]{escape(str(workspace))}[/] (A = {escape(a)}, B = {escape(b)})")


@app.command()
def add(
    workspace: Workspace,
    person: Person,
    sources: Annotated[list[str], typer.Argument(help="URLs, video files or photo folders.", show_default=False)],
    start: Start = None,
    duration: Duration = None,
    reference: Annotated[Optional[Path], typer.Option("--reference", help="A photo of this person, to keep only their face.")] = None,
) -> None:
    """Record footage of a person (URLs, local videos, photo folders)."""
    from .workspace import add_sources

    added = add_sources(workspace, person, sources, start=start, duration=duration, reference=reference)
    for source in added:
        console.print(f"added {source.kind} [bold]{escape(source.uri)}[/] to {person}")
    if sources and not added:
        console.print(f"nothing new: {person} already has these sources")
    if reference:
        console.print(f"stored reference photo for {person}")


@app.command()
def fetch(workspace: Workspace) -> None:
    """Download every URL source (skips those already downloaded)."""
    from .sources import fetch_sources

    if not fetch_sources(workspace):
        console.print("no URL sources to fetch (add some with `deepswap add`)")


@app.command()
def status(workspace: Workspace, as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Show sources, face counts, model progress and outputs."""
    from .status import print_status, workspace_status

    report = workspace_status(workspace)
    if as_json:
        print(json.dumps(report, indent=1))
    else:
        print_status(report, console)


@app.command()
def extract(
    workspace: Workspace,
    person: Annotated[Optional[str], typer.Option("--person", help="Only this person: a or b (default both).")] = None,
    fps: Annotated[Optional[float], typer.Option("--fps", help="Sample videos at this many frames per second (default: every frame).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Discard earlier faces of the person(s) and extract again.")] = False,
) -> None:
    """Find, identify and align the faces of each person in their footage (resumable)."""
    from .faces.extract import extract as extract_faces

    extract_faces(workspace, person=person, fps=fps, force=force)


@app.command()
def faces(
    workspace: Workspace,
    person: Person,
    sheet: Annotated[Optional[Path], typer.Option("--sheet", help="Write a numbered contact sheet (.png/.jpg).")] = None,
    count: Annotated[int, typer.Option("--count", help="Faces on the sheet.")] = 100,
    order: Annotated[str, typer.Option("--sort", help="Sheet order: time (spread over the set), blur (blurriest first), distance (least alike first).")] = "time",
    remove: Annotated[Optional[str], typer.Option("--remove", help="Drop faces for good: numbers from a sheet, ranges or ids, e.g. 3,7,20-25.")] = None,
) -> None:
    """Look at a person's extracted faces (contact sheet) and drop bad ones."""
    from .faces.sheet import contact_sheet, faces_summary, remove_faces

    if remove:
        dropped = remove_faces(workspace, person, remove)
        console.print(f"removed {len(dropped)} face(s) of {person}; numbers have shifted, write a new sheet before removing more")
    if sheet:
        contact_sheet(workspace, person, sheet, count=count, order=order)  # type: ignore[arg-type]
        console.print(f"wrote contact sheet [bold]{sheet}[/]")
    if not (remove or sheet):
        summary = faces_summary(workspace, person)
        console.print(f"{person}: {summary['faces']} faces from {summary['sources']} source(s), {summary['removed']} removed; "
                      "see them with --sheet FILE.png")


@app.command()
def train(
    workspace: Workspace,
    model: Annotated[Optional[str], typer.Option("--model", help="original, lite or hd. Default: the saved model; a new one is hd on a GPU, lite on a CPU.")] = None,
    iterations: Annotated[Optional[int], typer.Option("--iterations", help="Train until the model has done N iterations in all.")] = None,
    minutes: Annotated[Optional[float], typer.Option("--minutes", help="Train for M minutes.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Faces of each person per iteration (default: the model's).")] = None,
    compile_model: Annotated[bool, typer.Option("--compile", help="torch.compile the model (faster on GPUs once compiled).")] = False,
    precision: Annotated[str, typer.Option("--precision", help="auto (bf16 where the hardware has it), bf16 or fp32.")] = "auto",
) -> None:
    """Train the face-swap model on the extracted faces; Ctrl-C saves and stops, re-running resumes."""
    from .train import train as train_model

    if iterations is not None and minutes is not None:
        raise DeepswapError("give --iterations or --minutes, not both")
    if precision not in ("auto", "bf16", "fp32"):
        raise DeepswapError(f"--precision must be auto, bf16 or fp32, not {precision!r}")
    train_model(workspace, model=model, iterations=iterations, minutes=minutes, batch_size=batch_size,
                compile=compile_model, precision=precision, console=console)  # type: ignore[arg-type]


@app.command()
def convert(
    workspace: Workspace,
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="Video, photo or photo folder of the person to replace.", show_default=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output file (.mp4), photo or folder.", show_default=False)],
    direction: Annotated[str, typer.Option("--direction", help="a2b replaces A with B; b2a the reverse.")] = "a2b",
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="Original | swapped, each labelled.")] = False,
    start: Start = None,
    duration: Duration = None,
    scale: Annotated[Optional[float], typer.Option("--scale", help="Resize the output by this factor.")] = None,
    width: Annotated[Optional[int], typer.Option("--width", help="Output width in pixels (height follows).")] = None,
    color: Annotated[str, typer.Option("--color", help="Colour matching: reinhard, hist or none.")] = "reinhard",
    blend: Annotated[str, typer.Option("--blend", help="Blending: feather or seamless.")] = "feather",
    mask_erode: Annotated[float, typer.Option("--mask-erode", help="Shrink (or, negative, grow) the mask, fraction of the face.")] = 0.03,
    mask_blur: Annotated[float, typer.Option("--mask-blur", help="Feather width of the mask edge, fraction of the face.")] = 0.08,
    crf: Annotated[int, typer.Option("--crf", help="H.264 quality (0 lossless … 51 worst).")] = 18,
    gif: Annotated[bool, typer.Option("--gif", help="Write an animated GIF instead of an mp4.")] = False,
    preview: Annotated[Optional[int], typer.Option("--preview", help="Write only N frames' before/after PNGs into the OUTPUT folder.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Faces per model call.")] = 16,
) -> None:
    """Swap the face through a video (with its audio), a photo or a photo folder. The output is labelled synthetic."""
    from .convert import ConvertOptions, convert as run_convert

    choices = {"--direction": (direction, ("a2b", "b2a")), "--color": (color, ("reinhard", "hist", "none")),
               "--blend": (blend, ("feather", "seamless"))}
    for flag, (value, allowed) in choices.items():
        if value not in allowed:
            raise DeepswapError(f"{flag} must be one of {', '.join(allowed)}, not {value!r}")
    run_convert(workspace, input_path, output, ConvertOptions(
        direction=direction, side_by_side=side_by_side, start=start, duration=duration, scale=scale, width=width,
        color=color, blend=blend, mask_erode=mask_erode, mask_blur=mask_blur, crf=crf, gif=gif, preview=preview,
        batch_size=batch_size))  # type: ignore[arg-type]


@app.command()
def evaluate(
    workspace: Workspace,
    clips: Annotated[Optional[Path], typer.Option("--clips", help="Videos of A not used for training (a folder or one video). Default: A's own footage (optimistic).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    max_frames: Annotated[int, typer.Option("--max-frames", help="Frames of the clips to swap and score.")] = 150,
) -> None:
    """Score the trained swap: identity transfer, reconstruction, jitter, expression (see the README)."""
    from .evaluate import evaluate as run_evaluate, print_report

    report = run_evaluate(workspace, clips=clips, max_frames=max_frames, progress=not as_json)
    if as_json:
        print(json.dumps(report, indent=1))
    else:
        print_report(report, console)


@app.command()
def verify(files: Annotated[list[Path], typer.Argument(help="Images or videos to check.", show_default=False)]) -> None:
    """Check files for the deepswap label and watermark. Exit 0: all marked; 1: some not; 2: unreadable."""
    from .provenance import verify_file

    worst = 0
    for path in files:
        try:
            report = verify_file(path)
        except DeepswapError as error:
            err_console.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            worst = 2
            continue
        console.print(escape(report.summary()), highlight=False, soft_wrap=True)
        worst = max(worst, 0 if report.synthetic else 1)
    raise typer.Exit(worst)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo workspace and result.")] = Path("deepswap-demo"),
    minutes: Annotated[Optional[float], typer.Option("--minutes", help="Training time (default 8 minutes).")] = None,
) -> None:
    """Run the whole pipeline on the bundled GRID sample footage (s1 → lrwp9a) and show where the result is."""
    from .demo import run_demo

    if minutes is not None and not minutes > 0:
        raise DeepswapError(f"--minutes must be > 0, not {minutes}")
    run_demo(out, minutes)


@app.command()
def ui(
    root: Annotated[Path, typer.Argument(help="A workspace, or a folder of workspaces.")] = Path("."),
    host: Annotated[str, typer.Option("--host", help="Address to listen on; any but localhost needs the access token printed.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: any free one).")] = 7860,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")] = False,
) -> None:
    """Run the whole pipeline in a web browser: sources, faces, training, convert, verify, evaluate."""
    import webbrowser

    from .ui import UIServer

    server = UIServer(root, host=host, port=port)
    console.print(f"deepswap ui: {escape(str(root))} at [bold]{server.url}[/] (Ctrl-C stops it; running jobs save first)",
                  highlight=False, soft_wrap=True)
    if open_browser:
        webbrowser.open(server.url)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    console.print("deepswap ui stopped")


def main() -> None:
    """Entry point: run the CLI, turning user errors into one line on stderr."""
    try:
        app()
    except DeepswapError as error:
        err_console.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except SystemExit as stop:
        if stop.code == 130:  # typer's exit for Ctrl-C
            err_console.print("interrupted; finished work is kept, run the command again to resume")
        raise
