"""The legality ledger: what evaluation observed — which val positions were scored, and which val tokens
anything else read — with a clock, and the score-first checks computed from it.

Two event kinds, entered by the code that did the work (never declared by a protocol):
- `score` [a, b): prediction positions whose NLL entered the BPB sums (position p predicts token p + 1);
  entered by the scorer from the mask it summed with (golf.eval.sliding.score_windows).
- `update` / `calibration` [i, j): val TOKEN indices read by an adaptation (weights, adapters, optimizer
  or gradient statistics) or by quantization calibration; entered by the val stream's reader
  (golf.eval.val_stream.ValStream.read), whatever slice the caller asked for.
A token i >= 1 is revealed once position i - 1 has been scored; token 0 (the leading BOS) is revealed from
the start. The clock is advanced by a protocol at each phase boundary (score a chunk, train on it); all
ranks run the same phases, so clocks agree across ranks and the merged ledger orders every rank's events.
`lanes` (document protocols) are position ranges that are each one pass of their own: documents taken from a
queue in any order, several side by side, each scored left to right; by default the stream is one lane.
"""

import bisect
from dataclasses import dataclass, field

import torch.distributed as dist

KINDS = ("score", "update", "calibration")


@dataclass
class Event:
    kind: str
    start: int
    end: int
    clock: int
    rank: int = 0


