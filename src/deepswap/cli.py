"""The `deepswap` command line: a thin layer over the library API (see ``deepswap/__init__.py``).

Each command translates its arguments into the library's option objects (which check them),
calls one library function and draws its progress events and result with rich.

Exit codes: 0 success; 1 an error (one line on stderr) or, for ``verify``, some file not
confirmed as a deepswap output; 2 ``verify`` could not read a file; 130 interrupted (Ctrl-C),
finished work kept. An unexpected failure prints one line naming a log file that holds the
traceback (``--debug`` prints it instead).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
import tempfile
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Optional

import typer
from rich.console import Console
from rich.filesize import decimal
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from .convert.options import ConvertOptions
from .demo import DemoOptions
from .errors import DeepswapError
from .evaluate.options import EvaluateOptions
from .extract.options import ExtractOptions
from .options import OptionError
from .sources.options import AddOptions
from .train.config import TrainOptions
from .ui.options import ServeOptions

if TYPE_CHECKING:
    from .extract import PersonReport
    from .progress import ProgressEvent
    from .workspace import Workspace as LoadedWorkspace

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Swap faces in video with a shared-encoder autoencoder. Every output is labelled synthetic.")
console = Console()
err_console = Console(stderr=True)
_debug = {"on": False}

Workspace = Annotated[Path, typer.Argument(help="Workspace folder.", show_default=False)]
Person = Annotated[str, typer.Argument(help="Person: a or b.", show_default=False)]


def with_options(cls: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command one option per option that ``cls`` declares for the command line (name, type,
    default and help from the declaration, see ``deepswap.options``) and call it with ``options=``,
    the option object built from their values (which checks them)."""
    from .options import build, declared

    offered = [found for found in declared(cls) if found.declared.cli]
    _BARE_VALUES.update({found.declared.cli_name: found.declared.bare for found in offered
                         if found.declared.bare is not None})

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command, eval_str=True)
        kept = [parameter for parameter in signature.parameters.values() if parameter.name != "options"]
        added = [inspect.Parameter(found.name, inspect.Parameter.KEYWORD_ONLY, default=found.default, annotation=Annotated[
            found.kind if found.kind is bool or found.default is not None else Optional[found.kind],
            typer.Option(found.declared.cli_name, help=found.declared.help)]) for found in offered]

        @functools.wraps(command)
        def run(**values: Any) -> Any:
            chosen = {found.name: values.pop(found.name) for found in offered}
            return command(**values, options=build(cls, chosen))

        run.__signature__ = signature.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
        run.__annotations__ = {}
        return run

    return decorate


_BARE_VALUES: dict[str, str] = {}  # options that may be given without their value ("--ray" → "auto"): with_options


def with_bare_values(args: list[str]) -> list[str]:
    """The command line with the value an option takes when given alone (its declaration's
    ``bare``) written out: ``--ray`` last, or before another option, becomes ``--ray=auto``; an
    option followed by a value keeps it (click's options with an optional value read the same)."""
    return [f"{arg}={_BARE_VALUES[arg]}" if arg in _BARE_VALUES and (index + 1 == len(args) or args[index + 1].startswith("-"))
            else arg for index, arg in enumerate(args)]


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"deepswap {version('deepswap')}")
        raise typer.Exit()


@app.callback()
def _options(debug: Annotated[bool, typer.Option("--debug", help="Print the traceback of an unexpected error.")] = False,
             show_version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                        help="Print deepswap's version and exit.")] = False) -> None:
    _debug["on"] = debug


# Drawing progress events and results.

FIGURES = {"loss_a": ("loss A", ".4f"), "loss_b": ("B", ".4f"), "samples_per_second": ("", ".1f"),
           "faces": ("faces", ".0f"), "skipped": ("skipped", ".0f"), "mask_loss": ("mask loss", ".4f")}
QUIET_LOG_SECONDS = 10.0


