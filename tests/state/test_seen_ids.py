"""The bounded window of processed fill ids carried in checkpoints."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weltklassebot.state.seen_ids import SeenIdWindow


def test_add_with_repeated_id_reports_duplicate() -> None:
    window = SeenIdWindow(3)
    assert window.add("a") is True
    assert window.add("a") is False
    assert "a" in window
    assert len(window) == 1


def test_add_beyond_capacity_evicts_oldest_first() -> None:
    window = SeenIdWindow(2, ["a", "b"])
    window.add("c")
    assert window.to_json() == ["b", "c"]
    assert "a" not in window


def test_from_json_with_checkpoint_list_round_trips() -> None:
    window = SeenIdWindow(3, ["x", "y"])
    assert SeenIdWindow.from_json(window.to_json(), 3).to_json() == ["x", "y"]
    assert SeenIdWindow.from_json(["a", "b", "c"], 2).to_json() == ["b", "c"]


@pytest.mark.parametrize("bad", [{"a": 1}, ["a", 1], "abc"])
def test_from_json_with_bad_data_raises(bad: object) -> None:
    with pytest.raises(ValueError, match="list of strings"):
        SeenIdWindow.from_json(bad, 3)


def test_window_with_bad_arguments_raises() -> None:
    with pytest.raises(ValueError, match="capacity"):
        SeenIdWindow(0)
    with pytest.raises(TypeError):
        SeenIdWindow(2).add(5)  # type: ignore[arg-type]


@given(ids=st.lists(st.text(max_size=3), max_size=60), capacity=st.integers(1, 10))
def test_window_with_any_ids_keeps_newest_distinct_ids_in_order(
    ids: list[str], capacity: int
) -> None:
    window = SeenIdWindow(capacity)
    for fill_id in ids:
        window.add(fill_id)
    assert len(window) <= capacity
    # the window is the tail of the distinct ids in first-insertion order, minus evictions
    assert window.to_json() == window.to_json()[-capacity:]
    assert all(fill_id in ids for fill_id in window.to_json())
    if ids:
        assert ids[-1] in window
