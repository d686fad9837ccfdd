"""Historical facts: multiple choice by log-likelihood (acc and acc_norm as lm-evaluation-harness
defines them), and generated answers matched against the item's aliases; by period.

An item may carry a ``context`` (a passage, a sentence to classify) asked before its question; items
without aliases (Belebele, SIB-200) are scored by multiple choice only."""

from mglkit import EvalResult, Evaluator, choice_separator
from mglkit.mongolian import matches_alias


def _asked(fact: dict) -> str:
    return f"{fact['context']}\n\n{fact['question']}" if fact.get("context") else fact["question"]


class Facts(Evaluator):
    name = "facts"
    needs = ("facts",)
    description = "multiple-choice acc / acc_norm by log-likelihood; generated answers matched to aliases"

    def evaluate(self, scorer, suite, context) -> EvalResult:
        facts = suite.facts
        requests, spans = [], []
        for fact in facts:
            prompt = scorer.prompt(_asked(fact))
            sep = choice_separator(prompt)
            spans.append((len(requests), len(fact["choices"])))
            requests += [(prompt, sep + choice) for choice in fact["choices"]]
        scores = scorer.loglikelihood(requests)
        asked = [f for f in facts if f["aliases"]]
        answers = iter(scorer.generate([_asked(f) for f in asked], context.max_new_tokens) if asked else ())
        values = {"acc": [], "acc_norm": []} | ({"generation_match": []} if asked else {})
        items = []
        for fact, (first, n) in zip(facts, spans, strict=True):
            lls = [scores[first + k][0] for k in range(n)]
            normed = [ll / max(1, len(choice)) for ll, choice in zip(lls, fact["choices"], strict=True)]
            picked, picked_norm = lls.index(max(lls)), normed.index(max(normed))
            values["acc"].append(float(picked == fact["answer"]))
            values["acc_norm"].append(float(picked_norm == fact["answer"]))
            answer = next(answers) if fact["aliases"] else None
            matched = None if answer is None else matches_alias(answer, fact["aliases"])
            if matched is not None:
                values["generation_match"].append(float(matched))
            items.append({"id": fact["id"], "period": fact.get("period"), "picked": picked, "picked_norm": picked_norm,
                          "answer": fact["answer"], "generation": answer, "generation_match": matched})  # fmt: skip
        groups = {f.get("period") or "-" for f in facts}
        by_period = {
            group: [v for f, v in zip(facts, values["acc"], strict=True) if (f.get("period") or "-") == group]
            for group in sorted(groups)
        }
        return EvalResult.from_values(self.name, scorer.name, values, items, groups={"acc by period": by_period},
                                      seed=context.seed)  # fmt: skip