class ProgressView:
    """Draws ``ProgressEvent``s on stderr: a live bar per task on a terminal, else (logs, pipes) a
    line every 10 s of a task that runs that long; notes always as lines of their own."""

    def __init__(self, show_files: bool = False) -> None:
        self.console = err_console
        self.show_files = show_files
        self.live = self.console.is_terminal
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(bar_width=20), TextColumn("{task.fields[count]}"),
                            TextColumn("{task.fields[figures]}"), console=self.console, disable=not self.live)
        self.tasks: dict[tuple[str, str], TaskID] = {}
        self.logged: dict[tuple[str, str], float] = {}

    def __enter__(self) -> "ProgressView":
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def __call__(self, event: ProgressEvent) -> None:
        key = (event.stage, event.task)
        if event.kind == "note":
            self._line(escape(event.message))
        elif event.kind == "file":
            if self.show_files:
                self._line(f"{escape(event.message)} → {escape(str(event.path))}")
        elif event.kind == "task":
            self.tasks[key] = self.bar.add_task(escape(event.task), total=event.total, completed=event.done,
                                                count=_count(event), figures="")
            self.logged[key] = time.monotonic()
        elif key in self.tasks:
            figures = {"figures": _figures(event.values)} if event.values else {}
            self.bar.update(self.tasks[key], completed=event.done, total=event.total, count=_count(event), **figures)
            if not self.live and event.kind == "progress" and time.monotonic() - self.logged[key] >= QUIET_LOG_SECONDS:
                self.logged[key] = time.monotonic()
                self._line(f"{escape(event.task)}: {_count(event)} {_figures(event.values)}".rstrip())

    def _line(self, markup: str) -> None:
        self.console.print(markup, highlight=False, soft_wrap=True)


def _count(event: ProgressEvent) -> str:
    if event.unit == "bytes":
        text = decimal(int(event.done)) + (f"/{decimal(int(event.total))}" if event.total else "")
        return text + (f" at {decimal(int(event.rate))}/s" if event.rate else "")
    text = f"{event.done:.0f}" + (f"/{event.total:.0f}" if event.total else "") + f" {event.unit}"
    return text + (f" ({event.rate:.1f}/s)" if event.rate else "")


def _figures(values: dict[str, float] | Any) -> str:
    parts = [f"{label} {values[key]:{form}}".strip() + (" samples/s" if key == "samples_per_second" else "")
             for key, (label, form) in FIGURES.items() if key in values]
    if "eta_seconds" in values:
        minutes, seconds = divmod(int(values["eta_seconds"]), 60)
        parts.append(f"ETA {minutes // 60}:{minutes % 60:02d}:{seconds:02d}")
    return "  ".join(parts)


def _print_extract_summary(workspace: LoadedWorkspace, reports: dict[str, PersonReport], rows: int = 12) -> None:
    """A table per run: each person's sources with frames, faces and skips, and the step timings."""
    counts = ("frames", "faces", "skipped_no_face", "skipped_other_person")
    table = Table(title="extract")
    for column in ("person", "source", "frames", "faces", "no face", "other person"):
        table.add_column(column, justify="left" if column in ("person", "source") else "right")
    for key, report in reports.items():
        label = escape(f"{key}: {workspace.persons[key].name}")  # type: ignore[index]
        states = list(report.sources.values())
        for state in states[:rows]:
            table.add_row(label, escape(Path(state["uri"]).name or state["uri"]), *(str(state[k]) for k in counts))
        if len(states) > rows:
            table.add_row(label, f"… {len(states) - rows} more", *(str(sum(s[k] for s in states[rows:])) for k in counts))
        table.add_row(f"[bold]{label}[/]", "[bold]all[/]", *(f"[bold]{sum(s[k] for s in states)}[/]" for k in counts),
                      end_section=True)
    console.print(table)
    for report in reports.values():
        spent = sum(report.times.values())
        if report.frames and spent > 0:
            steps = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in report.times.items())
            console.print(f"{report.person}: {report.frames} new frames at {report.frames / spent:.0f} frames/s ({steps}); "
                          f"{report.faces} faces in {escape(str(workspace.faces_dir(report.person)))}",
                          highlight=False, soft_wrap=True)


