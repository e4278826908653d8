"""The grid: ``--grid fast=5:50:5``, ``--grid slow=20,50,100``, ``--param qty=2``, ``--seeds``.

A range ``A:B:STEP`` includes both ends when STEP lands on B (``5:50:5`` is 5, 10, ..., 50); it
is computed in exact decimals, so ``0.1:0.5:0.1`` is five values. Values are handed to the
strategy as text, like ``--param``; the results table types a parameter's column by its values
(all integers: int64; all numbers: float64; otherwise text).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from weltklassebot.errors import UsageError

MAX_VALUES = 1_000_000
"""A guard against a mistyped range: no axis (and no seed list) is longer than this."""

INT, FLOAT, TEXT = "int", "float", "text"


@dataclass(frozen=True)
class Axis:
    """One parameter: its name, its values (as text, in the order given) and their kind."""

    name: str
    values: tuple[str, ...]
    kind: str

    def typed(self, text: str) -> int | float | str:
        """A value as the results table holds it."""
        if self.kind == INT:
            return int(text)
        if self.kind == FLOAT:
            return float(Decimal(text))
        return text


def _kind(values: tuple[str, ...]) -> str:
    numbers = [_decimal(v) for v in values]
    if any(n is None for n in numbers):
        return TEXT
    if all(n is not None and n == n.to_integral_value() and "." not in v and "e" not in v.lower()
           for n, v in zip(numbers, values, strict=True)):
        return INT
    return FLOAT


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def parse_axis(spec: str, option: str = "--grid") -> Axis:
    """``NAME=A:B:STEP``, ``NAME=V1,V2,...`` or ``NAME=V``."""
    name, sep, body = spec.partition("=")
    name, body = name.strip(), body.strip()
    if not sep or not name or not body:
        raise UsageError(f"{option} {spec!r} is not of the form NAME=VALUES, e.g. {option} "
                         "fast=5:50:5, fast=5,10,20 or fast=10.")
    if ":" in body:
        values = _range(name, body, option)
    else:
        values = tuple(v.strip() for v in body.split(","))
        if any(not v for v in values):
            raise UsageError(f"{option} {spec!r} has an empty value; separate values with "
                             "commas, e.g. slow=20,50,100.")
    if len(set(values)) != len(values):
        repeated = sorted({v for v in values if values.count(v) > 1})
        raise UsageError(f"{option} {spec!r} names {', '.join(repeated)} more than once; "
                         "each value makes cells once.")
    return Axis(name, values, _kind(values))


def _range(name: str, body: str, option: str) -> tuple[str, ...]:
    parts = body.split(":")
    numbers = [_decimal(p.strip()) for p in parts]
    if len(parts) != 3 or any(n is None for n in numbers):
        raise UsageError(f"{option} {name}={body}: a range is START:STOP:STEP with three "
                         "numbers, e.g. fast=5:50:5 (5, 10, ..., 50).")
    start, stop, step = (n for n in numbers if n is not None)
    if step <= 0 or stop < start:
        raise UsageError(f"{option} {name}={body}: the step must be positive and STOP at least "
                         "START, e.g. fast=5:50:5.")
    count = int((stop - start) // step) + 1
    if count > MAX_VALUES:
        raise UsageError(f"{option} {name}={body} makes {count:,} values (at most "
                         f"{MAX_VALUES:,}); use a larger step.")
    exponent = min(int(start.as_tuple().exponent), int(step.as_tuple().exponent))
    return tuple(_text(start + step * i, exponent) for i in range(count))


def _text(value: Decimal, exponent: int) -> str:
    """Exact text with the places of the range's own numbers (0.1:0.3:0.1 -> 0.1, 0.2, 0.3)."""
    if exponent >= 0:
        return str(int(value))
    return f"{value.quantize(Decimal(1).scaleb(exponent)):f}"


def parse_seeds(text: str | None, default: int) -> tuple[int, ...]:
    """``1..20`` (twenty seeds), ``1,5,9``, ``7`` or a mix (``1..5,9``); None: ``default``."""
    if text is None:
        return (default,)
    seeds: list[int] = []
    for item in (p.strip() for p in text.split(",")):
        low, dots, high = item.partition("..")
        try:
            first = int(low)
            last = int(high) if dots else first
        except ValueError:
            raise UsageError(f"--seeds {text!r}: use A..B (both included), a list 1,2,3 or one "
                             "seed, e.g. --seeds 1..20.") from None
        if first < 0 or last >= 2**64 or last < first:
            raise UsageError(f"--seeds {text!r}: seeds are 0 to 2**64-1 and a range runs "
                             "upwards, e.g. --seeds 1..20.")
        if last - first + 1 + len(seeds) > MAX_VALUES:
            raise UsageError(f"--seeds {text!r} makes more than {MAX_VALUES:,} seeds.")
        seeds.extend(range(first, last + 1))
    if len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds {text!r} names a seed more than once.")
    return tuple(seeds)


def check_names(axes: list[Axis], reserved: set[str]) -> None:
    """Each parameter once, and none named like a column of the results table."""
    seen: set[str] = set()
    for axis in axes:
        if axis.name in seen:
            raise UsageError(f"parameter {axis.name} is given twice (--grid / --param); give "
                             "each parameter once.")
        if axis.name in reserved:
            raise UsageError(f"parameter {axis.name} has the name of a column of "
                             "results.parquet; the sweep cannot name a column twice.")
        seen.add(axis.name)


def typed_params(axes: list[Axis], params: dict[str, str]) -> dict[str, Any]:
    return {axis.name: axis.typed(params[axis.name]) for axis in axes}
