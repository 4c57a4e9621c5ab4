"""Converting a long video's chunks on a Ray cluster (the ``cluster`` extra: ``pip install "deepswap[cluster]"``).

No file system is shared with the cluster: the model (a ``SwapKit``, on the CPU) and the input
video go into Ray's object store once, each chunk is a Ray task that converts its chunk into a
part on the worker's own disk and returns the part's bytes, and the driver writes the parts into
the chunk folder, where the join (``chunks``) finds them as it finds local ones. Each task asks
for one CPU, and one GPU when the cluster has GPUs. A task whose worker dies is retried on
another worker (Ray's ``max_retries``); a chunk that fails for a reason of its own (bad input) is
not, and stops the run with its one-line error. Progress: each frame as a task writes it (see
``deepswap.parallel``).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .. import _io
from ..errors import DeepswapError
from ..faces import FaceAnalyzer, Identity, IdentityTracker
from ..parallel import connect, run_on_ray
from ..workspace import PersonKey, other_person
from .chunks import Chunk, convert_chunk, part_counts, record_part
from .eyelids import EyelidFollower
from .options import ConvertOptions, ReplaceSettings
from .replace import FaceReplacer

if TYPE_CHECKING:
    from ..train import Swapper
    from ..video import VideoInfo
    from .workers import ChunkTask


@dataclass(frozen=True)
class SwapKit:
    """What a worker without the workspace needs to replace ``replaced``'s face: the model (on the
    CPU, moved to a GPU where the worker has one), the identity to replace, the crop size, the
    other person's widest mouth opening (``convert.mouth``) and both persons' usual eye openness
    (``convert.eyelids``)."""

    swapper: Swapper
    identity: Identity
    replaced: PersonKey
    face_size: int
    widest_mouth: float
    eyelids: EyelidFollower

    @classmethod
    def of(cls, swapper: Swapper, identity: Identity, replaced: PersonKey, face_size: int, widest_mouth: float,
           eyelids: EyelidFollower) -> SwapKit:
        """A kit from a loaded model (copied to the CPU, so that any worker can load it)."""
        import torch

        return cls(swapper.on(torch.device("cpu")), identity, replaced, face_size, widest_mouth, eyelids)

    def replacer(self, settings: ReplaceSettings) -> FaceReplacer:
        """A per-frame pipeline on this worker (its GPU when it has one)."""
        import torch

        swapper = self.swapper.on(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
        analyzer = FaceAnalyzer(face_size=self.face_size)
        return FaceReplacer(analyzer, IdentityTracker(self.identity, analyzer.encoder), swapper,
                            other_person(self.replaced), settings, self.widest_mouth, self.eyelids)


def run_chunks_on_ray(address: str, kit: SwapKit, tasks: Sequence[ChunkTask], on_frame: Callable[[int], None]) -> None:
    """Convert the chunk tasks on the Ray cluster at ``address``, writing each part where the task
    says; ``on_frame(1)`` per frame a task writes, as it writes it."""
    ray = connect(address)
    kit_ref = ray.put(kit)
    videos = {path: ray.put(path.read_bytes()) for path in {task.input_path for task in tasks}}
    calls = [(task, (kit_ref, videos[task.input_path], task.input_path.suffix, task.chunk, task.info, task.size,
                     task.options, _without_signing(task.label))) for task in tasks]

    def write_part(task: ChunkTask, result: tuple[bytes, dict[str, int]] | DeepswapError) -> None:
        if isinstance(result, DeepswapError):
            raise result
        data, counts = result
        _io.write_bytes(task.part, data)
        record_part(task.part, counts["frames"], counts["swapped"])

    run_on_ray(ray, _convert_remote_chunk, calls, on_frame, write_part,
               lambda task: f"{task.input_path} (chunk {task.chunk.index})")


def _without_signing(label: dict[str, Any]) -> dict[str, Any]:
    """The label without the user's signing key, which stays on this machine: the parts a worker
    writes are signed with the worker's own key and only the joined file carries the user's."""
    return {key: value for key, value in label.items() if key != "signing"}


def _convert_remote_chunk(kit: SwapKit, video: bytes, suffix: str, chunk: Chunk, info: VideoInfo,
                          size: tuple[int, int], options: ConvertOptions,
                          label: dict[str, Any], messages: Any) -> tuple[bytes, dict[str, int]]:
    """A Ray task: convert one chunk of a video handed over as bytes, putting a 1 on ``messages``
    per frame written; returns the part and its counts."""
    with tempfile.TemporaryDirectory(prefix="deepswap-chunk-") as folder:
        source = Path(folder) / f"input{suffix}"
        source.write_bytes(video)
        part = Path(folder) / "part.mp4"
        convert_chunk(source, chunk, part, kit.replacer(options.replace), info, size,
                      replace(options, workers=1, ray=None), label, lambda swapped: messages.put(1))
        return part.read_bytes(), part_counts(part)  # type: ignore[return-value]
