"""deepswap: swap faces in video with a shared-encoder autoencoder; every output is labelled synthetic.

The public API, used by the CLI, scripts and the web UI::

    import deepswap
    workspace = deepswap.init_workspace("ws", a="alice", b="bob")
    deepswap.add_sources(workspace, "a", ["alice.mp4"])
    deepswap.extract(workspace, deepswap.ExtractOptions(fps=5), on_progress=print)
    deepswap.train(workspace, deepswap.TrainOptions(minutes=10), on_progress=print)
    deepswap.convert(workspace, "alice2.mp4", "out.mp4", deepswap.ConvertOptions(side_by_side=True))
    deepswap.verify_file("out.mp4")

Long stages report through ``on_progress`` (``deepswap.ProgressEvent``, see ``deepswap.progress``)
and never print; option objects check their values when they are built.
"""

from __future__ import annotations

from ._lazy import export_lazily

__version__ = "0.1.0"

_API = {
    "DeepswapError": "errors",
    "ProgressEvent": "progress",
    "ProgressCallback": "progress",
    "Workspace": "workspace",
    "init_workspace": "workspace",
    "add_sources": "sources",
    "AddOptions": "sources",
    "workspace_status": "status",
    "fetch_sources": "sources",
    "read_frames": "video",
    "read_photos": "video",
    "probe_video": "video",
    "VideoWriter": "video",
    "write_video": "video",
    "write_image": "video",
    "verify_file": "verify",
    "VerifyReport": "verify",
    "Watermarker": "provenance",
    "new_output_id": "provenance",
    "extract": "extract",
    "ExtractOptions": "extract",
    "FaceAnalyzer": "faces",
    "FaceSet": "faces",
    "load_faceset": "faces",
    "contact_sheet": "extract",
    "remove_faces": "extract",
    "convert": "convert",
    "Converter": "convert",
    "convert_batch": "convert",
    "BatchReport": "convert",
    "ConvertOptions": "convert",
    "ReplaceSettings": "convert",
    "run_demo": "demo",
    "train": "train",
    "train_mask": "train",
    "TrainOptions": "train",
    "load_swapper": "train",
    "Swapper": "train",
    "MODELS": "train",
    "evaluate": "evaluate",
    "EvaluateOptions": "evaluate",
    "check_coverage": "coverage",
    "Coverage": "coverage",
}
__all__ = sorted(_API)


export_lazily(__name__, _API)