@dataclass
class Ledger:
    n_predictions: int
    rank: int = 0
    events: list[Event] = field(default_factory=list)
    clock: int = 0
    lanes: list[tuple[int, int]] | None = None

    def tick(self) -> None:
        self.clock += 1

    def align(self) -> None:
        """Move every rank's clock past the latest clock of any rank (collective: all ranks must call it), so what
        comes next is later than everything every rank has done (phased TTT's global step)."""
        if dist.is_available() and dist.is_initialized():
            clocks = [None] * dist.get_world_size()
            dist.all_gather_object(clocks, self.clock)
            self.clock = max(clocks)
        self.tick()

    def record(self, kind: str, start: int, end: int) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown ledger event kind {kind!r}; expected one of {KINDS}")
        last = self.events[-1] if self.events else None
        if last is not None and (last.kind, last.end, last.clock) == (kind, start, self.clock):
            last.end = end  # contiguous ranges of one phase merge, so the ledger stays small
        else:
            self.events.append(Event(kind, start, end, self.clock, self.rank))

    def gathered(self) -> "Ledger":
        """Every rank's events in one ledger (collective: all ranks must call it)."""
        if not (dist.is_available() and dist.is_initialized()):
            return self
        everyone = [None] * dist.get_world_size()
        dist.all_gather_object(everyone, self.events)
        return Ledger(self.n_predictions, self.rank, [e for events in everyone for e in events], self.clock, self.lanes)

    def checks(self, summed_tokens: int) -> dict:
        """The legality checks, each {pass, value}; call on the gathered ledger. `summed_tokens` is the count the
        BPB accumulator summed, which must equal both the positions entered here and the expected count."""
        scores = sorted((e for e in self.events if e.kind == "score"), key=lambda e: (e.start, e.clock))
        reads = [e for e in self.events if e.kind != "score"]
        return {
            "each_token_scored_once": self._scored_once(scores, summed_tokens),
            "score_before_update": self._score_first(scores, reads),
            "single_pass": self._single_pass(),
            "no_val_in_calibration": self._no_calibration(),
        }

    def _scored_once(self, scores: list[Event], summed_tokens: int) -> dict:
        covered, overlaps, gaps, cursor = 0, 0, 0, 0
        for e in scores:
            if e.start < cursor:
                overlaps += min(cursor, e.end) - e.start
            elif e.start > cursor:
                gaps += e.start - cursor
            covered += e.end - e.start
            cursor = max(cursor, e.end)
        gaps += max(self.n_predictions - cursor, 0)
        ok = overlaps == 0 and gaps == 0 and covered == self.n_predictions == summed_tokens
        return {"pass": ok, "value": {"scored": covered, "summed": summed_tokens, "expected": self.n_predictions,
                                      "rescored": overlaps, "unscored": gaps}}

    @staticmethod
    def _revealing_positions(read: Event) -> tuple[int, int]:
        """The positions whose scoring reveals tokens [start, end): p = i - 1 (token 0 needs none)."""
        return max(read.start - 1, 0), max(read.end - 1, 0)

    @staticmethod
    def _last_score_clock(scores: list[Event], start: int, end: int) -> int | None:
        """Latest clock at which any position of [start, end) was scored; None if some was never scored."""
        if start >= end:
            return -1
        starts = [e.start for e in scores]
        i = max(bisect.bisect_right(starts, start) - 1, 0)
        cursor, latest = start, -1
        while i < len(scores) and scores[i].start < end:
            e = scores[i]
            if e.end > cursor:
                if e.start > cursor:
                    return None
                latest = max(latest, e.clock)
                cursor = e.end
            i += 1
        return latest if cursor >= end else None

    def _score_first(self, scores: list[Event], reads: list[Event]) -> dict:
        """Every token an adaptation read was revealed (its position scored) at an earlier clock."""
        bad = [e for e in reads
               if (c := self._last_score_clock(scores, *self._revealing_positions(e))) is None or c >= e.clock]
        value = {"reads": len(reads), "tokens_read": sum(e.end - e.start for e in reads), "violations": len(bad)}
        if bad:
            value["first_violation"] = {"kind": bad[0].kind, "tokens": [bad[0].start, bad[0].end],
                                        "clock": bad[0].clock, "rank": bad[0].rank}
        return {"pass": not bad, "value": value}

    def _single_pass(self) -> dict:
        """On each rank and in each lane, scoring moves left to right and tokens feed adaptations only before anything
        later is scored. Per rank: ranks may own independent streams (documents) with their own order."""
        backwards = late = 0
        events = self._by_lane()
        for rank, lane in sorted({(e.rank, lane) for e, lane in events}):
            mine = [e for e, at in events if (e.rank, at) == (rank, lane)]
            scores = sorted((e for e in mine if e.kind == "score"), key=lambda e: (e.start, e.clock))
            reads = [e for e in mine if e.kind != "score"]
            rank_backwards, rank_late = self._rank_single_pass(scores, reads)
            backwards, late = backwards + rank_backwards, late + rank_late
        return {"pass": backwards == 0 and late == 0, "value": {"backward_steps": backwards, "late_updates": late}}

    def _by_lane(self) -> list[tuple[Event, int]]:
        """Every event with its lane index, events cut at lane boundaries (reads by the positions revealing them)."""
        if not self.lanes:
            return [(e, 0) for e in self.events]
        starts = [s for s, _ in self.lanes]
        out = []
        for e in self.events:
            lo, hi = (e.start, e.end) if e.kind == "score" else self._revealing_positions(e)
            shift = 0 if e.kind == "score" else e.start - lo
            while lo < hi:
                lane = max(bisect.bisect_right(starts, lo) - 1, 0)
                cut = min(hi, self.lanes[lane][1]) if self.lanes[lane][1] > lo else hi
                out.append((Event(e.kind, lo + shift, cut + shift, e.clock, e.rank), lane))
                lo = cut
        return out

    @classmethod
    def _rank_single_pass(cls, scores: list[Event], reads: list[Event]) -> tuple[int, int]:
        by_clock = sorted(scores, key=lambda e: (e.clock, e.start))
        backwards = sum(1 for a, b in zip(by_clock, by_clock[1:]) if b.clock > a.clock and b.start < a.start)
        starts = [e.start for e in scores]
        suffix_min = [0] * (len(scores) + 1)
        suffix_min[-1] = float("inf")
        for i in range(len(scores) - 1, -1, -1):
            suffix_min[i] = min(scores[i].clock, suffix_min[i + 1])
        late = sum(1 for r in reads if suffix_min[bisect.bisect_left(starts, cls._revealing_positions(r)[1])] < r.clock)
        return backwards, late

    def _no_calibration(self) -> dict:
        tokens = sum(e.end - e.start for e in self.events if e.kind == "calibration")
        return {"pass": tokens == 0, "value": tokens}
