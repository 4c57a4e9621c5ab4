"""Invisible watermark: a 48-bit payload (16-bit deepswap signature + 32-bit output id) in the luma.

Design (dither modulation on a frame-relative chip grid, placed by a just-noticeable-difference mask):

* The frame is divided into a grid of ``rows`` × ``cols`` cells ("chips"), ``cols`` following the
  aspect ratio, so the grid scales with the picture and survives resizing without any search. Two
  densities (:class:`ChipGrid`) serve most frames: the coarse grid (48 rows), whose large chips
  survive the most, and the fine grid (128 rows), used where the coarse one would carry too little —
  a small busy picture in a large, mostly flat frame (a small face on a plain wall) spans few coarse
  chips but many fine ones. Whole frames under 384 lines (``SMALL_FRAME_BELOW``) are marked on two
  other grids together (``JOINT``): halved by a scaler that blurs (swscale's bilinear, a 4-pixel
  tent) and re-encoded at crf 28, their coarse chips are 3 pixels across, and the blur's crosstalk
  between neighbouring chips and the encoder's loss leave too little of the mark. There it goes on a
  grid of 24 rows, whose 12-pixel chips keep their means through such a blur, and on a 48-row grid
  with a smaller lattice step (7 grey levels), so that both fit within the PSNR cap; each is
  embedded twice, correcting what the other moved. The 48-row grid moves its chips only
  ``CODED_REACH`` of the way: halved and re-encoded at crf 28 it carries little (z 3), and the room
  it leaves lets the 24-row grid read the id more clearly there (mean margin over the 11 shipped
  clips × 7 scalers 2.4 → 2.9), for 1–2 points of z at full size. The 24-row grid is placed where
  a half-size copy by that scaler measures it (``aimed_at_half_size``), carries the signature four
  times per run (the id's one convolutional codeword, 64 symbols, leaves more room than three Golay
  blocks' 72), and, like the 48-row one, deals its run's slots evenly (``interleaved``: signature
  slots spread along the run, id slots dealt to the id's code blocks in turn), where a keyed
  shuffle could leave one block mostly on flat picture. Both carry the id as one convolutional
  codeword (below). Marks made before are read as before: their id in three Golay blocks
  (``GOLAY_JOINT``), or their runs shuffled (``FIRST_JOINT``). A small frame that offers fewer
  than ``FINE_BELOW`` full-weight coarse chips (a
  small face on a plain wall: about 33 full-weight chips of the 24-row grid, too few for z 8 even
  read perfectly) is marked on one 48-row grid instead (``FEW_CHIPS``), aimed at half size, with
  the signature eight times per run: halved by swscale's bilinear and re-encoded at crf 23 it still
  reads z 8.4–9.7 where the pair read 3.5–4.8, at the cost of an id too weak to read. Other
  frames, and marks on a region (whose fewer chips the two would share), are marked on the coarse
  or the fine grid. The decoder reads every grid, and each pair of ``READ_TOGETHER`` also together.
* Every chip carries one bit and a keyed dither d in [0, 1). Each run of chips (raster order) holds
  every bit in a keyed order, so any sizeable region carries the whole payload. The 32 id bits go
  as three extended Golay codewords ([24, 12, 8], each decoded to the codeword its soft readings
  match best, which corrects what a bit-by-bit reading gets wrong) or, on the joint grids, as one
  tail-biting convolutional codeword (rate 1/2, constraint length 7, free distance 10: 64 symbols,
  decoded by maximum likelihood over its trellis), which decides the whole id on all its chips at
  once: with three blocks each decided alone, one block in three read weakly left the id
  unreadable after half size + crf 28 though every block was right. The 16 signature bits, which
  detection rests on, twice per run on the coarse grid and three to five times on the others, whose
  chips are fewer or noisier. The coarse grid's runs are dealt evenly too (``interleaved``). Its
  marks made before issue 35 (``FIRST_COARSE``: the 48 payload bits once each per run, the id
  uncoded, which left a quarter-size copy at crf 28 mostly without its id and named a wrong id on a
  face box) are read as before.
* What is measured per chip is its *residual*: the chip's mean luma minus the mean of its 8
  neighbours (exact area means with fractional pixel edges, so a resized frame measures the same).
* Embedding is informed quantisation (dither modulation): each chip's residual is moved to the
  nearest point of its bit's lattice ``step · (k + d + bit/2)`` (``STEP``, or the grid's own). The
  picture does not interfere with the reading (whatever the residual was, it ends on the lattice),
  so busy picture, which carries the mark, is no noise to it.
* Where the change goes is a JND mask computed from the picture: texture masking (the contrast of
  the fine detail around each point — the std of the high-passed luma — above a floor, so flat
  picture gets exactly nothing), eroded so that it does not bleed from an edge into a flat
  neighbour, times luminance masking (Chou & Li's visibility threshold: dark and bright areas hide
  more than mid-grey), times a veto at the frame's own pixel scale (``pixel_texture``: nothing
  where the local std of the pixels is within ``FLAT_STD``, which the chip-scale mask cannot see on
  enlarged footage). A chip's change is its amplitude times this gain map, so it follows the
  texture inside the chip; chips that a bounded amplitude cannot move far enough are moved part
  of the way. The embedder runs the decoder's own measurement on the marked picture (at analysis
  resolution) and corrects, a few times. No pixel changes by more than ``MAX_CHANGE`` grey
  levels, and the total change is capped at PSNR ≥ ``MIN_PSNR_DB``.
* The decoder reads each chip as a phasor ``exp(2πi · residual / step)``, weighted by its own
  estimate of the chip's texture gain (flat chips carry nothing and weigh nothing), and sums over
  frames, for each grid. A bit's soft value is the sum of ``Re(phasor · exp(-2πi d))`` over its chips.
* Detection correlates the known symbols (the signature bits, and on coded grids the 4 symbols of
  the last Golay block that its zero padding keeps 0): ``z = Σ Re(P · exp(-2πi (d + bit/2))) / sqrt(Σ |P|² / 2)``
  over the signature chips. Under "no watermark" the keyed dithers are uniform and independent of
  the picture, so each term is |P| cos(uniform), sub-Gaussian with variance proxy |P|²/2, and
  P(z > t) ≤ exp(-t²/2) for any picture. The scan over grids, candidate regions and grid widths is
  covered by a union bound (:func:`false_alarm_bound`). The joint grids are also scanned together:
  their scores and energies summed (a sum of the same terms), the id decoded from their soft values
  summed, each weighted by its grid's score per unit of energy in the window.
* The id is only reported when it is read clearly (``ID_MARGIN``): in the decoding window, each
  code block's chosen word must beat its runner-up (a Golay block's next-best codeword; for the
  convolutional code, for each id bit, the best codeword that reads it the other way; an uncoded
  id bit's other value) by at least ``ID_MARGIN`` times the std the noise gives that difference.
  The noise is measured across the lattice: a chip's phasor turned to its dither carries its bit on
  the real axis and only noise on the imaginary one, so the window's imaginary parts give the noise
  per unit of squared magnitude, or on the block's own chips where that is larger (the loss is
  uneven over a picture). A confirmed mark whose id falls short says "id unreadable" rather
  than a guess. Over 308 confirmed, attacked copies (half size by 7 scalers at crf 23 and 28,
  single frames of crf-28 re-encodes, two embedder variants) the 43 wrongly decoded ids had
  margins ≤ 0.76 (a first estimate of the noise, fitted on the signature chips alone, let one
  through at 1.17); ``ID_MARGIN`` is 1.2. The id is taken from whichever confirmed grid (or pair)
  reads it most clearly.

Visibility is measured by :func:`flat_area_visibility`: the std of the luma change over flat picture.
Marks made before this design (deepswap-watermark-v1, spread spectrum) are not read.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Union

import cv2
import numpy as np

from ..errors import DeepswapError

SIGNATURE = 0xD5E7
SIGNATURE_BITS = 16
ID_BITS = 32
GOLAY_GENERATOR = 0b110001110101  # x¹¹+x¹⁰+x⁶+x⁵+x⁴+x²+1: the cyclic [23, 12, 7] Golay code
GOLAY_LENGTH, GOLAY_MESSAGE = 24, 12  # extended by a parity bit: [24, 12, 8]
GOLAY_BLOCKS = -(-ID_BITS // GOLAY_MESSAGE)
CONV_MEMORY = 6  # the rate-1/2 convolutional code of constraint length 7 (NASA/CCSDS): free distance 10
CONV_GENERATORS = (0o133, 0o171)
CONV_STATES = 1 << CONV_MEMORY
PAYLOAD_BITS = SIGNATURE_BITS + ID_BITS
STEP = 11.0  # lattice spacing of a chip's residual, grey levels
MAX_AMPLITUDE = 7.0  # largest change in a chip, in units of its texture gain
ITERATIONS = 3
ANALYSIS_SCALE = 2  # analysis samples per chip side
HIGH_PASS_SIGMA = 1.0  # analysis samples: what counts as fine detail
TEXTURE_SIGMA = 1.5  # analysis samples: the window of the texture measure
TEXTURE_FLOOR = 1.0  # grey levels of detail contrast below which picture is flat (gain 0)
TEXTURE_SLOPE = 0.3  # gain per grey level of detail contrast above the floor
MAX_GAIN = 5.0  # before luminance masking
EDGE_EROSION = 3  # analysis samples the gain is kept back from flat picture
FULL_WEIGHT_GAIN = 1.0  # chips with at least this gain count fully in the decoder
FINE_BELOW = 200.0  # full-weight chips of the coarse grid below which a frame is marked on the fine grid
SMALL_FRAME_BELOW = 384  # lines: halved, such a frame has coarse chips under 4 pixels
JOINT_ROUNDS = 2  # each grid of a small frame is embedded twice, correcting what the other moved
CODED_REACH = 0.6  # how far the 48-row grid of small frames moves its chips: the rest of the room is the 24-row grid's
MAX_CHANGE = 8.0  # grey levels, any pixel
MIN_PSNR_DB = 40.5
Z_THRESHOLD = 8.0
ID_MARGIN = 1.2  # a code block's decoding margin, in its estimated noise std, below which the id is unreadable
MIN_WINDOW_ENERGY = 0.5  # signature energy a window must hold to be scored: one full-weight chip of one frame
FLAT_BLOCK = 16
FLAT_STD = 2.0
PIXEL_WINDOW = 9  # pixels: the window of the pixel-scale flatness measure
PIXEL_RAMP = 2.0  # grey levels of local std above FLAT_STD over which the pixel veto lifts
_KEY = b"deepswap-watermark-v2"
_WINDOW_FRACTIONS = (0.25, 0.375, 0.5, 0.625, 0.75, 1.0)
_WINDOW_STEPS = 8
_NEIGHBOURS = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], np.float32) / 8
_EROSION = np.ones((3, 3), np.uint8)

Box = tuple[float, float, float, float]
Region = Union[Box, np.ndarray, None]


@dataclass(frozen=True)
class ChipGrid:
    """One density of the frame-relative chip grid: ``rows`` rows of square-ish chips, each run of
    chips holding the signature bits ``signature_copies`` times and the id bits once. Frames are
    marked on it when its chips are at least ``embed_from`` pixels across and read when at least
    ``read_from`` (a halved frame); ``step`` is the spacing of its chips' lattice, grey levels. With
    ``aimed_at_half_size`` the embedder places its chips' residuals where a half-size copy made by
    the harshest common scaler (:func:`_bilinear_half`) measures them, not where the frame itself does;
    ``interleaved`` runs deal their slots evenly (:func:`_interleaved_symbols`), others by a keyed shuffle.
    A ``coded`` grid carries the id as Golay codewords, or as one convolutional codeword when also
    ``convolutional``. The embedder moves its chips ``reach`` of the way to their lattice points."""

    key: str
    rows: int
    signature_copies: int
    coded: bool
    embed_from: float
    read_from: float
    step: float = STEP
    aimed_at_half_size: bool = False
    interleaved: bool = False
    convolutional: bool = False
    reach: float = 1.0

    def shape(self, height: int, width: int) -> tuple[int, int]:
        """(rows, cols) of the grid on a frame of this size."""
        return self.rows, max(1, round(self.rows * width / height))

    @property
    def symbols(self) -> int:
        """Distinct bits carried: the signature, then the id (as Golay codewords when ``coded``, as
        one tail-biting convolutional codeword when ``convolutional``)."""
        if self.convolutional:
            return SIGNATURE_BITS + len(CONV_GENERATORS) * ID_BITS
        return SIGNATURE_BITS + (GOLAY_BLOCKS * GOLAY_LENGTH if self.coded else ID_BITS)

    @property
    def id_blocks(self) -> int:
        """Code blocks of the id, each decided on its own: the Golay blocks, or one for the
        convolutional code, whose one codeword spans the whole id."""
        return GOLAY_BLOCKS if self.coded and not self.convolutional else 1


COARSE = ChipGrid("coarse-coded:", 48, 2, True, 0.0, 0.0, interleaved=True)
FIRST_COARSE = ChipGrid("", 48, 1, False, 0.0, 0.0)  # read only: the first design's key, its id uncoded (before issue 35)
FINE = ChipGrid("fine:", 128, 5, True, 3.0, 1.5)
LARGE_CHIPS = ChipGrid("large-conv:", 24, 4, True, 0.0, 0.0, aimed_at_half_size=True, interleaved=True, convolutional=True)
CODED = ChipGrid("coded-conv:", 48, 5, True, 0.0, 0.0, 7.0, interleaved=True, convolutional=True, reach=CODED_REACH)
JOINT = (LARGE_CHIPS, CODED)  # embedded together on small frames
FEW_CHIPS = ChipGrid("few-chips:", 48, 8, True, 0.0, 0.0, aimed_at_half_size=True, interleaved=True)  # small, mostly flat frames
GOLAY_JOINT = (ChipGrid("large-3:", 24, 3, True, 0.0, 0.0, aimed_at_half_size=True, interleaved=True),
               ChipGrid("coded-2:", 48, 5, True, 0.0, 0.0, 7.0, interleaved=True))  # read only: small frames' marks of stop 38, the id in 3 Golay blocks
FIRST_JOINT = (ChipGrid("large:", 24, 4, True, 0.0, 0.0), ChipGrid("coded:", 48, 5, True, 0.0, 0.0, 7.0))  # read only: small frames' marks before issue 35
GRIDS = (COARSE, FINE, *JOINT, FEW_CHIPS, FIRST_COARSE, *GOLAY_JOINT, *FIRST_JOINT)
READ_TOGETHER = (JOINT, GOLAY_JOINT, FIRST_JOINT)  # each pair is also scanned together


def new_output_id() -> str:
    """A fresh random output id: 8 hex digits (32 bits), the id carried by metadata and watermark."""
    return secrets.token_hex(ID_BITS // 8)


def _payload(output_id: str) -> np.ndarray:
    try:
        value = int(output_id, 16)
    except ValueError:
        value = -1
    if len(output_id) != ID_BITS // 4 or value < 0:
        raise ValueError(f"output id must be {ID_BITS // 4} hex digits, not {output_id!r}")
    word = (SIGNATURE << ID_BITS) | value
    return np.array([(word >> (PAYLOAD_BITS - 1 - i)) & 1 for i in range(PAYLOAD_BITS)], np.uint8)


@lru_cache(maxsize=1)
def _golay_codewords() -> np.ndarray:
    """Row m: the extended Golay codeword (24 bits) of the 12-bit message m."""
    messages = np.arange(2**GOLAY_MESSAGE)
    words = np.zeros_like(messages)
    for shift in range(GOLAY_MESSAGE):
        words ^= np.where((messages >> shift) & 1, GOLAY_GENERATOR << shift, 0)
    bits = (words[:, None] >> np.arange(GOLAY_LENGTH - 1)) & 1
    return np.hstack([bits, bits.sum(axis=1, keepdims=True) % 2]).astype(np.uint8)


def _message_bits(bits: np.ndarray) -> np.ndarray:
    """The id bits padded with zeros to whole Golay messages, one message per row."""
    padding = np.zeros(GOLAY_BLOCKS * GOLAY_MESSAGE - len(bits), np.uint8)
    return np.concatenate([bits, padding]).reshape(GOLAY_BLOCKS, GOLAY_MESSAGE)


def _block_words(block: int) -> int:
    """How many messages a Golay block of the id can hold: its message bits past the id are the
    zero padding, so the last block (8 id bits) is one of 256 codewords, not 4096."""
    return 2 ** min(GOLAY_MESSAGE, ID_BITS - block * GOLAY_MESSAGE)


def _encode(grid: ChipGrid, payload: np.ndarray) -> np.ndarray:
    """The bits a grid's chips carry (``grid.symbols`` of them) for a 48-bit payload."""
    if not grid.coded:
        return payload
    if grid.convolutional:
        return np.concatenate([payload[:SIGNATURE_BITS], _convolutional_encode(payload[SIGNATURE_BITS:])])
    messages = _message_bits(payload[SIGNATURE_BITS:]) @ (1 << np.arange(GOLAY_MESSAGE))
    return np.concatenate([payload[:SIGNATURE_BITS], _golay_codewords()[messages].ravel()])


