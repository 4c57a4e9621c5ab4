"""What `convert --eyelids follow` costs: frames/s of convert on GRID clips with blinks, with and without it.

    python benchmarks/eyelids.py [--workspace WS] [--clips 8] [--rounds 2]

Converts the package's s1 clips (every one has a blink) with ``--eyelids off`` and ``follow``,
the two arms alternated clip by clip and round by round so that both see the same load, and
prints each arm's frames/s and the slowdown. The landmark pass on the drawn face runs only on
frames where A's eyes close (``eyelids.CLOSING``); their share is printed too. ``--workspace``: a
trained workspace (e.g. quality.py's ``--workdir``); by default a `lite` model trained for one
iteration (speed does not depend on the weights). The target: no more than 10 % slower.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from convert import GRID, workspace_with_model  # noqa: E402  (the convert benchmark's 1-iteration workspace)

from deepswap.convert import Converter, ConvertOptions, ReplaceSettings  # noqa: E402
from deepswap.convert.eyelids import CLOSING  # noqa: E402
from deepswap.faces.expression import eye_ratios  # noqa: E402
from deepswap.video import read_frames  # noqa: E402

ARMS = ("off", "follow")


def closing_share(converter: Converter, clips: list[Path]) -> float:
    """The share of the clips' frames on which A's eyes close past ``CLOSING`` of A's usual openness."""
    usual = np.asarray(converter.eyelid_follower("a").usual_replaced)
    closing = []
    for clip in clips:
        for frame in read_frames(clip):
            faces = converter.analyzer.analyze(frame.image)
            if faces:
                closing.append(bool((eye_ratios(faces[0].landmarks) < CLOSING * usual).any()))
    return float(np.mean(closing))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, help="a trained workspace (default: a 1-iteration lite model)")
    parser.add_argument("--clips", type=int, default=8, help="s1 clips of the package to convert")
    parser.add_argument("--rounds", type=int, default=2, help="times each arm converts every clip")
    args = parser.parse_args()
    clips = sorted((GRID / "s1").glob("*.mp4"))[:args.clips]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        converter = Converter(args.workspace or workspace_with_model(folder, "lite", "cpu"))
        frames, seconds = dict.fromkeys(ARMS, 0), dict.fromkeys(ARMS, 0.0)
        for round_index in range(args.rounds):
            for clip in clips:
                for arm in ARMS if round_index % 2 == 0 else ARMS[::-1]:
                    options = ConvertOptions(replace=ReplaceSettings(eyelids=arm), force=True)
                    began = time.perf_counter()
                    report = converter.convert(clip, folder / f"{arm}.mp4", options)
                    seconds[arm] += time.perf_counter() - began
                    frames[arm] += report.frames
        print(f"{len(clips)} s1 clips × {args.rounds} rounds; A's eyes closing on "
              f"{closing_share(converter, clips):.0%} of the frames")
        fps = {arm: frames[arm] / seconds[arm] for arm in ARMS}
        for arm in ARMS:
            print(f"--eyelids {arm}: {frames[arm]} frames in {seconds[arm]:.1f} s = {fps[arm]:.1f} frames/s")
        print(f"follow is {1 - fps['follow'] / fps['off']:.1%} slower")


if __name__ == "__main__":
    main()
