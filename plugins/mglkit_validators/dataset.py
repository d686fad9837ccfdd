"""Dataset-wide rules: repeated pairs and prompts, and the number of usable pairs."""

from __future__ import annotations

from mglkit import ERROR, WARNING, Validator

_LINE_SHIFT = 64


class Duplicates(Validator):
    name = "duplicates"
    description = "no repeated pairs; repeated prompts are noted (prompt case and spacing ignored)"
    per_record = False  # keeps state; runs in the main process, so hash() is stable for its life

    def begin(self, config):
        bound = super().begin(config)
        # prompt hash -> first line << 64 | pair hash: one int per prompt keeps 1M prompts ~100 MB
        bound.prompts: dict[int, int] = {}
        bound.pairs: dict[int, int] = {}  # pair hash -> line, only for prompts seen twice
        return bound

    def check(self, pair):
        prompt = " ".join(pair.prompt.lower().split())
        whole = hash((prompt, pair.chosen.strip(), pair.rejected.strip())) & (2**64 - 1)
        first = self.prompts.get(hash(prompt))
        # sources without lines (Parquet, datasets) are numbered by row
        where, at = ("line", pair.line) if pair.line is not None else ("row", pair.row)
        if first is None:
            self.prompts[hash(prompt)] = at << _LINE_SHIFT | whole
            return ()
        first_line = first >> _LINE_SHIFT
        seen = first_line if whole == first & (2**64 - 1) else self.pairs.get(whole)
        if seen is not None:
            return [
                self.finding(
                    pair,
                    None,
                    ERROR,
                    f"duplicate of the pair on {where} {seen}",
                    hint="remove the repeated pair",
                )
            ]
        self.pairs[whole] = at
        return [
            self.finding(
                pair,
                "prompt",
                WARNING,
                f"same prompt as {where} {first_line}",
                hint="fine for several answers to one question; otherwise remove it",
            )
        ]


class Size(Validator):
    name = "size"
    description = "enough valid pairs to train on"
    per_record = False

    def finish(self, stats):
        valid, low, good = stats.valid, self.config.min_pairs, self.config.recommended_pairs
        if valid < low:
            return [
                self.finding(
                    None,
                    None,
                    ERROR,
                    f"{valid} valid pairs, at least {low} needed",
                    hint="add pairs or fix the rejected ones",
                )
            ]
        if valid < good:
            return [
                self.finding(
                    None,
                    None,
                    WARNING,
                    f"{valid} valid pairs, {good}+ recommended",
                    hint="more pairs give more reliable preference learning",
                )
            ]
        return ()