def _decode(grid: ChipGrid, soft: np.ndarray) -> np.ndarray:
    """The 48-bit payload from the symbols' soft values (positive: 0): each Golay block is decoded
    to the codeword that correlates best with it (maximum likelihood), among those its padding
    allows (:func:`_block_words`)."""
    hard = (soft < 0).astype(np.uint8)
    if not grid.coded:
        return hard
    signs = 1 - 2.0 * _golay_codewords()
    blocks = soft[SIGNATURE_BITS:].reshape(GOLAY_BLOCKS, GOLAY_LENGTH)
    messages = np.array([np.argmax(signs[:_block_words(k)] @ block) for k, block in enumerate(blocks)])
    id_bits = (messages[:, None] >> np.arange(GOLAY_MESSAGE)) & 1
    return np.concatenate([hard[:SIGNATURE_BITS], id_bits.ravel()[:ID_BITS]]).astype(np.uint8)


def _id_margin(grid: ChipGrid, soft: np.ndarray, variance: np.ndarray) -> float:
    """How clearly the id was decoded: the smallest margin over its code blocks between the decoded
    word and the runner-up, in the std the noise gives that difference (``variance``: per symbol, the
    noise variance of its soft value). An uncoded id's blocks are its bits; a Golay block's
    runner-up is the codeword that correlates next best."""
    soft, variance = soft[SIGNATURE_BITS:], variance[SIGNATURE_BITS:]
    if not grid.coded:
        return float(np.min(np.abs(soft[:ID_BITS]) / np.sqrt(np.maximum(variance[:ID_BITS], 1e-12))))
    signs = 1 - 2.0 * _golay_codewords()
    margins = []
    for k, (block, noise) in enumerate(zip(soft.reshape(GOLAY_BLOCKS, GOLAY_LENGTH),
                                           variance.reshape(GOLAY_BLOCKS, GOLAY_LENGTH))):
        correlation = signs[:_block_words(k)] @ block
        best, second = np.argpartition(-correlation, 1)[:2]
        differ = signs[best] != signs[second]
        spread = 2 * math.sqrt(max(float(noise[differ].sum()), 1e-12))
        margins.append((correlation[best] - correlation[second]) / spread)
    return float(min(margins))


