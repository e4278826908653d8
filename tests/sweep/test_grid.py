"""The grid and seed syntax: inclusive ranges, exact decimals, lists, refusals."""

from __future__ import annotations

import pytest

from weltklassebot.errors import UsageError
from weltklassebot.sweep.grid import FLOAT, INT, TEXT, check_names, parse_axis, parse_seeds


def test_a_range_includes_both_ends() -> None:
    axis = parse_axis("fast=5:50:5")
    assert axis.values == tuple(str(v) for v in range(5, 55, 5))
    assert axis.kind == INT
    assert parse_axis("slow=20:29:10").values == ("20",)  # the step passes the stop


def test_decimal_ranges_are_exact() -> None:
    axis = parse_axis("qty=0.1:0.5:0.1")
    assert axis.values == ("0.1", "0.2", "0.3", "0.4", "0.5")
    assert axis.kind == FLOAT
    assert axis.typed("0.3") == 0.3
    assert parse_axis("qty=1:2:0.25").values == ("1.00", "1.25", "1.50", "1.75", "2.00")


def test_lists_and_single_values() -> None:
    assert parse_axis("slow=20,50,100").values == ("20", "50", "100")
    assert parse_axis(" fast = 7 ").values == ("7",)
    assert parse_axis("mode=a,b").kind == TEXT


@pytest.mark.parametrize("spec", ["fast", "fast=", "=5", "fast=5:1:1", "fast=1:5:0",
                                  "fast=1:5", "fast=a:b:c", "fast=1,,2", "fast=1,1",
                                  "fast=0:10000000:1"])
def test_bad_axes_are_refused(spec: str) -> None:
    with pytest.raises(UsageError):
        parse_axis(spec)


def test_seeds() -> None:
    assert parse_seeds("1..20", 0) == tuple(range(1, 21))
    assert parse_seeds("1..3,9", 0) == (1, 2, 3, 9)
    assert parse_seeds("7", 0) == (7,)
    assert parse_seeds(None, 42) == (42,)
    for bad in ("3..1", "x", "1,1", "-1", "1..2,2"):
        with pytest.raises(UsageError):
            parse_seeds(bad, 0)


def test_names_must_not_clash() -> None:
    with pytest.raises(UsageError, match="twice"):
        check_names([parse_axis("fast=1"), parse_axis("fast=2")], set())
    with pytest.raises(UsageError, match="column"):
        check_names([parse_axis("seed=1")], {"seed"})
