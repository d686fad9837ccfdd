"""Bits per character of texts under a language model."""

import datasets
import evaluate

from mglkit.metrics import bits_per_character

_DESCRIPTION = """Bits per character: the negative log-likelihood a model gives a text, in bits, divided by
its length in characters. Unlike perplexity per token it is comparable across tokenizers. The
log-likelihoods come from the model being evaluated (natural log, summed over the text)."""

_KWARGS = """Args:
    data (list of str): texts.
    log_likelihood (list of float): each text's total log-likelihood in nats.
Returns:
    bits_per_character: total bits over total characters; per_text: each text's value."""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class BitsPerCharacter(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"data": datasets.Value("string"), "log_likelihood": datasets.Value("float64")}),
        )

    def _compute(self, data, log_likelihood):
        per_text = [bits_per_character(text, ll) for text, ll in zip(data, log_likelihood, strict=True)]
        total_bits = sum(per * max(1, len(text)) for per, text in zip(per_text, data, strict=True))
        return {"bits_per_character": total_bits / max(1, sum(len(t) for t in data)), "per_text": per_text}