def _read_id(grid: ChipGrid, soft: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, float]:
    """The 48-bit payload from the symbols' soft values and noise variances, and how clearly its id
    was read (:func:`_id_margin`, or the convolutional code's :func:`_convolutional_read`)."""
    if not grid.convolutional:
        return _decode(grid, soft), _id_margin(grid, soft, variance)
    id_bits, margin = _convolutional_read(soft[SIGNATURE_BITS:], variance[SIGNATURE_BITS:])
    return np.concatenate([(soft[:SIGNATURE_BITS] < 0), id_bits]).astype(np.uint8), margin


@lru_cache(maxsize=1)
def _trellis() -> tuple[np.ndarray, np.ndarray]:
    """The convolutional code's trellis: per input bit u and state s (the last ``CONV_MEMORY``
    inputs, the newest as the highest bit), the code bits sent ([u, s, generator]) and the next state ([u, s])."""
    register = (np.arange(2)[:, None] << CONV_MEMORY) | np.arange(CONV_STATES)
    taps = np.arange(CONV_MEMORY + 1)
    parities = [((register & generator)[..., None] >> taps & 1).sum(axis=-1) % 2 for generator in CONV_GENERATORS]
    sent = np.stack(parities, axis=-1)
    return sent.astype(np.uint8), register >> 1


def _convolutional_encode(id_bits: np.ndarray) -> np.ndarray:
    """The id's tail-biting codeword: the encoder starts in the state its last ``CONV_MEMORY`` bits
    leave it in, so it ends where it began and no tail is spent (2 code bits per id bit)."""
    sent, following = _trellis()
    state = sum(int(bit) << place for place, bit in enumerate(id_bits[-CONV_MEMORY:]))
    word = []
    for bit in id_bits:
        word.append(sent[bit, state])
        state = following[bit, state]
    return np.concatenate(word)


