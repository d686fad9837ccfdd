"""Mongolian fluency: bits per character of fluent and degraded passages, Mongolian purity and
repetition, combined into one score so that every kind of degradation ranks below fluent text.

Repeated text is very predictable, so bits per character alone can prefer a looping passage; the
fluency score is 2^-bpc (likelihood per character) x purity x (1 - repeated 3-gram rate)."""

from mglkit import EvalResult, Evaluator, metrics

GENERATIONS = 12  # answers generated for the purity and repetition of the model's own text


class Fluency(Evaluator):
    name = "fluency"
    needs = ("fluency",)
    description = "bits per character, purity, repetition, fluency score; fluent vs degraded ranking"

    def __init__(self):
        self._modules = None

    def modules(self):
        if self._modules is None:  # the published evaluate modules are the implementation
            self._modules = {name: metrics.load(name) for name in metrics.MODULES}
        return self._modules

    def evaluate(self, scorer, suite, context) -> EvalResult:
        mods = self.modules()
        passages = suite.fluency
        texts = [p["text"] for p in passages]
        lls = [ll for ll, _ in scorer.loglikelihood([("", t) for t in texts])]
        bpc = mods["bits_per_character"].compute(data=texts, log_likelihood=lls)["per_text"]
        purity = mods["mongolian_purity"].compute(data=texts)["per_text"]
        repeated = mods["repetition"].compute(data=texts)["per_text"]
        score = [2 ** (-b) * p * (1 - r) for b, p, r in zip(bpc, purity, repeated, strict=True)]
        by_id = {p["id"]: i for i, p in enumerate(passages)}
        fluent = [i for i, p in enumerate(passages) if "degraded" not in p]
        degraded = [i for i, p in enumerate(passages) if "degraded" in p and p.get("source_id") in by_id]
        values = {
            "bpc_fluent": [bpc[i] for i in fluent],
            "score_fluent": [score[i] for i in fluent],
            "purity_fluent": [purity[i] for i in fluent],
        }
        groups = {}
        if degraded:
            values["bpc_degraded"] = [bpc[i] for i in degraded]
            values["score_degraded"] = [score[i] for i in degraded]
            ranked = [float(score[by_id[passages[i]["source_id"]]] > score[i]) for i in degraded]
            values["ranked_correctly"] = ranked
            kinds = sorted({passages[i]["degraded"] for i in degraded})
            groups["score by kind"] = {"fluent": [score[i] for i in fluent]} | {
                kind: [score[i] for i in degraded if passages[i]["degraded"] == kind] for kind in kinds
            }
            groups["bpc by kind"] = {"fluent": [bpc[i] for i in fluent]} | {
                kind: [bpc[i] for i in degraded if passages[i]["degraded"] == kind] for kind in kinds
            }
            groups["ranked correctly by kind"] = {
                kind: [r for i, r in zip(degraded, ranked, strict=True) if passages[i]["degraded"] == kind]
                for kind in kinds
            }
        prompts = [p.prompt for p in suite.pairs][:GENERATIONS] or [f["question"] for f in suite.facts][:GENERATIONS]
        generations = scorer.generate(prompts, context.max_new_tokens) if prompts else []
        if generations:
            gen_purity = mods["mongolian_purity"].compute(data=generations)
            gen_repetition = mods["repetition"].compute(data=generations)
            values["generation_purity"] = gen_purity["per_text"]
            values["generation_repeated_3gram_rate"] = gen_repetition["per_text"]
            values["generation_distinct_2"] = [metrics.repetition(g)["distinct_2"] for g in generations]
        items = [
            {"id": p["id"], "degraded": p.get("degraded"), "bpc": bpc[i], "purity": purity[i],
             "repeated_3gram_rate": repeated[i], "score": score[i]}
            for i, p in enumerate(passages)
        ] + [{"generation": g, "prompt": q} for q, g in zip(prompts, generations, strict=False)]  # fmt: skip
        return EvalResult.from_values(self.name, scorer.name, values, items, groups=groups, seed=context.seed)