def _print_status(report: dict[str, Any]) -> None:
    sources = Table(title=f"workspace {escape(report['workspace'])}")
    for column in ("person", "kind", "source", "range", "available"):
        sources.add_column(column, overflow="fold")
    for key, person in report["persons"].items():
        label = f"{key}: {escape(person['name'])}"
        if not person["sources"]:
            sources.add_row(label, "", "(no sources yet)", "", "")
        for source in person["sources"]:
            span = ""
            if "start" in source or "duration" in source:
                span = f"{source.get('start', 0):g}s +{source['duration']:g}s" if "duration" in source else f"{source['start']:g}s →"
            ready = "yes" if source["available"] else ("no — run fetch" if source["kind"] == "url" else "missing!")
            sources.add_row(label, source["kind"], escape(source["uri"]), span, ready)
    console.print(sources)
    summary = Table(show_header=False)
    for key, person in report["persons"].items():
        summary.add_row(f"faces {key} ({escape(person['name'])})", str(person["faces"]))
    model = report["model"]
    summary.add_row("model", f"{model['model'] or 'not trained'}, {model['iterations']} iterations")
    for output in report["outputs"]:
        summary.add_row("output", escape(output["path"]))
    console.print(summary)
    for problem in report["problems"]:
        console.print(f"[red]problem:[/] {escape(problem)}", highlight=False, soft_wrap=True)


def print_report(report: dict[str, Any], out: Console) -> None:
    """Render an ``evaluate`` report as a table: metric, value, target (✓/✗ where one is set)."""
    from .evaluate import coverage_lines, report_rows, report_title

    table = Table(title=escape(report_title(report)))
    for column in ("metric", "value", "target"):
        table.add_column(column)
    for row in report_rows(report):
        mark = {True: " [green]✓[/]", False: " [red]✗[/]", None: ""}[row.met]
        table.add_row(escape(row.metric), escape(row.value), escape(row.target) + mark)
    out.print(table)
    coverage = coverage_lines(report)
    if coverage:
        out.print("[yellow]not covered by B's faces[/] (the model cannot draw what B's footage never shows):")
        for line in coverage:
            out.print(f"  {escape(line)}", highlight=False, soft_wrap=True)


# The commands.

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
@with_options(AddOptions)
def add(
    workspace: Workspace,
    person: Person,
    sources: Annotated[list[str], typer.Argument(help="URLs, video files or photo folders.", show_default=False)],
    options: AddOptions,
) -> None:
    """Record footage of a person (URLs, local videos, photo folders)."""
    from .sources import add_sources

    added = add_sources(workspace, person, sources, start=options.start, duration=options.duration,
                        reference=options.reference)
    for source in added:
        console.print(f"added {source.kind} [bold]{escape(source.uri)}[/] to {person}")
    if sources and not added:
        console.print(f"nothing new: {person} already has these sources")
    if options.reference:
        console.print(f"stored reference photo for {person}")


@app.command()
def fetch(workspace: Workspace) -> None:
    """Download every URL source (skips those already downloaded)."""
    from .sources import fetch_sources

    with ProgressView(show_files=True) as view:
        fetched = fetch_sources(workspace, view)
    if not fetched:
        console.print("no URL sources to fetch (add some with `deepswap add`)")