def _trellis_edges(backward: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each state x, the two branches that meet there (forward) or leave it (backward): the state
    at their other end, their input bit and their state at the earlier step; each array [branch, x]."""
    _, following = _trellis()
    states = np.arange(CONV_STATES)
    if backward:
        return following, np.repeat([[0], [1]], CONV_STATES, axis=1), np.stack([states, states])
    earlier = np.stack([(states << 1) & (CONV_STATES - 1), (states << 1) & (CONV_STATES - 1) | 1])
    return earlier, np.stack([states >> (CONV_MEMORY - 1)] * 2), earlier


def _best_paths(gain: np.ndarray, backward: bool) -> tuple[np.ndarray, np.ndarray]:
    """Viterbi over the tail-biting trellis from every possible end state at once: per step, end
    state (the first state forward, the last backward) and state, the best path metric there
    (``gain``: per step, input bit and state, the branch's metric), and which branch it took."""
    steps = gain.shape[0]
    other_end, bit, state = _trellis_edges(backward)
    metric = np.full((steps + 1, CONV_STATES, CONV_STATES), -np.inf)
    metric[steps if backward else 0][np.diag_indices(CONV_STATES)] = 0
    choice = np.zeros((steps, CONV_STATES, CONV_STATES), np.intp)
    for step in range(steps - 1, -1, -1) if backward else range(steps):
        before = metric[step + 1] if backward else metric[step]
        branches = np.stack([before[:, other_end[b]] + gain[step, bit[b], state[b]] for b in (0, 1)])
        choice[step] = branches.argmax(axis=0)
        metric[step if backward else step + 1] = branches.max(axis=0)
    return metric, choice


def _along_best_paths(cost: np.ndarray, choice: np.ndarray, backward: bool) -> np.ndarray:
    """``cost`` (per step, input bit and state) summed along the paths :func:`_best_paths` chose."""
    steps = cost.shape[0]
    other_end, bit, state = _trellis_edges(backward)
    states = np.arange(CONV_STATES)
    total = np.zeros((steps + 1, CONV_STATES, CONV_STATES))
    for step in range(steps - 1, -1, -1) if backward else range(steps):
        before = total[step + 1] if backward else total[step]
        taken = choice[step]
        total[step if backward else step + 1] = (np.take_along_axis(before, other_end[taken, states], axis=1)
                                                 + cost[step, bit[taken, states], state[taken, states]])
    return total


def _convolutional_read(soft: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, float]:
    """The id bits of the codeword whose symbols correlate best with ``soft`` (maximum likelihood
    over the tail-biting trellis: forward and backward Viterbi from every start state), and the
    margin: for each id bit, the best codeword that reads it the other way falls short of the chosen
    one by a correlation difference whose noise std comes from ``variance`` on the symbols where the
    two differ; the smallest such difference in its std. One weak stretch of the picture does not
    decide the id alone: a rival codeword differs in at least 10 symbols, spread over the chips."""
    sent, following = _trellis()
    outputs = len(CONV_GENERATORS)
    steps = len(soft) // outputs
    gain = np.einsum("usk,tk->tus", 1 - 2.0 * sent, soft.reshape(steps, outputs))
    forward, forward_choice = _best_paths(gain, backward=False)
    backward, backward_choice = _best_paths(gain, backward=True)
    through = forward[:-1, None] + gain[:, :, None, :] + np.moveaxis(backward[1:][:, :, following], 2, 1)
    best = through.reshape(steps, 2, -1).max(axis=-1)
    bits = np.argmax(best, axis=1)
    word = _convolutional_encode(bits).reshape(steps, 1, 1, outputs)
    cost = ((sent[None] != word) * variance.reshape(steps, 1, 1, outputs)).sum(axis=-1)
    ahead = _along_best_paths(cost, forward_choice, backward=False)
    behind = _along_best_paths(cost, backward_choice, backward=True)
    every, other = np.arange(steps), 1 - bits
    start, state = np.unravel_index(through[every, other].reshape(steps, -1).argmax(axis=1), (CONV_STATES, CONV_STATES))
    differ = ahead[every, start, state] + cost[every, other, state] + behind[every + 1, start, following[other, state]]
    margins = (best[every, bits] - best[every, other]) / (2 * np.sqrt(np.maximum(differ, 1e-12)))
    return bits.astype(np.uint8), float(margins.min())


_SIGNATURE_SIGNS = 1 - 2.0 * _payload("0" * (ID_BITS // 4))[:SIGNATURE_BITS]


@lru_cache(maxsize=16)
def _known_signs(grid: ChipGrid) -> np.ndarray:
    """Per symbol of the grid: the sign its reading has whatever the id, 0 where it depends on the
    id. Known are the signature's symbols and, on coded grids, the 4 symbols of the last Golay block
    that its zero padding keeps 0 in every codeword (its messages have degree < 8, so its cyclic
    part has no terms x¹⁹…x²²): detection scores them with the signature."""
    signs = np.zeros(grid.symbols, np.float32)
    signs[:SIGNATURE_BITS] = _SIGNATURE_SIGNS
    if grid.coded and not grid.convolutional:
        last = GOLAY_BLOCKS - 1
        always_zero = _golay_codewords()[:_block_words(last)].max(axis=0) == 0
        signs[SIGNATURE_BITS + last * GOLAY_LENGTH:][always_zero] = 1.0
    return signs


def _output_id(bits: np.ndarray) -> str:
    value = 0
    for bit in bits[SIGNATURE_BITS:]:
        value = (value << 1) | int(bit)
    return f"{value:0{ID_BITS // 4}x}"


def _key_stream(name: str, count: int) -> np.ndarray:
    """``count`` keyed pseudo-random uint32 (SHA-256 in counter mode: identical on every platform)."""
    blocks = -(-count // 8)
    data = b"".join(hashlib.sha256(_KEY + f":{name}:{i}".encode()).digest() for i in range(blocks))
    return np.frombuffer(data, dtype="<u4")[:count]


@lru_cache(maxsize=32)
def _layout(grid: ChipGrid, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Per chip: which payload bit it carries, and its keyed dither (uniform in [0, 1))."""
    count, signature_chips = grid.rows * cols, grid.signature_copies * SIGNATURE_BITS
    run = signature_chips + grid.symbols - SIGNATURE_BITS
    padded = -(-count // run) * run
    order = _key_stream(grid.key + "order", padded).reshape(-1, run)
    if grid.interleaved:
        bit_of_chip = _interleaved_symbols(order, signature_chips, grid.id_blocks).ravel()[:count]
    else:
        rank = np.argsort(np.argsort(order, axis=1), axis=1).ravel()[:count]
        bit_of_chip = np.where(rank < signature_chips, rank % SIGNATURE_BITS, rank - signature_chips + SIGNATURE_BITS)
    dither = _key_stream(grid.key + "dither", count) / 2.0**32
    return bit_of_chip.reshape(grid.rows, cols), dither.reshape(grid.rows, cols)


def _interleaved_symbols(order: np.ndarray, signature_chips: int, blocks: int) -> np.ndarray:
    """Per chip of each run (a row of ``order``, keyed values): its symbol, the signature's slots
    spread evenly along the run and the id's slots dealt to its ``blocks`` code blocks in turn, so that no
    block of the id, and not the signature, falls mostly on flat picture (one block of a keyed
    shuffle of 24-row runs held 30 % less texture than another on a GRID frame); which symbol of
    its kind a slot carries is keyed."""
    run = order.shape[1]
    slot = np.arange(run)
    signature_slots = (slot + 1) * signature_chips // run > slot * signature_chips // run
    kinds = np.where(signature_slots, -1, np.cumsum(~signature_slots) % blocks)
    block_length = (~signature_slots).sum() // blocks
    symbols = np.empty(order.shape, np.intp)
    for kind in range(-1, blocks):
        where = kinds == kind
        rank = np.argsort(np.argsort(order[:, where], axis=1), axis=1)
        symbols[:, where] = rank % SIGNATURE_BITS if kind < 0 else SIGNATURE_BITS + kind * block_length + rank
    return symbols


def _luma(image: np.ndarray) -> np.ndarray:
    """Grey (uint8 or float) view of an RGB or grey frame."""
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _integral(picture: np.ndarray) -> np.ndarray:
    return cv2.integral(picture, sdepth=cv2.CV_64F)


def _area_means(integral: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Mean of the picture over each cell of a rows × cols grid with fractional pixel edges, read
    bilinearly from its integral image (exact for pixels taken as uniform squares)."""
    height, width = integral.shape[0] - 1, integral.shape[1] - 1

    def edges(size: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        position = np.arange(count + 1) * (size / count)
        index = np.minimum(position.astype(np.intp), size - 1)
        return index, position - index

    ys, y_fraction = edges(height, rows)
    xs, x_fraction = edges(width, cols)
    along_y = integral[ys] * (1 - y_fraction)[:, None] + integral[ys + 1] * y_fraction[:, None]
    corners = along_y[:, xs] * (1 - x_fraction) + along_y[:, xs + 1] * x_fraction
    sums = corners[1:, 1:] - corners[:-1, 1:] - corners[1:, :-1] + corners[:-1, :-1]
    return (sums * (rows * cols / (height * width))).astype(np.float32)


def _block_means(values: np.ndarray) -> np.ndarray:
    """Per chip, the mean of its ANALYSIS_SCALE × ANALYSIS_SCALE analysis samples."""
    rows, cols = values.shape[0] // ANALYSIS_SCALE, values.shape[1] // ANALYSIS_SCALE
    return cv2.resize(values, (cols, rows), interpolation=cv2.INTER_AREA)


def _residual(chip_means: np.ndarray) -> np.ndarray:
    return chip_means - cv2.filter2D(chip_means, -1, _NEIGHBOURS, borderType=cv2.BORDER_REFLECT)


def texture_gain(small: np.ndarray) -> np.ndarray:
    """The JND mask on an analysis image (luma area means, ANALYSIS_SCALE samples per chip side):
    how much change each point hides, in units of a chip's amplitude. 0 on flat picture."""
    background = cv2.GaussianBlur(small, (0, 0), TEXTURE_SIGMA)
    detail = small - cv2.GaussianBlur(small, (0, 0), HIGH_PASS_SIGMA)
    contrast = np.sqrt(cv2.GaussianBlur(detail * detail, (0, 0), TEXTURE_SIGMA))
    texture = np.clip((contrast - TEXTURE_FLOOR) * TEXTURE_SLOPE, 0, MAX_GAIN)
    return cv2.erode(texture, _EROSION, iterations=EDGE_EROSION) * _luminance_masking(background)


def pixel_texture(luma: np.ndarray) -> np.ndarray:
    """The JND mask's veto at the frame's own pixel scale, 0..1: 0 where the local std of the luma
    (a ``PIXEL_WINDOW`` window, kept back from flat picture by as much again) is at most
    ``FLAT_STD``, rising to 1 over ``PIXEL_RAMP`` grey levels. The chip-scale texture gain cannot
    see this on enlarged footage, where one analysis sample spans many smooth pixels. Frames of
    720 lines and more are measured on 2×2 (3×3, …) pixel means, which only makes the veto stricter;
    the veto is returned at that resolution."""
    height, width = luma.shape
    step = max(1, min(height, width) // 360)
    small = luma if step == 1 else cv2.resize(luma, (width // step, height // step), interpolation=cv2.INTER_AREA)
    side = max(3, PIXEL_WINDOW // step | 1)
    window = (side, side)
    mean = cv2.boxFilter(small, cv2.CV_32F, window)
    variance = cv2.sqrBoxFilter(small, cv2.CV_32F, window) - cv2.multiply(mean, mean)
    std = cv2.erode(cv2.sqrt(cv2.max(variance, 0.0)), cv2.getStructuringElement(cv2.MORPH_RECT, window))
    return cv2.min(cv2.max((std - FLAT_STD) * (1 / PIXEL_RAMP), 0.0), 1.0)


def _luminance_masking(background: np.ndarray) -> np.ndarray:
    """Chou & Li's visibility threshold at each background luminance, relative to its minimum (at 127)."""
    dark = 17 * (1 - np.sqrt(np.clip(background, 0, 127) / 127)) + 3
    bright = 3 / 128 * np.maximum(background - 127, 0) + 3
    return np.where(background < 127, dark, bright) / 3


@dataclass(frozen=True)
class _Analysis:
    """What embedder and decoder both measure in a frame: per chip, the residual (grey levels) and
    the texture gain; and the gain map at analysis resolution."""

    residual: np.ndarray
    chip_gain: np.ndarray
    gain: np.ndarray

    @property
    def weight(self) -> np.ndarray:
        """How much each chip counts in the decoder."""
        return _chip_weight(self.chip_gain)


def _chip_weight(chip_gain: np.ndarray) -> np.ndarray:
    """How much a chip counts: as much as the mark it can carry, up to 1 (a full-weight chip)."""
    return np.clip(chip_gain / FULL_WEIGHT_GAIN, 0, 1)


def _analysis_image(integral: np.ndarray, rows: int, cols: int) -> np.ndarray:
    return _area_means(integral, rows * ANALYSIS_SCALE, cols * ANALYSIS_SCALE)


def _analyse(small: np.ndarray) -> _Analysis:
    gain = texture_gain(small)
    return _Analysis(_residual(_block_means(small)), _block_means(gain), gain)


def _chip_residual(picture: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Per chip of a rows × cols grid, the residual the decoder measures in a picture."""
    return _residual(_block_means(_analysis_image(_integral(picture), rows, cols)))


_HALVING_BLUR = np.array([0.25, 0.5, 0.25], np.float32)


def _bilinear_half(picture: np.ndarray) -> np.ndarray:
    """A picture halved the way swscale's default (bilinear) scaler halves it: a 4-pixel tent
    ([1, 3, 3, 1] / 8, which mixes each chip with its neighbours), as a [1, 2, 1] / 4 blur then
    2 × 2 means."""
    blurred = cv2.sepFilter2D(picture.astype(np.float32), -1, _HALVING_BLUR, _HALVING_BLUR, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(blurred, (picture.shape[1] // 2, picture.shape[0] // 2), interpolation=cv2.INTER_AREA)


def _spread(chip_values: np.ndarray) -> np.ndarray:
    """Chip values as a picture at analysis resolution (each chip's samples carry its value)."""
    rows, cols = chip_values.shape
    size = (cols * ANALYSIS_SCALE, rows * ANALYSIS_SCALE)
    return cv2.resize(chip_values.astype(np.float32), size, interpolation=cv2.INTER_NEAREST)


def _to_frame(small: np.ndarray, height: int, width: int) -> np.ndarray:
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


@lru_cache(maxsize=8)
def _round_trip(height: int, width: int, rows: int, cols: int) -> np.ndarray:
    """How a change made at analysis resolution reads back after upsampling to the frame and area
    means (3×3 kernel)."""
    shape = (rows * ANALYSIS_SCALE, cols * ANALYSIS_SCALE)
    impulse = np.zeros(shape, np.float32)
    impulse[shape[0] // 2, shape[1] // 2] = 1
    back = _analysis_image(_integral(_to_frame(impulse, height, width)), rows, cols)
    return back[shape[0] // 2 - 1: shape[0] // 2 + 2, shape[1] // 2 - 1: shape[1] // 2 + 2].copy()


@lru_cache(maxsize=8)
def _own_response(height: int, width: int, rows: int, cols: int) -> float:
    """How far a chip's residual moves per unit of its amplitude (on a uniform gain of 1)."""
    impulse = np.zeros((rows, cols), np.float32)
    impulse[rows // 2, cols // 2] = 1
    pattern = _to_frame(_spread(impulse), height, width)
    residual = _residual(_block_means(_analysis_image(_integral(pattern), rows, cols)))
    return max(float(residual[rows // 2, cols // 2]), 0.05)


@dataclass(frozen=True)
class _Area:
    """Where a frame is marked: chip mask, bounding box, and pixel weights inside it (None = all 1)."""

    chips: np.ndarray
    rows: slice
    cols: slice
    weight: np.ndarray | None

    @property
    def pixels(self) -> float:
        if self.weight is not None:
            return float(self.weight.sum())
        return float((self.rows.stop - self.rows.start) * (self.cols.stop - self.cols.start))


def _area(region: Region, height: int, width: int, rows: int, cols: int) -> _Area:
    if region is None:
        return _Area(np.ones((rows, cols), np.float32), slice(0, height), slice(0, width), None)
    if isinstance(region, np.ndarray):
        if region.shape[:2] != (height, width):
            raise ValueError(f"region mask is {region.shape[:2]}, frame is {(height, width)}")
        weight = region.astype(np.float32) / (255.0 if region.dtype == np.uint8 else 1.0)
        ys, xs = np.nonzero(weight > 0)
        if len(ys) == 0:
            return _Area(np.zeros((rows, cols), np.float32), slice(0, 0), slice(0, 0), None)
        box_rows, box_cols = slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)
        chips = (_area_means(_integral(weight), rows, cols) > 0.5).astype(np.float32)
        return _Area(chips, box_rows, box_cols, weight[box_rows, box_cols])
    x0, y0, x1, y1 = (int(round(v)) for v in region)
    x0, x1 = max(0, min(x0, x1, width)), min(width, max(x0, x1, 0))
    y0, y1 = max(0, min(y0, y1, height)), min(height, max(y0, y1, 0))
    chips = np.outer(_coverage(y0, y1, height, rows), _coverage(x0, x1, width, cols)) > 0.5
    return _Area(chips.astype(np.float32), slice(y0, y1), slice(x0, x1), None)


def _coverage(start: int, stop: int, size: int, count: int) -> np.ndarray:
    """Fraction of each of ``count`` chip spans (edges as in ``_area_means``) inside [start, stop)."""
    edges = np.arange(count + 1) * (size / count)
    overlap = np.clip(np.minimum(edges[1:], stop) - np.maximum(edges[:-1], start), 0, None)
    return overlap / np.diff(edges)


@dataclass(frozen=True)
class _Host:
    """A frame as the embedder sees it on one grid: the decoder's own analysis, the gain the mark
    may use per chip (the JND mask with the pixel veto), and the chips of the area to mark."""

    grid: ChipGrid
    analysis: _Analysis
    gain: np.ndarray
    chip_gain: np.ndarray
    area: _Area

    @property
    def capacity(self) -> float:
        """Full-weight chips the area offers."""
        return float((self.area.chips * _chip_weight(self.chip_gain)).sum())


def _host(grid: ChipGrid, luma: np.ndarray, veto: np.ndarray, region: Region) -> _Host:
    height, width = luma.shape
    rows, cols = grid.shape(height, width)
    analysis = _analyse(_analysis_image(_integral(luma), rows, cols))
    gain = analysis.gain * cv2.resize(veto, analysis.gain.shape[::-1], interpolation=cv2.INTER_AREA)
    return _Host(grid, analysis, gain, _block_means(gain), _area(region, height, width, rows, cols))


def _grids_to_mark(coarse: _Host, height: int, region: Region) -> list[ChipGrid]:
    """The grids a frame is marked on, in order (:meth:`Watermarker.embed`), from its host on the coarse grid."""
    few_chips = coarse.capacity < FINE_BELOW
    if few_chips and height >= FINE.embed_from * FINE.rows:
        return [FINE]
    if height >= SMALL_FRAME_BELOW or region is not None:
        return [COARSE]
    return [FEW_CHIPS] if few_chips else list(JOINT) * JOINT_ROUNDS


class Watermarker:
    """Embeds the watermark for one output id into frames (every frame of that output)."""

    def __init__(self, output_id: str) -> None:
        self.output_id = output_id
        self.bits = _payload(output_id)
        self._symbols = {grid: _encode(grid, self.bits) for grid in GRIDS}

    def chip_amplitudes(self, host: _Host, residual: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
        """Per chip, the amplitude (in units of the gain map) that moves its ``residual`` onto the
        nearest lattice point of its bit, within ±MAX_AMPLITUDE; found by reading back the change
        the way the decoder does; then scaled by the grid's ``reach``."""
        rows, cols = residual.shape
        bit_of_chip, dither = _layout(host.grid, cols)
        offset = dither + 0.5 * self._symbols[host.grid][bit_of_chip]
        step = host.grid.step
        wanted = step * (np.round(residual / step - offset) + offset) - residual
        usable = host.area.chips * (host.chip_gain > 0)
        per_unit = _own_response(*frame_size, rows, cols) * np.maximum(host.chip_gain, 1e-3)
        round_trip = _round_trip(*frame_size, rows, cols)
        amplitude = np.zeros((rows, cols), np.float32)
        moved = np.zeros((rows, cols), np.float32)
        for _ in range(ITERATIONS):
            amplitude = np.clip(amplitude + usable * (wanted - moved) / per_unit, -MAX_AMPLITUDE, MAX_AMPLITUDE)
            change = cv2.filter2D(_spread(amplitude) * host.gain, -1, round_trip, borderType=cv2.BORDER_REFLECT)
            moved = _residual(_block_means(change))
        return amplitude * host.grid.reach

    def embed(self, frame_rgb: np.ndarray, region: Region = None) -> np.ndarray:
        """Watermark an RGB uint8 frame in place (and return it); ``region``: box (x0, y0, x1, y1),
        an H×W mask (0..1 float or 0..255 uint8) or None for the whole frame. The frame is marked on
        the coarse grid, or on the fine one when the area offers fewer than ``FINE_BELOW`` full-weight
        chips of the coarse grid and the frame is tall enough for fine chips; whole frames under
        ``SMALL_FRAME_BELOW`` lines carry the grids of ``JOINT``, or ``FEW_CHIPS`` where they offer
        fewer than ``FINE_BELOW``."""
        if frame_rgb.dtype != np.uint8 or frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3:
            raise ValueError("embed expects an H×W×3 uint8 RGB frame")
        height, width = frame_rgb.shape[:2]
        luma = _luma(frame_rgb)
        veto = pixel_texture(luma)
        host = _host(COARSE, luma, veto, region)
        area = host.area
        if area.pixels == 0:
            return frame_rgb
        grids = _grids_to_mark(host, height, region)
        made = {grid: host if grid is COARSE else _host(grid, luma, veto, region) for grid in set(grids)}
        hosts = [made[grid] for grid in grids]
        marked = luma.astype(np.float32)
        for index, each in enumerate(hosts):
            chips = each.analysis.residual.shape
            if each.grid.aimed_at_half_size:
                residual = _chip_residual(_bilinear_half(marked), *chips)
            else:
                residual = each.analysis.residual if index == 0 else _chip_residual(marked, *chips)
            amplitude = self.chip_amplitudes(each, residual, (height, width))
            marks = _spread(amplitude) * each.analysis.gain
            marks = cv2.resize(marks, veto.shape[::-1], interpolation=cv2.INTER_LINEAR) * veto
            change = _to_frame(marks, height, width)[area.rows, area.cols]
            if area.weight is not None:
                change *= area.weight
            marked[area.rows, area.cols] += change
        pattern = marked[area.rows, area.cols] - luma[area.rows, area.cols]
        np.clip(pattern, -MAX_CHANGE, MAX_CHANGE, out=pattern)
        rms = math.sqrt(cv2.norm(pattern, cv2.NORM_L2SQR) / area.pixels)
        limit = 255.0 / 10 ** (MIN_PSNR_DB / 20)
        if rms > limit:
            pattern *= limit / rms
        target = frame_rgb[area.rows, area.cols]
        change = cv2.merge([pattern, pattern, pattern])
        if target.flags.c_contiguous:
            cv2.add(target, change, dst=target, dtype=cv2.CV_8U)
        else:
            target[:] = cv2.add(target, change, dtype=cv2.CV_8U)
        return frame_rgb


def _float_luma(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, np.float64)
    return image if image.ndim == 2 else image @ np.array([0.299, 0.587, 0.114])


def flat_area_visibility(original: np.ndarray, marked: np.ndarray, block: int = FLAT_BLOCK,
                         flatness: float = FLAT_STD) -> float | None:
    """How much the watermark shows on flat picture: the standard deviation (grey levels) of the
    luma change from ``original`` to ``marked`` (RGB or grey, same size) over the ``block`` ×
    ``block`` pixel blocks of the original whose luma std is at most ``flatness`` (sky, walls, a
    blue screen; a perfectly flat frame is all flat). None when the original has no flat block."""
    before, after = _float_luma(original), _float_luma(marked)
    if before.shape != after.shape:
        raise ValueError(f"marked frame is {after.shape}, original is {before.shape}")
    rows, cols = before.shape[0] // block, before.shape[1] // block

    def blocks(values: np.ndarray) -> np.ndarray:
        return values[:rows * block, :cols * block].reshape(rows, block, cols, block).swapaxes(1, 2)

    flat = blocks(before).std(axis=(2, 3)) <= flatness
    if not flat.any():
        return None
    return float(blocks(after - before)[flat].std())


@dataclass(frozen=True)
class WatermarkResult:
    """What the detector found. ``confidence`` is the signature z-score (≈ N(0, 1) without a mark).
    ``id_confidence``: the id's smallest code-block margin in noise std (:func:`_id_margin`);
    ``output_id`` is None when the mark is not found, and also when it is found but its id is not
    read clearly (``id_confidence`` under ``ID_MARGIN``): an unreadable id, never a guessed one."""

    found: bool
    confidence: float
    output_id: str | None
    bits: np.ndarray
    frames: int
    region: tuple[float, float, float, float]
    id_confidence: float = 0.0

    @property
    def false_alarm_bound(self) -> float:
        """Upper bound on the chance an unmarked input scores this high (union over the scan)."""
        return false_alarm_bound(self.confidence)


def _window_count() -> int:
    positions = sum(
        (_WINDOW_STEPS - round(h * _WINDOW_STEPS) + 1) * (_WINDOW_STEPS - round(w * _WINDOW_STEPS) + 1)
        for h in _WINDOW_FRACTIONS for w in _WINDOW_FRACTIONS)
    return 3 * (len(GRIDS) + len(READ_TOGETHER)) * positions


def false_alarm_bound(z: float) -> float:
    """P(max z ≥ z | no watermark) ≤ windows × exp(-z²/2) (sub-Gaussian sums of uniformly dithered phases)."""
    return min(1.0, _window_count() * math.exp(-z * z / 2))


class WatermarkDetector:
    """Accumulates chip readings over frames (any number, any order) and decodes the payload."""

    def __init__(self) -> None:
        self._sums: dict[tuple[ChipGrid, int], np.ndarray] = {}
        self.frames = 0
        self._shape: tuple[int, int] | None = None
        self._integral: np.ndarray | None = None  # reused frame to frame: one large buffer, not one per frame

    def add(self, image: np.ndarray) -> None:
        """Add one frame (RGB or grey, any size; all frames of one input share a size)."""
        shape = image.shape[:2]
        if self._shape is None:
            self._shape = shape
        elif shape != self._shape:
            raise ValueError("all frames given to one detector must have the same size")
        integral = self._integral = cv2.integral(_luma(image), self._integral, sdepth=cv2.CV_64F)
        for grid in GRIDS:
            if shape[0] < grid.read_from * grid.rows:
                continue
            rows, cols = grid.shape(*shape)
            nominal = _analyse(_analysis_image(integral, rows, cols))
            for candidate in (cols - 1, cols, cols + 1):
                if candidate == cols:
                    residual, weight = nominal.residual, nominal.weight
                elif candidate >= 1:
                    residual = _residual(_area_means(integral, rows, candidate))
                    weight = cv2.resize(nominal.weight, (candidate, rows), interpolation=cv2.INTER_LINEAR)
                else:
                    continue
                total = self._sums.setdefault((grid, candidate), np.zeros(residual.shape, np.complex64))
                angle = residual * np.float32(2 * np.pi / grid.step)
                total.real += weight * np.cos(angle)
                total.imag += weight * np.sin(angle)
        self.frames += 1

    def result(self) -> WatermarkResult:
        """Best-scoring grid (or pair of grids read together), grid width and region; ``found``
        when z clears ``Z_THRESHOLD``."""
        if not self._sums:
            return WatermarkResult(False, 0.0, None, np.zeros(PAYLOAD_BITS, np.uint8), 0, (0, 0, 1, 1))
        scans = [(*_scan(candidate), candidate) for candidate in self._candidates()]
        z, (y0, x0, y1, x1), _ = best = max(scans, key=lambda scan: scan[0])
        found = z >= Z_THRESHOLD
        # the id is read from whichever confirmed grid (or pair) reads it most clearly; only those are decoded
        confirmed = [scan for scan in scans if scan[0] >= Z_THRESHOLD] or [best]
        bits, margin = max((_read_payload(readings, box) for _, box, readings in confirmed), key=lambda read: read[1])
        output_id = _output_id(bits) if found and margin >= ID_MARGIN else None
        region = (x0 / _WINDOW_STEPS, y0 / _WINDOW_STEPS, x1 / _WINDOW_STEPS, y1 / _WINDOW_STEPS)
        return WatermarkResult(found, z, output_id, bits, self.frames, region, margin)

    def id_decisions(self) -> list[IdDecision]:
        """Every id the reader could decide, confirmed or not: one per grid (or pair read together)
        and grid width, with its best window's z and its margin. For calibrating ``ID_MARGIN`` on
        copies whose id is known; :meth:`result` decodes only the confirmed ones."""
        decisions = []
        for readings in self._candidates():
            z, box = _scan(readings)
            bits, margin = _read_payload(readings, box)
            keys = "+".join(reading.grid.key for reading in readings)
            decisions.append(IdDecision(keys, z, _output_id(bits), margin))
        return decisions

    def _candidates(self) -> list[list[_Reading]]:
        """What is scanned: each grid at each width read, and the pairs of ``READ_TOGETHER``."""
        readings = {key: _Reading.of(key[0], total) for key, total in self._sums.items()}
        candidates = [[reading] for reading in readings.values()]
        for grids in READ_TOGETHER:
            for width_offset in (-1, 0, 1):
                pair = [readings.get((grid, grid.shape(*self._shape)[1] + width_offset)) for grid in grids]
                if all(pair):
                    candidates.append(pair)
        return candidates


@dataclass(frozen=True)
class IdDecision:
    """One id decided by :meth:`WatermarkDetector.id_decisions`: the grid keys read, the best
    window's signature z, the id decoded there and its margin in noise std."""

    grids: str
    confidence: float
    output_id: str
    margin: float


@dataclass(frozen=True)
class _Reading:
    """One grid's accumulated phasors, aligned to its dithers: summed-area tables of the signature
    score and energy, for the scan's windows."""

    grid: ChipGrid
    bit_of_chip: np.ndarray
    aligned: np.ndarray
    quadrature: np.ndarray
    magnitude: np.ndarray
    score: np.ndarray
    energy: np.ndarray

    @classmethod
    def of(cls, grid: ChipGrid, total: np.ndarray) -> _Reading:
        bit_of_chip, dither = _layout(grid, total.shape[1])
        rotated = total * np.exp(-2j * np.pi * dither)
        aligned, magnitude = rotated.real, np.abs(total)
        known = _known_signs(grid)[bit_of_chip]
        score = _table(known * aligned)
        energy = _table((known != 0) * magnitude ** 2 / 2)
        return cls(grid, bit_of_chip, aligned, rotated.imag, magnitude, score, energy)

    def edges(self, steps: np.ndarray, axis: int) -> np.ndarray:
        """Chip index of each window edge given in 1/``_WINDOW_STEPS`` of the frame."""
        return steps * self.aligned.shape[axis] // _WINDOW_STEPS

    def window_sums(self, top: np.ndarray, left: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Signature score and energy of every window of ``height`` × ``width`` steps (top × left)."""
        t, b = self.edges(top, 0)[:, None], self.edges(top + height, 0)[:, None]
        l, r = self.edges(left, 1)[None], self.edges(left + width, 1)[None]
        return _box_sum(self.score, t, b, l, r), _box_sum(self.energy, t, b, l, r)

    def reliability(self, box: tuple[int, int, int, int]) -> float:
        """How much this grid's readings say inside a window: its signature score per unit of energy
        (never 0, so that a single reading still decodes)."""
        y0, x0, y1, x1 = box
        score, energy = self.window_sums(np.array([y0]), np.array([x0]), y1 - y0, x1 - x0)
        return max(float(score[0, 0] / max(energy[0, 0], 1e-12)), 1e-6)

    def soft(self, box: tuple[int, int, int, int]) -> np.ndarray:
        """Per symbol, the sum of its chips' aligned readings inside a window (top, left, bottom, right in steps)."""
        bits, values, _ = self._inside(box)
        return np.bincount(bits, weights=values, minlength=self.grid.symbols)

    def noise(self, box: tuple[int, int, int, int]) -> np.ndarray:
        """Per symbol, the noise variance of its soft value inside a window: a chip's phasor, turned
        to its lattice, carries its bit along the real axis and only noise across it, so the window's
        quadrature readings (any bit) give the noise per unit of squared magnitude, and a symbol's
        variance is that times its chips' squared magnitudes. On a coded grid each code block's own
        chips are measured too and the larger figure kept: the loss is not spread evenly over the
        picture, and a block whose chips lost more must not be judged by the window's average."""
        bits, _, magnitude = self._inside(box)
        y0, x0, y1, x1 = (self.edges(np.array(edge), axis) for edge, axis in zip(box, (0, 1, 0, 1)))
        across = self.quadrature[y0:y1, x0:x1].ravel()
        power = np.bincount(bits, weights=magnitude * magnitude, minlength=self.grid.symbols)
        spread = np.bincount(bits, weights=across * across, minlength=self.grid.symbols)
        per_unit = np.full(self.grid.symbols, spread.sum() / max(power.sum(), 1e-12))
        if self.grid.coded:
            blocks = per_unit[SIGNATURE_BITS:].reshape(self.grid.id_blocks, -1)
            own = spread[SIGNATURE_BITS:].reshape(blocks.shape).sum(1) / np.maximum(power[SIGNATURE_BITS:].reshape(blocks.shape).sum(1), 1e-12)
            np.maximum(blocks, own[:, None], out=blocks)
        return per_unit * power

    def _inside(self, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y0, x0, y1, x1 = (self.edges(np.array(edge), axis) for edge, axis in zip(box, (0, 1, 0, 1)))
        window = (slice(y0, y1), slice(x0, x1))
        return self.bit_of_chip[window].ravel(), self.aligned[window].ravel(), self.magnitude[window].ravel()


def _scan(readings: list[_Reading]) -> tuple[float, tuple[int, int, int, int]]:
    """Max signature z over windows of the frame, the readings' scores and energies summed (one
    grid, or grids that carry the same symbols), and its window (top, left, bottom, right in steps)."""
    best = (-np.inf, (0, 0, _WINDOW_STEPS, _WINDOW_STEPS))
    for fh in _WINDOW_FRACTIONS:
        for fw in _WINDOW_FRACTIONS:
            h, w = round(fh * _WINDOW_STEPS), round(fw * _WINDOW_STEPS)
            top, left = np.arange(_WINDOW_STEPS - h + 1), np.arange(_WINDOW_STEPS - w + 1)
            sums = [reading.window_sums(top, left, h, w) for reading in readings]
            s, e = sum(score for score, _ in sums), sum(energy for _, energy in sums)
            z = np.where(e >= MIN_WINDOW_ENERGY, s / np.sqrt(np.maximum(e, MIN_WINDOW_ENERGY)), 0.0)
            i, j = np.unravel_index(int(np.argmax(z)), z.shape)
            if z[i, j] > best[0]:
                best = (float(z[i, j]), (int(top[i]), int(left[j]), int(top[i]) + h, int(left[j]) + w))
    return best


def _read_payload(readings: list[_Reading], box: tuple[int, int, int, int]) -> tuple[np.ndarray, float]:
    """The payload decoded inside a window or the whole frame, whichever reads the id more clearly,
    and the id's margin there (:func:`_read_id`); grids read together are weighted by their reliability."""
    margin, bits = -np.inf, np.zeros(PAYLOAD_BITS, np.uint8)
    for where in dict.fromkeys([box, (0, 0, _WINDOW_STEPS, _WINDOW_STEPS)]):
        weights = [reading.reliability(where) for reading in readings]
        soft = sum(weight * reading.soft(where) for weight, reading in zip(weights, readings))
        variance = sum(weight * weight * reading.noise(where) for weight, reading in zip(weights, readings))
        decoded, clearness = _read_id(readings[0].grid, soft, variance)
        if clearness > margin:
            margin, bits = clearness, decoded
    return bits, margin


def _table(values: np.ndarray) -> np.ndarray:
    out = np.zeros((values.shape[0] + 1, values.shape[1] + 1), np.float64)
    out[1:, 1:] = values.cumsum(0, dtype=np.float64).cumsum(1)
    return out


def _box_sum(table: np.ndarray, top: np.ndarray, bottom: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return table[bottom, right] - table[top, right] - table[bottom, left] + table[top, left]


def detect_watermark(frames: Iterable[np.ndarray]) -> WatermarkResult:
    """Detect and decode the watermark from frames (RGB or grey) of one video or image."""
    detector = WatermarkDetector()
    for frame in frames:
        detector.add(frame)
    if detector.frames == 0:
        raise DeepswapError("no frames to look for a watermark in")
    return detector.result()
