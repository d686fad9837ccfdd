"""Mongolian purity: how much of a text is Mongolian Cyrillic rather than Russian, Kazakh or Latin."""

import datasets
import evaluate

from mglkit.metrics import mean, purity

_DESCRIPTION = """Share of letters that are Cyrillic, reduced by the share of Russian words (frequent
Russian function words and noun endings) and of Kazakh-only letters (ә ғ қ ң ұ һ і): 1.0 for clean
Mongolian Cyrillic, near 0 for Latin transliteration, lower for Russian-mixed text. The same
signals as mglkit's language validator."""

_KWARGS = """Args:
    data (list of str): texts.
Returns:
    purity, cyrillic, russian, latin, kazakh: means over the texts; per_text: purity of each text."""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class MongolianPurity(evaluate.Measurement):
    def _info(self):
        return evaluate.MeasurementInfo(
            module_type="measurement",
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"data": datasets.Value("string")}),
        )

    def _compute(self, data):
        parts = [purity(text) for text in data]
        result = {key: mean(p[key] for p in parts) for key in ("purity", "cyrillic", "russian", "latin", "kazakh")}
        result["per_text"] = [p["purity"] for p in parts]
        return result
