"""The one interleaved-measurement loop: rounds, rotation, warm-up rounds left out, medians."""

from bgbench.timing.interleave import interleaved, median_spread


def test_rounds_rotate_and_warmup_is_left_out():
    calls = []
    variants = {n: (lambda n=n: calls.append(n) or float(len(calls))) for n in "abc"}
    out = interleaved(variants, repeats=3, warmup=1)
    assert calls == list("abc" "bca" "cab" "abc")  # round r starts at variant r mod 3
    assert out == {"a": [6.0, 8.0, 10.0], "b": [4.0, 9.0, 11.0], "c": [5.0, 7.0, 12.0]}
    calls.clear()
    interleaved(variants, repeats=2, rotate=False)
    assert calls == list("abcabc")


def test_median_and_spread():
    assert median_spread([1.0, 3.0, 2.0]) == (2.0, 1.0)
    assert median_spread([0.0, 0.0]) == (0.0, None)
