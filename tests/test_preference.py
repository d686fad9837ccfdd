"""The pieces training is built from, on hand-made inputs: the DPO losses, truncation, collation,
the split, and the one count of steps per epoch that the plan and the dpo loop share."""

import math

import pytest
import torch
from mglkit_dpo.batches import Batches
from mglkit_dpo.loop import LoopState
from mglkit_dpo.losses import dpo_loss

from mglkit.preference import (
    TokenizedPair,
    collate,
    micro_batches_per_epoch,
    split_train_eval,
    steps_per_epoch,
    truncate_keep_prompt_end,
)

# chosen gains 1 nat over the reference, rejected loses 1: delta 2; at beta 0.1, beta * delta = 0.2
POLICY = dict(
    chosen=torch.tensor([-10.0]),
    rejected=torch.tensor([-12.0]),
    ref_chosen=torch.tensor([-11.0]),
    ref_rejected=torch.tensor([-11.0]),
    chosen_tokens=torch.tensor([4]),
    rejected_tokens=torch.tensor([2]),
)
HAND = {
    "sigmoid": math.log(1 + math.exp(-0.2)),
    "hinge": 0.8,
    "ipo": (1 / 4 + 1 / 2 - 1 / (2 * 0.1)) ** 2,  # per-token ratios, as TRL: (0.75 - 5)^2
    "robust": (0.9 * math.log(1 + math.exp(-0.2)) - 0.1 * math.log(1 + math.exp(0.2))) / 0.8,
}


@pytest.mark.parametrize("kind", sorted(HAND))
def test_dpo_losses_against_hand_computed_values(kind):
    loss, chosen_reward, rejected_reward = dpo_loss(kind, 0.1, 0.1 if kind == "robust" else 0.0, **POLICY)
    assert loss.item() == pytest.approx(HAND[kind], abs=1e-6)
    assert (chosen_reward.item(), rejected_reward.item()) == pytest.approx((0.1, -0.1))


def test_beta_carries_its_sign_into_the_rewards():
    # a negative beta would flip which answer is rewarded: the settings refuse it (tests/test_settings.py)
    _, chosen_reward, _ = dpo_loss("sigmoid", -0.1, 0.0, **POLICY)
    assert chosen_reward.item() == pytest.approx(-0.1)


def pair(prompt, chosen, rejected):
    return TokenizedPair(list(range(prompt)), list(range(100, 100 + chosen)), list(range(200, 200 + rejected)))


def test_truncation_trims_the_prompt_from_the_left_first():
    kept, cut = truncate_keep_prompt_end(pair(10, 4, 3), 14)
    assert not cut and kept.prompt_ids == list(range(10))
    kept, cut = truncate_keep_prompt_end(pair(10, 4, 3), 8)
    assert cut and kept.prompt_ids == list(range(6, 10)) and kept.chosen_ids == [100, 101, 102, 103]
    kept, cut = truncate_keep_prompt_end(pair(10, 20, 3), 12)  # the answer alone is too long
    assert len(kept.prompt_ids) == 6 and len(kept.chosen_ids) == 6 and len(kept.rejected_ids) == 3


def test_collation_puts_chosen_then_rejected_and_masks_the_completions():
    batch = collate([pair(2, 3, 1), pair(1, 1, 2)], pad_id=-1)
    assert batch["input_ids"].tolist() == [
        [0, 1, 100, 101, 102],
        [0, 100, -1, -1, -1],
        [0, 1, 200, -1, -1],
        [0, 200, 201, -1, -1],
    ]
    assert batch["completion_mask"].tolist() == [
        [0, 0, 1, 1, 1],
        [0, 1, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 1, 1, 0, 0],
    ]
    assert batch["attention_mask"].sum(dim=1).tolist() == [5, 2, 3, 3]


def test_the_split_is_the_guides_and_deterministic():
    train, held = split_train_eval(list(range(120)), 0.1, seed=42)
    assert (len(train), len(held)) == (108, 12) and sorted(train + held) == list(range(120))
    assert split_train_eval(list(range(120)), 0.1, seed=42) == (train, held)
    assert split_train_eval(list(range(5)), 0.0, seed=1) == ([0, 1, 2, 3, 4], [])


@pytest.mark.parametrize(
    ("pairs", "batch", "world", "accum", "micro", "steps"),
    [
        (9, 2, 1, 1, 5, 5),  # one process: the last, short batch runs
        (9, 2, 2, 1, 2, 2),  # two processes: 1 pair left for 2 processes is left out
        (10, 2, 2, 1, 3, 3),  # 2 left: one each
        (189, 8, 1, 1, 24, 24),  # the quick start
        (108, 4, 1, 8, 27, 4),  # the guide: 27 micro-batches, 3 full steps and a short one
        (3, 4, 2, 1, 1, 1),
        (1, 4, 2, 1, 0, 0),  # no batch at all: the plan refuses to run
    ],
)
def test_one_count_of_steps_per_epoch(pairs, batch, world, accum, micro, steps):
    assert micro_batches_per_epoch(pairs, batch, world) == micro
    assert steps_per_epoch(pairs, batch, accum, world) == steps


@pytest.mark.parametrize(("pairs", "batch", "world", "accum"), [(9, 2, 1, 2), (9, 2, 2, 1), (23, 3, 2, 4)])
def test_the_loop_takes_exactly_the_planned_steps_and_each_pair_once_per_epoch(pairs, batch, world, accum):
    items = [pair(1, 1, 1) for _ in range(pairs)]
    per_epoch = micro_batches_per_epoch(pairs, batch, world)
    for epoch in range(2):
        seen, position, steps = [], (epoch, 0), 0
        while position[0] == epoch:
            for rank in range(world):
                batches, after = Batches(items, batch, world, rank, seed=1, group_by_length=False).for_step(
                    *position, accum, per_epoch
                )
                seen += [i for b in batches for i in b]
            position, steps = after, steps + 1
        assert steps == steps_per_epoch(pairs, batch, accum, world)
        assert len(seen) == len(set(seen)) >= pairs - world + 1


def test_loop_state_round_trips_as_json():
    import json

    state = LoopState(step=7, epoch=1, next_micro=3, micro_batches=20, tokens=999, best_loss=0.5, best_step=6)
    assert LoopState(**json.loads(state.to_json())) == state
