"""The risk state machine: ``ACTIVE`` / ``COOL`` / ``HALTED`` plus the pre-trade checks.

Pure and deterministic: no I/O, no wall clock, no randomness. All time is integer nanoseconds
UTC on the event clock, passed in by the caller with every call; the engine's clock is the
latest time it has been given (a call with an earlier time acts at the latest time seen).

Persistence order: every transition is handed to ``persist`` *before* it takes effect; if
``persist`` raises, the exception propagates and the state, peak and evidence stay as they
were (the breach is seen again at the next event). The one exception is :meth:`store_failed`:
the halt takes effect at once and its record waits in :attr:`pending_transitions` until
:meth:`retry_persist` (or the next transition) writes it; pending records are always written
before any newer one, so the store never holds a transition out of order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from typing import Any

from weltklassebot.core.decimal import format_scaled
from weltklassebot.core.timeutil import NS_PER_MINUTE, NS_PER_SECOND, format_duration
from weltklassebot.portfolio.view import PortfolioView
from weltklassebot.risk.config import RiskConfig
from weltklassebot.risk.rules import (
    OrderProposal,
    RateWindow,
    RiskDecision,
    money_units,
    rule_max_gross_notional,
    rule_max_order_notional,
    rule_max_order_qty,
    rule_max_position,
    rule_price_band,
    split_exposure,
)
from weltklassebot.risk.state import DenialReason, RiskState, RiskTransition, TransitionReason

SNAPSHOT_SCHEMA = 1
"""Schema version of :meth:`RiskEngine.snapshot` (the ``risk`` section of a checkpoint)."""

Persist = Callable[[RiskTransition], None]

_STATE_DENIALS = frozenset({DenialReason.cooldown, DenialReason.halted})
"""Denials that follow from the state rather than from a breach: not counted toward COOL."""


class RiskEngine:
    """Pre-trade checks and the ``ACTIVE`` / ``COOL`` / ``HALTED`` state machine."""

    def __init__(
        self,
        config: RiskConfig,
        *,
        initial_equity: int,
        money_scale: int,
        persist: Persist | None = None,
    ) -> None:
        self._config = config
        self._money_scale = money_scale
        self._initial_equity = initial_equity
        self._persist = persist
        self.cursor: int | None = None
        """Event cursor recorded with rule-driven transitions (set by a caller that has one)."""

        self._state = RiskState.ACTIVE
        self._clock: int | None = None
        self._cool_until: int | None = None
        self._peak = initial_equity
        self._equity = initial_equity
        self._wants_flatten = False
        self._transitions: list[RiskTransition] = []
        self._pending: list[RiskTransition] = []
        self._denials: dict[DenialReason, int] = {}

        # Breach evidence (cleared on entering COOL and on resume).
        self._consecutive_losses = 0
        self._loss_events: deque[tuple[int, int]] = deque()
        self._loss_sum = 0
        self._denial_times: deque[int] = deque(maxlen=config.max_denials or 1)

        # Round trips per symbol: [signed position in qty ticks, realised PnL since it opened].
        self._trips: dict[str, list[int]] = {}
        self._round_trips = 0
        self._losing_round_trips = 0

        self._rate_second = (
            None if config.max_orders_per_second is None
            else RateWindow(config.max_orders_per_second, NS_PER_SECOND)
        )
        self._rate_minute = (
            None if config.max_orders_per_minute is None
            else RateWindow(config.max_orders_per_minute, NS_PER_MINUTE)
        )

        # Limits converted once: money now, quantities per symbol on first use (the view knows
        # each instrument's increment).
        def money(value: Any) -> int | None:
            return None if value is None else money_units(value, money_scale)

        self._max_gross = money(config.max_gross_notional)
        self._max_order_notional = money(config.max_order_notional)
        self._max_window_loss = money(config.max_window_loss)
        self._exposure_spike = money(config.exposure_spike)
        self._band = None if config.price_band_bps is None else Fraction(config.price_band_bps)
        self._cap = config.drawdown_cap_fraction
        self._qty_limits: dict[str, tuple[int | None, int | None]] = {}

    # --- read-only views ---------------------------------------------------------------------

    @property
    def persist(self) -> Persist | None:
        """Called with each transition before it takes effect (the live service's journal)."""
        return self._persist

    @persist.setter
    def persist(self, persist: Persist | None) -> None:
        self._persist = persist

    @property
    def config(self) -> RiskConfig:
        return self._config

    @property
    def state(self) -> RiskState:
        return self._state

    @property
    def peak_equity(self) -> int:
        return self._peak

    @property
    def equity(self) -> int:
        """The last equity given to :meth:`on_equity` (initial equity before that)."""
        return self._equity

    @property
    def drawdown(self) -> Fraction:
        """``(peak - equity) / peak``, exact; 0 when the peak is not positive."""
        if self._peak <= 0:
            return Fraction(0)
        return Fraction(max(0, self._peak - self._equity), self._peak)

    @property
    def drawdown_cap(self) -> Fraction | None:
        return self._cap

    @property
    def cool_until_ns(self) -> int | None:
        """Event time at which ``COOL`` ends (``None`` outside ``COOL``)."""
        return self._cool_until

    @property
    def clock_ns(self) -> int | None:
        """Latest event time the engine has seen."""
        return self._clock

    @property
    def denials(self) -> dict[str, int]:
        """Denials (and clips) so far by reason, sorted by reason; reasons never seen are absent."""
        return {reason.value: self._denials[reason] for reason in sorted(self._denials)}

    @property
    def transitions(self) -> list[RiskTransition]:
        return list(self._transitions)

    @property
    def pending_transitions(self) -> list[RiskTransition]:
        """Transitions in effect but not yet persisted (only after :meth:`store_failed`)."""
        return list(self._pending)

    @property
    def wants_flatten(self) -> bool:
        """``flatten_on_halt`` is set and ``HALTED`` was just entered: close every position."""
        return self._wants_flatten

    def clear_flatten(self) -> None:
        """The caller has submitted its flattening orders."""
        self._wants_flatten = False

    @property
    def round_trips(self) -> tuple[int, int]:
        """(round trips completed, of which losing)."""
        return self._round_trips, self._losing_round_trips

    # --- pre-trade ---------------------------------------------------------------------------

    def check(self, proposal: OrderProposal, view: PortfolioView) -> RiskDecision:
        """Decide how much of ``proposal`` may go to the venue; counts denials by reason.

        Order of rules (the first that fails names the denial): state gate (``halted`` /
        ``cooldown``: clip to the reducing part), ``reduce_only`` (clip), ``max_order_qty``,
        ``max_order_notional``, ``price_band``, then for a risk-increasing remainder
        ``max_position`` and ``max_gross_notional``, then ``order_rate_second`` and
        ``order_rate_minute``. An order that passes (even clipped) counts toward the rates.
        """
        now = self._tick(proposal.ts_ns)
        symbol, side, qty = proposal.symbol, proposal.side, proposal.qty
        position = view.position(symbol)
        exposure = split_exposure(side, qty, position, view.open_qty(symbol, side))

        allowed = qty
        clip_reason: DenialReason | None = None
        clip_detail = ""
        if exposure.increasing and self._state is not RiskState.ACTIVE:
            clip_reason = (
                DenialReason.halted if self._state is RiskState.HALTED else DenialReason.cooldown
            )
            allowed = exposure.reducing
            clip_detail = (
                f"{self._state.value}: only position-reducing quantity passes "
                f"({exposure.reducing} of {qty} ticks reduce)"
            )
        elif exposure.increasing and (self._config.reduce_only or proposal.reduce_only):
            clip_reason = DenialReason.reduce_only
            allowed = exposure.reducing
            clip_detail = (
                f"reduce-only {'config' if self._config.reduce_only else 'order'}: "
                f"{exposure.reducing} of {qty} ticks reduce"
            )
        if allowed == 0:
            assert clip_reason is not None
            return self._deny(RiskDecision(0, clip_reason, clip_detail), now)

        max_position, max_order_qty = self._qty_limits_for(symbol, view)
        last = view.last_price(symbol)
        denial = (
            rule_max_order_qty(allowed, max_order_qty)
            or rule_max_order_notional(
                view.notional(symbol, allowed, proposal.price), self._max_order_notional
            )
            or rule_price_band(proposal.price, last, self._band)
        )
        increasing = allowed - exposure.reducing
        if denial is None and increasing > 0:
            after = exposure.after(side, allowed)
            denial = rule_max_position(after, max_position)
            if denial is None and self._max_gross is not None:
                mark = proposal.price if last is None else last
                current = 0 if last is None else view.notional(symbol, abs(position), last)
                projected = (
                    view.gross_exposure() - current + view.notional(symbol, abs(after), mark)
                )
                denial = rule_max_gross_notional(projected, self._max_gross)
        if denial is None and self._rate_second is not None and self._rate_second.full(now):
            denial = RiskDecision(
                0, DenialReason.order_rate_second,
                f"{self._rate_second.limit} orders already accepted within 1s",
            )
        if denial is None and self._rate_minute is not None and self._rate_minute.full(now):
            denial = RiskDecision(
                0, DenialReason.order_rate_minute,
                f"{self._rate_minute.limit} orders already accepted within 1m",
            )
        if denial is not None:
            return self._deny(denial, now)

        if self._rate_second is not None:
            self._rate_second.record(now)
        if self._rate_minute is not None:
            self._rate_minute.record(now)
        if clip_reason is not None:
            return self._deny(RiskDecision(allowed, clip_reason, clip_detail), now)
        return RiskDecision(qty, None, "")

    def record_denial(self, reason: DenialReason, ts_ns: int, detail: str = "") -> RiskDecision:
        """Count a denial decided outside the engine (``insufficient_buying_power``)."""
        now = self._tick(ts_ns)
        return self._deny(RiskDecision(0, reason, detail), now)

    def flatten_orders(
        self, symbols: Iterable[str], view: PortfolioView
    ) -> list[tuple[str, int, int]]:
        """Reducing market orders that close every position: ``(symbol, side, qty)`` each.

        Open orders already working toward flat are taken into account; orders are split so each
        passes ``max_order_qty`` and ``max_order_notional`` at the last price.
        """
        orders: list[tuple[str, int, int]] = []
        for symbol in sorted(set(symbols)):
            position = view.position(symbol)
            if position == 0:
                continue
            side = -1 if position > 0 else 1
            remaining = split_exposure(
                side, abs(position), position, view.open_qty(symbol, side)
            ).reducing
            chunk = remaining
            _, max_qty = self._qty_limits_for(symbol, view)
            if max_qty is not None:
                chunk = min(chunk, max_qty)
            last = view.last_price(symbol)
            if self._max_order_notional is not None and last is not None and chunk > 0:
                chunk = _largest_within(
                    chunk, self._max_order_notional, _notional_of(view, symbol, last)
                )
            if chunk <= 0:
                continue
            while remaining > 0:
                qty = min(chunk, remaining)
                orders.append((symbol, side, qty))
                remaining -= qty
        return orders

    # --- post-trade --------------------------------------------------------------------------

    def on_fill(
        self,
        symbol: str,
        side: int,
        qty: int,
        price: int,
        realised_pnl: int,
        ts_ns: int,
        view: PortfolioView,
    ) -> None:
        """Track round trips, the rolling realised loss and the exposure spike after a fill.

        ``realised_pnl`` is this fill's realised PnL net of its fee, money units. A round trip
        opens when the position leaves flat and ends when it returns to flat or flips; its PnL
        is the sum of the realised PnL of its fills (the whole of a flipping fill counts toward
        the trip it closes).
        """
        if side not in (1, -1) or qty <= 0:
            raise ValueError(f"fill {symbol}: side must be +1/-1 and qty positive")
        now = self._advance(ts_ns)
        trip = self._trips.setdefault(symbol, [0, 0])
        before = trip[0]
        after = before + side * qty
        trip[1] = realised_pnl if before == 0 else trip[1] + realised_pnl
        closed = before != 0 and (after == 0 or (before > 0) != (after > 0))
        if closed:
            self._round_trips += 1
            if trip[1] < 0:
                self._losing_round_trips += 1
                self._consecutive_losses += 1
            else:
                self._consecutive_losses = 0
            trip[1] = 0
        trip[0] = after
        if after == 0:
            del self._trips[symbol]

        if realised_pnl:
            self._loss_events.append((now, realised_pnl))
            self._loss_sum += realised_pnl
        self._prune_losses(now)

        self._expire_cool()
        if self._state is not RiskState.ACTIVE:
            return
        limit = self._config.max_consecutive_losses
        if limit is not None and self._consecutive_losses >= limit:
            self._transition(
                RiskState.COOL, TransitionReason.consecutive_losses,
                f"{self._consecutive_losses} losing round trips in a row (limit {limit})",
            )
            return
        if self._max_window_loss is not None and -self._loss_sum > self._max_window_loss:
            self._transition(
                RiskState.COOL, TransitionReason.window_loss,
                f"realised loss {self._money(-self._loss_sum)} within "
                f"{format_duration(self._config.loss_window)} > limit "
                f"{self._money(self._max_window_loss)}",
            )
            return
        if self._exposure_spike is not None:
            gross = view.gross_exposure()
            if gross > self._exposure_spike:
                self._transition(
                    RiskState.COOL, TransitionReason.exposure_spike,
                    f"gross exposure {self._money(gross)} > spike limit "
                    f"{self._money(self._exposure_spike)}",
                )

    def _money(self, units: int) -> str:
        """Money units as a decimal amount of the quote currency, for messages."""
        return format_scaled(units, self._money_scale)

    def on_equity(self, ts_ns: int, equity: int) -> None:
        """New equity point: update peak and drawdown, end ``COOL`` when its time has come.

        ``HALTED`` is entered when ``peak - equity >= drawdown_cap x peak``, compared exactly.
        """
        self._advance(ts_ns)
        self._equity = equity
        if equity > self._peak:
            self._peak = equity
        self._expire_cool()
        cap = self._cap
        if cap is None or self._state is RiskState.HALTED:
            return
        loss = self._peak - equity
        if loss * cap.denominator >= cap.numerator * self._peak:
            self._transition(
                RiskState.HALTED, TransitionReason.drawdown_cap,
                f"drawdown {_pct(self.drawdown)} from peak {self._money(self._peak)} to "
                f"{self._money(equity)} reached the cap {_pct(cap)}",
            )

    # --- operator and store ------------------------------------------------------------------

    def halt(
        self,
        reason: str,
        ts_ns: int,
        source: str = "operator",
        *,
        cursor: int | None = None,
        user: str | None = None,
    ) -> bool:
        """Kill switch: enter ``HALTED``. False (nothing recorded) when already halted."""
        self._advance(ts_ns)
        if self._state is RiskState.HALTED:
            return False
        self._transition(
            RiskState.HALTED, TransitionReason.kill_switch, reason,
            source=source, cursor=cursor, user=user,
        )
        return True

    def resume(
        self,
        ts_ns: int,
        *,
        keep_peak: bool = False,
        reason: str = "",
        source: str = "operator",
        cursor: int | None = None,
        user: str | None = None,
    ) -> bool:
        """Leave ``HALTED`` for ``ACTIVE``; the peak resets to current equity unless kept.

        False (nothing recorded) when not halted.
        """
        self._advance(ts_ns)
        if self._state is not RiskState.HALTED:
            return False
        peak = self._peak if keep_peak else self._equity
        detail = reason or ("resume, peak kept" if keep_peak else "resume, peak reset to equity")
        self._transition(
            RiskState.ACTIVE, TransitionReason.operator_resume, detail,
            source=source, cursor=cursor, user=user, peak_equity=peak,
        )
        return True

    def store_failed(self, ts_ns: int, detail: str, *, cursor: int | None = None) -> bool:
        """The state store cannot write: ``HALTED`` at once; the record waits to be persisted.

        False when already halted (nothing new to record).
        """
        self._advance(ts_ns)
        if self._state is RiskState.HALTED:
            return False
        transition = self._make(
            RiskState.HALTED, TransitionReason.store_write_failed, detail,
            source="engine", cursor=cursor, user=None, peak_equity=None,
        )
        self._apply(transition)
        self._pending.append(transition)
        return True

    def retry_persist(self) -> int:
        """Persist pending transitions in order; returns how many were written.

        Raises what ``persist`` raises; what was not written stays pending.
        """
        written = 0
        while self._pending:
            if self._persist is not None:
                self._persist(self._pending[0])
            self._pending.pop(0)
            written += 1
        return written

    def replay_transition(self, transition: RiskTransition, *, strict: bool = True) -> None:
        """Apply an already-persisted transition (recovery: checkpoint + later records).

        With ``strict`` a transition whose ``from_state`` is not the current state is refused
        (``ValueError``); without, the record wins (the store is the truth).
        """
        if strict and transition.from_state is not self._state:
            raise ValueError(
                f"recorded risk transition {transition.from_state.value} -> "
                f"{transition.to_state.value} at {transition.ts_ns} does not follow the current "
                f"state {self._state.value}"
            )
        if self._clock is None or transition.ts_ns > self._clock:
            self._clock = transition.ts_ns
        self._apply(transition)

    # --- persistence of the engine itself ----------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to continue exactly after a restart (JSON-able)."""
        return {
            "schema": SNAPSHOT_SCHEMA,
            "state": self._state.value,
            "clock_ns": self._clock,
            "cool_until_ns": self._cool_until,
            "initial_equity": self._initial_equity,
            "money_scale": self._money_scale,
            "peak_equity": self._peak,
            "equity": self._equity,
            "drawdown_cap": None if self._cap is None else str(self._cap),
            "wants_flatten": self._wants_flatten,
            "cursor": self.cursor,
            "denials": self.denials,
            "consecutive_losses": self._consecutive_losses,
            "loss_events": [[ts, pnl] for ts, pnl in self._loss_events],
            "denial_times": list(self._denial_times),
            "rate_second": [] if self._rate_second is None else self._rate_second.times(),
            "rate_minute": [] if self._rate_minute is None else self._rate_minute.times(),
            "trips": {symbol: list(self._trips[symbol]) for symbol in sorted(self._trips)},
            "round_trips": [self._round_trips, self._losing_round_trips],
            "transitions": [t.to_payload() for t in self._transitions],
            "pending": [t.to_payload() for t in self._pending],
        }

    @classmethod
    def restore(
        cls,
        config: RiskConfig,
        snapshot: Mapping[str, Any],
        *,
        persist: Persist | None = None,
    ) -> RiskEngine:
        """Rebuild an engine from :meth:`snapshot`; its future decisions equal the original's.

        A changed ``config`` applies from here on (rate windows keep their most recent times).
        """
        schema = snapshot.get("schema")
        if schema != SNAPSHOT_SCHEMA:
            raise ValueError(
                f"risk snapshot schema {schema!r} is not {SNAPSHOT_SCHEMA}; "
                "it was written by another version of weltklassebot"
            )
        try:
            engine = cls(
                config,
                initial_equity=int(snapshot["initial_equity"]),
                money_scale=int(snapshot["money_scale"]),
                persist=persist,
            )
            engine._state = RiskState(snapshot["state"])
            engine._clock = _opt_int(snapshot["clock_ns"])
            engine._cool_until = _opt_int(snapshot["cool_until_ns"])
            engine._peak = int(snapshot["peak_equity"])
            engine._equity = int(snapshot["equity"])
            engine._wants_flatten = bool(snapshot["wants_flatten"])
            engine.cursor = _opt_int(snapshot.get("cursor"))
            engine._denials = {
                DenialReason(reason): int(count) for reason, count in snapshot["denials"].items()
            }
            engine._consecutive_losses = int(snapshot["consecutive_losses"])
            engine._loss_events = deque((int(ts), int(pnl)) for ts, pnl in snapshot["loss_events"])
            engine._loss_sum = sum(pnl for _, pnl in engine._loss_events)
            engine._denial_times.extend(int(ts) for ts in snapshot["denial_times"])
            if engine._rate_second is not None:
                engine._rate_second = RateWindow(
                    engine._rate_second.limit, NS_PER_SECOND, map(int, snapshot["rate_second"])
                )
            if engine._rate_minute is not None:
                engine._rate_minute = RateWindow(
                    engine._rate_minute.limit, NS_PER_MINUTE, map(int, snapshot["rate_minute"])
                )
            engine._trips = {
                str(symbol): [int(v[0]), int(v[1])] for symbol, v in snapshot["trips"].items()
            }
            engine._round_trips, engine._losing_round_trips = map(int, snapshot["round_trips"])
            engine._transitions = [RiskTransition.from_payload(p) for p in snapshot["transitions"]]
            engine._pending = [RiskTransition.from_payload(p) for p in snapshot["pending"]]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"risk snapshot is malformed: {exc!r}") from None
        if engine._state is not RiskState.COOL:
            engine._cool_until = None
        return engine

    def status(self) -> dict[str, Any]:
        """Short JSON-able summary for operators, metrics and run summaries."""
        last = self._transitions[-1] if self._transitions else None
        return {
            "state": self._state.value,
            "since_ns": None if last is None else last.ts_ns,
            "reason": None if last is None else last.reason,
            "detail": None if last is None else last.detail,
            "cool_until_ns": self._cool_until,
            "peak_equity": self._peak,
            "equity": self._equity,
            "drawdown": str(self.drawdown),
            "drawdown_cap": None if self._cap is None else str(self._cap),
            "denials": self.denials,
            "transitions": len(self._transitions),
            "pending_transitions": len(self._pending),
        }

    # --- internals ---------------------------------------------------------------------------

    def _advance(self, ts_ns: int) -> int:
        """Move the event clock forward (never back); no transition."""
        if self._clock is None or ts_ns > self._clock:
            self._clock = ts_ns
        return self._clock

    def _expire_cool(self) -> None:
        if (
            self._state is RiskState.COOL
            and self._cool_until is not None
            and self._clock is not None
            and self._clock >= self._cool_until
        ):
            self._transition(
                RiskState.ACTIVE, TransitionReason.cooldown_elapsed,
                f"cooldown of {format_duration(self._config.cooldown)} elapsed",
            )

    def _tick(self, ts_ns: int) -> int:
        now = self._advance(ts_ns)
        self._expire_cool()
        return now

    def _deny(self, decision: RiskDecision, now: int) -> RiskDecision:
        reason = decision.reason
        assert reason is not None
        self._denials[reason] = self._denials.get(reason, 0) + 1
        limit = self._config.max_denials
        if reason in _STATE_DENIALS or limit is None:
            return decision
        window = self._config.denial_window
        self._denial_times.append(now)
        if (
            self._state is RiskState.ACTIVE
            and len(self._denial_times) >= limit
            and self._denial_times[0] > now - window
        ):
            self._transition(
                RiskState.COOL, TransitionReason.denial_storm,
                f"{limit} denials within {format_duration(window)} (last: {reason.value})",
            )
        return decision

    def _prune_losses(self, now: int) -> None:
        horizon = now - self._config.loss_window
        events = self._loss_events
        while events and events[0][0] <= horizon:
            self._loss_sum -= events.popleft()[1]

    def _qty_limits_for(self, symbol: str, view: PortfolioView) -> tuple[int | None, int | None]:
        found = self._qty_limits.get(symbol)
        if found is None:
            position_limit = self._config.position_limit(symbol)
            order_limit = self._config.max_order_qty
            found = (
                None if position_limit is None else view.qty_ticks(symbol, position_limit),
                None if order_limit is None else view.qty_ticks(symbol, order_limit),
            )
            self._qty_limits[symbol] = found
        return found

    def _make(
        self,
        to_state: RiskState,
        reason: TransitionReason,
        detail: str,
        *,
        source: str,
        cursor: int | None,
        user: str | None,
        peak_equity: int | None,
    ) -> RiskTransition:
        ts = self._clock if self._clock is not None else 0
        return RiskTransition(
            ts_ns=ts,
            from_state=self._state,
            to_state=to_state,
            reason=reason.value,
            detail=detail,
            cursor=self.cursor if cursor is None else cursor,
            source=source,
            user=user,
            peak_equity=self._peak if peak_equity is None else peak_equity,
            equity=self._equity,
            until_ns=ts + self._config.cooldown if to_state is RiskState.COOL else None,
        )

    def _transition(
        self,
        to_state: RiskState,
        reason: TransitionReason,
        detail: str,
        *,
        source: str = "engine",
        cursor: int | None = None,
        user: str | None = None,
        peak_equity: int | None = None,
    ) -> None:
        transition = self._make(
            to_state, reason, detail,
            source=source, cursor=cursor, user=user, peak_equity=peak_equity,
        )
        self.retry_persist()
        if self._persist is not None:
            self._persist(transition)
        self._apply(transition)

    def _apply(self, transition: RiskTransition) -> None:
        to_state = transition.to_state
        self._state = to_state
        self._transitions.append(transition)
        self._cool_until = None
        if to_state is RiskState.COOL:
            self._cool_until = (
                transition.until_ns if transition.until_ns is not None
                else transition.ts_ns + self._config.cooldown
            )
            self._clear_evidence()
        elif to_state is RiskState.HALTED:
            self._wants_flatten = self._config.flatten_on_halt
        elif transition.reason == TransitionReason.operator_resume:
            if transition.peak_equity is not None:
                self._peak = transition.peak_equity
            self._wants_flatten = False
            self._clear_evidence()

    def _clear_evidence(self) -> None:
        self._consecutive_losses = 0
        self._loss_events.clear()
        self._loss_sum = 0
        self._denial_times.clear()


def _largest_within(upper: int, limit: int, cost: Callable[[int], int]) -> int:
    """Largest ``q`` in ``[0, upper]`` with ``cost(q) <= limit`` for a non-decreasing ``cost``."""
    low, high = 0, upper
    while low < high:
        mid = (low + high + 1) // 2
        if cost(mid) <= limit:
            low = mid
        else:
            high = mid - 1
    return low


def _notional_of(view: PortfolioView, symbol: str, price: int) -> Callable[[int], int]:
    def cost(qty: int) -> int:
        return view.notional(symbol, qty, price)

    return cost


def _pct(value: Fraction) -> str:
    return f"{float(value) * 100:.4g} %"


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


__all__ = ["SNAPSHOT_SCHEMA", "Persist", "RiskEngine"]
