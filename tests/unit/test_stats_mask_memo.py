"""Suppression masks remembered by their inputs: a reused mask is the mask the pass computes, and any
change to what the pass reads runs it again."""

from __future__ import annotations

import numpy as np
import pytest

from shared.stats import suppression
from shared.stats.mask_memo import LocalMaskMemo
from shared.stats.suppression import Family, protect, with_totals

K = 5


def _inputs(seed: int = 0, bump: int = 0) -> tuple[np.ndarray, list[Family]]:
    rng = np.random.default_rng(seed)
    people = rng.integers(0, 30, (2, 4, 5))
    people[0, 0, 0] += bump
    positive = rng.binomial(people, 0.2)
    flag = with_totals(np.stack([positive, people - positive], axis=-1))
    band = with_totals(np.stack([people.sum(axis=2) // 2, people.sum(axis=2) - people.sum(axis=2) // 2], axis=-1)
                       [:, :, None, :])[:, :, :1]
    return with_totals(people), [Family("flag", flag), Family("band", band)]


def _masks(people, families, memo):
    people_sup = protect(people, families, K, memo)
    return people_sup, [fam.sup.copy() for fam in families]


class _Counting:
    """Counts how often the real pass runs."""

    def __init__(self, monkeypatch) -> None:
        self.runs = 0
        real = suppression._Engine.run

        def run(engine):
            self.runs += 1
            real(engine)

        monkeypatch.setattr(suppression._Engine, "run", run)


def test_a_remembered_mask_is_the_computed_one(monkeypatch) -> None:
    counting = _Counting(monkeypatch)
    memo = LocalMaskMemo()
    computed = _masks(*_inputs(), memo=None)
    first = _masks(*_inputs(), memo=memo)
    again = _masks(*_inputs(), memo=memo)
    assert counting.runs == 2  # without a memo, then once more to fill it; the third call reads it
    for other in (first, again):
        assert np.array_equal(other[0], computed[0])
        assert all(np.array_equal(a, b) for a, b in zip(other[1], computed[1], strict=True))
    assert computed[0].any(), "the inputs should need suppression"


@pytest.mark.parametrize("change", ["count", "k", "name", "weight"])
def test_any_change_to_the_inputs_runs_the_pass_again(monkeypatch, change) -> None:
    counting = _Counting(monkeypatch)
    memo = LocalMaskMemo()
    people, families = _inputs()
    protect(people, families, K, memo)
    k = K
    if change == "count":
        people, families = _inputs(bump=1)
    elif change == "k":
        people, families = _inputs()
        k = K + 1
    elif change == "name":
        people, families = _inputs()
        families[0].name = "other"
    else:
        people, families = _inputs()
        families[0].weight[0, 0, 0, 1] = 2.0
    protect(people, families, k, memo)
    assert counting.runs == 2


def test_a_change_to_the_pass_itself_runs_it_again(monkeypatch) -> None:
    counting = _Counting(monkeypatch)
    memo = LocalMaskMemo()
    protect(*_inputs(), K, memo)
    monkeypatch.setattr(suppression, "_CODE", b"another version of the suppression module")
    protect(*_inputs(), K, memo)
    assert counting.runs == 2


def test_the_local_memo_is_bounded() -> None:
    memo = LocalMaskMemo(entries=2)
    for name in "abc":
        memo.put(name, name.encode())
    assert memo.get("a") is None and memo.get("b") == b"b" and memo.get("c") == b"c"


def test_an_unreachable_redis_memo_lets_the_pass_run() -> None:
    import redis

    from shared.stats.mask_memo import RedisMaskMemo

    # nothing listens on port 1: every call fails to connect, at once
    memo = RedisMaskMemo(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5))
    people, families = _inputs()
    computed = _masks(*_inputs(), memo=None)
    got = _masks(people, families, memo)
    assert np.array_equal(got[0], computed[0])
