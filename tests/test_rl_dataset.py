"""Sample order over epochs (a function of seed and epoch only) and the K-repeat member split."""

import pytest

from rl3dedit.rl import epoch_order, member_share, sample_at


def test_epoch_order_is_a_seeded_permutation():
    order = epoch_order(7, seed=3, epoch=0)
    assert sorted(order) == list(range(7))
    assert order == epoch_order(7, seed=3, epoch=0)
    # Another epoch and another seed each reorder the samples (7! orders: a collision would be a seeding bug).
    assert order != epoch_order(7, seed=3, epoch=1)
    assert order != epoch_order(7, seed=4, epoch=0)
    assert len({tuple(epoch_order(7, seed=3, epoch=e)) for e in range(6)}) == 6


def test_sample_at_walks_epochs():
    positions = [sample_at(p, 3, seed=0) for p in range(6)]
    assert [e for e, _ in positions] == [0, 0, 0, 1, 1, 1]
    assert sorted(i for _, i in positions[:3]) == [0, 1, 2]
    assert [i for _, i in positions[3:]] == epoch_order(3, 0, 1)


def test_member_share_covers_the_group_once():
    shares = [member_share(16, 4, p) for p in range(4)]
    assert sorted(m for s in shares for m in s) == list(range(16))
    with pytest.raises(ValueError, match="divisible"):
        member_share(6, 4, 0)
