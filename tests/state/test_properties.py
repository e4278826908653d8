"""Property tests: any mix of appends, flushes, checkpoints and reopens recovers exactly."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from weltklassebot.state.jsonl_store import JsonlStore, StoreConfig, recover
from weltklassebot.state.tail import last_records

from .support import segment_files

OPERATIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("append"),
            st.sampled_from(["fill", "order", "cursor"]),
            st.dictionaries(
                st.sampled_from("abc"), st.integers() | st.text(max_size=30), max_size=3
            ),
            st.booleans(),
            st.integers(0, 400),
        ),
        st.tuples(st.just("flush")),
        st.tuples(st.just("checkpoint")),
        st.tuples(st.just("reopen")),
    ),
    max_size=60,
)
CONFIGS = st.builds(
    StoreConfig,
    max_segment_bytes=st.integers(150, 1500),
    max_segment_age_ns=st.none() | st.integers(100, 3000),
    retain_segments=st.integers(0, 3),
    batch_records=st.integers(1, 5),
)


@settings(max_examples=120, deadline=None)
@given(operations=OPERATIONS, cfg=CONFIGS)
def test_store_with_any_operations_recovers_what_was_appended(
    operations: list[tuple[Any, ...]], cfg: StoreConfig
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "state"
        written: list[tuple[str, dict[str, Any], int]] = []
        clock_ns = 0

        def snapshot() -> dict[str, Any]:
            return {"count": len(written)}

        store = JsonlStore.open(directory, cfg, snapshot)
        for operation in operations:
            if operation[0] == "append":
                _, kind, payload, durable, step = operation
                clock_ns += step
                store.append(kind, payload, clock_ns, durable=durable)
                written.append((kind, payload, clock_ns))
            elif operation[0] == "flush":
                store.flush()
            elif operation[0] == "checkpoint":
                store.checkpoint(clock_ns)
            else:
                store.close()
                store = JsonlStore.open(directory, cfg, snapshot)
                assert store.recovery.torn_dropped == 0
        store.close()

        result = recover(directory)
        assert result.next_seq == store.next_seq
        if result.checkpoint is None:
            assert written == []
            return
        count = result.checkpoint["count"]
        assert [(r.kind, r.payload, r.ts_ns) for r in result.records] == written[count:]

        # every retained record is the one written at its place; checkpoints count what precedes
        retained = last_records(directory, 1 << 30).records
        index: int | None = None
        for record in retained:
            if record.kind == "checkpoint":
                assert index is None or record.payload["count"] == index
                index = record.payload["count"]
            else:
                assert index is not None
                assert (record.kind, record.payload, record.ts_ns) == written[index]
                index += 1
        assert index == len(written)

        segments = segment_files(directory)
        assert len(segments) <= cfg.retain_segments + 1
        for segment in segments:
            data = segment.read_bytes()
            assert len(data) <= cfg.max_segment_bytes or data.count(b"\n") <= 2