@app.command()
def status(workspace: Workspace, as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Show sources, face counts, model progress and outputs."""
    from .status import workspace_status

    report = workspace_status(workspace)
    if as_json:
        print(json.dumps(report, indent=1))
    else:
        _print_status(report)


@app.command()
@with_options(ExtractOptions)
def extract(workspace: Workspace, options: ExtractOptions) -> None:
    """Find, identify and align the faces of each person in their footage (resumable; exit 1 if a source failed, the others are kept)."""
    from .extract import check_failed, extract as extract_faces
    from .workspace import Workspace as LoadedWorkspace

    loaded = LoadedWorkspace.open(workspace)
    with ProgressView() as view:
        reports = extract_faces(loaded, options, view)
    _print_extract_summary(loaded, reports)  # type: ignore[arg-type]
    check_failed(reports)  # type: ignore[arg-type]


@app.command()
def faces(
    workspace: Workspace,
    person: Person,
    sheet: Annotated[Optional[Path], typer.Option("--sheet", help="Write a numbered contact sheet (.png/.jpg).")] = None,
    count: Annotated[int, typer.Option("--count", help="Faces on the sheet.")] = 100,
    order: Annotated[str, typer.Option("--sort", help="Sheet order: time (spread over the set), blur (blurriest first), distance (least alike first).")] = "time",
    remove: Annotated[Optional[str], typer.Option("--remove", help="Drop faces for good: numbers from a sheet, ranges or ids, e.g. 3,7,20-25.")] = None,
    mask: Annotated[Optional[str], typer.Option("--mask", help="Replace a face's mask with your own, FACE_ID=FILE.png "
                                                               "(the crop's size, white = face); it counts as corrected by hand.")] = None,
) -> None:
    """Look at a person's extracted faces (contact sheet), drop bad ones, or correct a face's mask."""
    from .extract import contact_sheet, correct_mask, faces_summary, remove_faces

    if mask:
        face, equals, file = mask.partition("=")
        if not equals or not Path(file).is_file():
            raise DeepswapError(f"--mask {mask}: give FACE_ID=FILE.png, a face id and an existing PNG file")
        corrected = correct_mask(workspace, person, face, Path(file).read_bytes())
        console.print(f"stored the mask of {escape(face)}; {corrected} face(s) of {person} corrected by hand "
                      "(`deepswap train WS --mask-steps N` trains the learned mask on them)")
    if remove:
        dropped = remove_faces(workspace, person, remove)
        console.print(f"removed {len(dropped)} face(s) of {person}; numbers have shifted, write a new sheet before removing more")
    if sheet:
        contact_sheet(workspace, person, sheet, count=count, order=order)  # type: ignore[arg-type]
        console.print(f"wrote contact sheet [bold]{escape(str(sheet))}[/]")
    if not (remove or sheet or mask):
        summary = faces_summary(workspace, person)
        console.print(f"{person}: {summary['faces']} faces from {summary['sources']} source(s), {summary['removed']} removed, "
                      f"{summary['corrected']} with the mask corrected by hand; see them with --sheet FILE.png")


@app.command()
@with_options(TrainOptions)
def train(workspace: Workspace, options: TrainOptions) -> None:
    """Train the face-swap model on the extracted faces; Ctrl-C saves and stops, re-running resumes.

    With --mask-steps N, train only the learned face mask (after correcting masks in the web UI's Faces page)."""
    from .train import train as train_model
    from .train import train_mask

    with ProgressView() as view:
        (train_mask if options.mask_steps is not None else train_model)(workspace, options, view)


@app.command()
@with_options(ConvertOptions)
def convert(
    workspace: Workspace,
    inputs: Annotated[list[Path], typer.Argument(
        metavar="INPUT", show_default=False,
        help="Videos, photos or photo folders of the person to replace; several inputs, a glob or a folder of videos "
             "make a batch into the folder OUTPUT, which a re-run resumes.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output file (.mp4), photo or folder (a batch's: a folder).",
                                         show_default=False)],
    options: ConvertOptions,
) -> None:
    """Swap the face through a video (with its audio), a photo or a photo folder, or a batch of them. The output is labelled synthetic.

    A batch skips outputs finished before, goes on past an input that fails and exits 1 if any failed.
    """
    from .convert import convert as run_convert
    from .convert.batch import convert_batch, is_batch

    if is_batch(inputs, output):
        with ProgressView() as view:
            batch = convert_batch(workspace, inputs, output, options, view)
        for item in batch.failed:
            err_console.print(f"[red]failed:[/] {escape(item.reason)}", highlight=False, soft_wrap=True)
        err_console.print(f"{batch.summary()} → {escape(str(output))}", highlight=False, soft_wrap=True)
        if batch.failed:
            raise typer.Exit(1)
        return
    with ProgressView() as view:
        report = run_convert(workspace, inputs[0], output, options, view)
    err_console.print(f"{report.frames} frames: {report.swapped} swapped, {report.passed_through} passed through "
                      f"({report.fps:.1f} frames/s) → {escape(str(output))}", highlight=False, soft_wrap=True)


@app.command()
@with_options(EvaluateOptions)
def evaluate(
    workspace: Workspace,
    options: EvaluateOptions,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Score the trained swap: identity transfer, reconstruction, jitter, expression, sharpness (see the docs' Evaluating page)."""
    from .evaluate import evaluate as run_evaluate

    if as_json:
        print(json.dumps(run_evaluate(workspace, options), indent=1))
        return
    with ProgressView() as view:
        report = run_evaluate(workspace, options, on_progress=view)
    print_report(report, console)


@app.command()
def verify(
    files: Annotated[list[Path], typer.Argument(help="Images or videos to check.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output: every piece of evidence of each file.")] = False,
) -> None:
    """Check files for deepswap's watermark and label and for Content Credentials (C2PA).

    Exit 0: the watermark confirms every file; 1: some file is not confirmed (a label alone does not confirm); 2: some file could not be read.
    """
    from .verify import EXIT_UNREADABLE, verify_file

    worst = 0
    reports = []
    for path in files:
        try:
            report = verify_file(path)
        except Exception as error:  # unreadable, or a failure reading it: either way the file is not checked
            worst = EXIT_UNREADABLE
            message = str(error) if isinstance(error, DeepswapError) else f"{path}: could not be checked: {_unexpected(error)}"
            if as_json:
                reports.append({"path": str(path), "error": message, "exit_code": EXIT_UNREADABLE})
            else:
                err_console.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
            continue
        worst = max(worst, report.exit_code)
        if as_json:
            reports.append(report.to_dict())
        else:
            console.print(escape(report.summary()), highlight=False, soft_wrap=True)
    if as_json:
        print(json.dumps(reports, indent=1))
    raise typer.Exit(worst)


@app.command()
@with_options(DemoOptions)
def demo(options: DemoOptions) -> None:
    """Run the whole pipeline on the bundled GRID sample footage (s1 → lrwp9a) and show where the result is."""
    from .demo import run_demo

    with ProgressView() as view:
        result = run_demo(options, on_progress=view)
    console.print(
        f"\n[bold green]done[/] after {result.iterations} training iterations.\n"
        f"  video (original | swapped, labelled synthetic): {escape(str(result.video))}\n"
        f"  training preview (rows A, A→A, A→B, B, B→B, B→A): {escape(str(result.preview))}\n"
        f"  loss curve: {escape(str(result.loss_plot))}\n"
        f"  workspace: {escape(str(result.workspace))} (`deepswap train {escape(str(result.workspace))}` trains further)\n"
        f"Check the label with: deepswap verify {escape(str(result.video))}", highlight=False, soft_wrap=True)


def _crash_log(error: BaseException) -> Path:
    """Write the traceback of an unexpected error to a log file; returns its path."""
    folder = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "deepswap"
    text = f"deepswap {' '.join(sys.argv[1:])}\n\n" + "".join(traceback.format_exception(error))
    name = f"crash-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"
    for place in (folder, Path(tempfile.gettempdir())):
        try:
            place.mkdir(parents=True, exist_ok=True)
            (place / name).write_text(text, "utf-8")
            return place / name
        except OSError:
            continue
    return Path("(no writable folder for the log)")


@app.command()
@with_options(ServeOptions)
def ui(
    options: ServeOptions,
    root: Annotated[Path, typer.Argument(help="A workspace, or a folder of workspaces.")] = Path("."),
) -> None:
    """Run the whole pipeline in a web browser: sources, faces, training, convert, verify, evaluate.

    Open the URL it prints (or use --open): it carries an access token, kept then in a cookie.
    """
    import webbrowser

    from .ui import UIServer

    server = UIServer(root, options)
    console.print(f"deepswap ui: {escape(str(root))} at [bold]{server.url}[/] (Ctrl-C stops it; running jobs save first)",
                  highlight=False, soft_wrap=True)
    if options.open_browser:
        webbrowser.open(server.url)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    console.print("deepswap ui stopped")


def _unexpected(error: Exception) -> str:
    """One line for an unexpected failure, naming the log that holds its traceback (``--debug`` re-raises)."""
    if _debug["on"]:
        raise error
    summary = " ".join(f"{type(error).__name__}: {error}".split())[:300]
    return f"unexpected failure ({summary}); details in {_crash_log(error)} (run with --debug to print them)"


def main() -> None:
    """Entry point: run the CLI, turning user errors into one line on stderr (exit 1), and any
    other failure into one line naming a log of its traceback."""
    try:
        app(args=with_bare_values(sys.argv[1:]))
    except DeepswapError as error:
        said = error.said(lambda option: option.cli_name) if isinstance(error, OptionError) else str(error)
        err_console.print(f"[red]error:[/] {escape(said)}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except SystemExit as stop:
        if stop.code == 130:  # typer's exit for Ctrl-C
            err_console.print("interrupted; finished work is kept, run the command again to resume")
        raise
    except Exception as error:  # a bug or an unforeseen condition: one line, the traceback in a log
        err_console.print(f"[red]error:[/] {escape(_unexpected(error))}", highlight=False, soft_wrap=True)
        sys.exit(1)
