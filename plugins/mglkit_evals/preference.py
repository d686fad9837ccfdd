"""Preference accuracy on held-out pairs: DPO implicit reward against the base model, and
reference-free log-probability comparisons (summed and length-normalised)."""

from mglkit import EvalResult, Evaluator


class Preference(Evaluator):
    name = "preference"
    needs = ("pairs",)
    description = "implicit-reward accuracy vs the base model, reference-free accuracy, reward margin"
    beta = 0.1  # the DPO default: margins are in the units training logs them

    def evaluate(self, scorer, suite, context) -> EvalResult:
        pairs = suite.pairs
        requests = [(scorer.prompt(p.prompt), p.chosen) for p in pairs]
        requests += [(scorer.prompt(p.prompt), p.rejected) for p in pairs]
        scores = scorer.loglikelihood(requests)
        chosen, rejected = scores[: len(pairs)], scores[len(pairs) :]
        values = {
            "ref_free_accuracy": [float(c[0] > r[0]) for c, r in zip(chosen, rejected, strict=True)],
            "ref_free_accuracy_norm": [
                float(c[0] / max(1, c[1]) > r[0] / max(1, r[1])) for c, r in zip(chosen, rejected, strict=True)
            ],
        }
        margins = None
        if context.reference is not None:
            ref = context.reference.loglikelihood(requests)
            ref_chosen, ref_rejected = ref[: len(pairs)], ref[len(pairs) :]
            margins = [
                self.beta * ((c[0] - rc[0]) - (r[0] - rr[0]))
                for c, r, rc, rr in zip(chosen, rejected, ref_chosen, ref_rejected, strict=True)
            ]
            values["reward_accuracy"] = [float(m > 0) for m in margins]
            values["reward_margin"] = margins
        items = [
            {"id": pair_id, "prompt": p.prompt, "logp_chosen": c[0], "logp_rejected": r[0],
             **({"margin": margins[i]} if margins else {})}
            for i, (pair_id, p, c, r) in enumerate(zip(suite.pair_ids(), pairs, chosen, rejected, strict=True))
        ]  # fmt: skip
        return EvalResult.from_values(self.name, scorer.name, values, items, seed=context.seed)
