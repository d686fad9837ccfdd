"""Repetition: distinct-n and the rate of repeated word 3-grams of texts."""

import datasets
import evaluate

from mglkit.metrics import mean, repetition

_DESCRIPTION = """distinct-1 and distinct-2 (unique n-grams over all n-grams of a text) and the share of
word 3-grams that occur twice or more in the text, averaged over texts. A text that loops on one
sentence has a repeated 3-gram rate near 1."""

_KWARGS = """Args:
    data (list of str): texts.
Returns:
    distinct_1, distinct_2, repeated_3gram_rate: means over the texts; per_text: the rate of each text."""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class Repetition(evaluate.Measurement):
    def _info(self):
        return evaluate.MeasurementInfo(
            module_type="measurement",
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"data": datasets.Value("string")}),
        )

    def _compute(self, data):
        parts = [repetition(text) for text in data]
        result = {key: mean(p[key] for p in parts) for key in ("distinct_1", "distinct_2", "repeated_3gram_rate")}
        result["per_text"] = [p["repeated_3gram_rate"] for p in parts]
        return result
