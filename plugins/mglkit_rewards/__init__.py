"""Built-in GRPO rewards: facts, mongolian, length, preference. Each maps (prompt, completion,
record) to a float; weights come from --reward-weights or the config file."""

from mglkit import Reward, hookimpl
from mglkit.metrics import purity
from mglkit.mongolian import matches_alias


class FactsReward(Reward):
    """1 when the completion contains an alias of the right answer (facts-style records)."""

    name = "facts"

    def __call__(self, prompt, completion, record):
        return float(matches_alias(completion, record.get("aliases") or []))


class MongolianReward(Reward):
    """Mongolian purity of the completion (Cyrillic, not Russian, Kazakh or Latin); 0 when empty."""

    name = "mongolian"

    def __call__(self, prompt, completion, record):
        return purity(completion)["purity"] if completion.strip() else 0.0


class LengthReward(Reward):
    """1 inside a band of words; less the further below it (0 when empty) or above it (rambling)."""

    name = "length"

    def __init__(self, low: int = 20, high: int = 80):
        self.low, self.high = low, high

    def configure(self, options) -> "LengthReward":
        low, high = (int(x) for x in options.length_band.split(","))  # checked by the trainer
        return LengthReward(low, high)

    def __call__(self, prompt, completion, record):
        words = len(completion.split())
        if words < self.low:
            return words / self.low
        if words > self.high:
            return max(0.0, 1 - (words - self.high) / self.high)
        return 1.0


class PreferenceReward(Reward):
    """Close to ``chosen`` and closer to it than to ``rejected``: 2 * sim(chosen) - sim(rejected),
    with rapidfuzz's character similarity (0-1) of the normalised texts; 0 for an empty answer."""

    name = "preference"

    def __call__(self, prompt, completion, record):
        from rapidfuzz.distance import Indel
        from rapidfuzz.utils import default_process

        if not completion.strip() or "chosen" not in record:
            return 0.0
        text = default_process(completion)
        chosen = Indel.normalized_similarity(text, default_process(record["chosen"]))
        rejected = Indel.normalized_similarity(text, default_process(record.get("rejected") or ""))
        return 2 * chosen - rejected


@hookimpl
def register_rewards(register):
    for reward in (FactsReward(), MongolianReward(), LengthReward(), PreferenceReward()):
        register(reward)
