"""What Clay charges for a row, in its two currencies: Actions and data credits.

A `ClayPrice` says what one row of a workflow costs: Actions when Clay accepts
the row (its enrichment columns run), the HTTP-API column's Actions when it
sends the row's callback, and data credits for each priced field the callback's
data actually holds. The `Ledger` adds those up as the simulator
works. Amounts are `Decimal` so totals stay exact whatever the prices.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)
_PRICE_KEYS = frozenset({"actions_per_run", "callback_actions", "data_credits"})


def has_value(value: object) -> bool:
    """Whether Clay counts `value` as found data: not None, blank text or an empty collection."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, Collection):
        return bool(value)
    return True  # numbers and booleans, False and 0 included, are found data


def _amount(name: str, value: object) -> Decimal:
    # bool is an int to Python, but True as a price is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    # Through str so 0.1 means 0.1, not the binary float nearest to it.
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{name} must be a finite amount >= 0, got {value}")
    return amount


@dataclass(frozen=True, slots=True)
class ClayPrice:
    """What one row of a workflow costs (see the module docstring)."""

    actions_per_run: Decimal = ZERO
    callback_actions: Decimal = ZERO
    # data type (a field of the callback's `data`) -> credits when that field has a value.
    # Out of the hash (a dict has none) but still compared.
    data_credits: Mapping[str, Decimal] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for name in ("actions_per_run", "callback_actions"):
            object.__setattr__(self, name, _amount(name, getattr(self, name)))
        if not isinstance(self.data_credits, Mapping):
            raise ValueError(f"data_credits must be a mapping, got {self.data_credits!r}")
        credits: dict[str, Decimal] = {}
        for data_type, amount in self.data_credits.items():
            if not isinstance(data_type, str) or not data_type:
                raise ValueError(f"data_credits keys must be field names, got {data_type!r}")
            credits[data_type] = _amount(f"data_credits[{data_type!r}]", amount)
        # A copy: the caller's mapping may change after the price was made.
        object.__setattr__(self, "data_credits", credits)

    def credits_for(self, data: Mapping[str, object]) -> Decimal:
        """Data credits for a callback carrying `data`: the priced fields it has a value for."""
        found = (cost for name, cost in self.data_credits.items() if has_value(data.get(name)))
        return sum(found, ZERO)


FREE = ClayPrice()


def prices_from_json(document: object) -> dict[str, ClayPrice]:
    """Prices from a parsed JSON object slug -> {actions_per_run, callback_actions, data_credits}.

    Raises ValueError naming the workflow and the problem. Parse with
    `parse_float=Decimal` so fractional prices stay exact.
    """
    if not isinstance(document, dict):
        raise ValueError("must be a JSON object mapping each workflow_slug to its price")
    return {slug: _price_from_json(slug, spec) for slug, spec in document.items()}


def _price_from_json(slug: str, spec: object) -> ClayPrice:
    if not isinstance(spec, dict):
        raise ValueError(f"{slug!r}: must be an object like {{{', '.join(sorted(_PRICE_KEYS))}}}")
    unknown = sorted(set(spec) - _PRICE_KEYS)
    if unknown:
        raise ValueError(f"{slug!r}: unknown keys {unknown}; expected {sorted(_PRICE_KEYS)}")
    try:
        return ClayPrice(**spec)
    except ValueError as error:
        raise ValueError(f"{slug!r}: {error}") from None


@dataclass(slots=True)
class CallbackCharge:
    """What one row's callback costs; shared by its duplicated copies, so it is billed once."""

    workflow_slug: str
    actions: Decimal
    data_credits: Decimal
    no_result: bool
    settled: bool = field(default=False, compare=False)  # guarded by the Ledger's lock


@dataclass(slots=True)
class _WorkflowBill:
    rows: int = 0
    callbacks: int = 0
    no_results: int = 0
    actions: Decimal = ZERO
    data_credits: Decimal = ZERO

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "callbacks": self.callbacks,
            "no_results": self.no_results,
            "actions": _plain(self.actions),
            "data_credits": _plain(self.data_credits),
        }


class Ledger:
    """Running totals per workflow_slug; thread-safe (server threads and callback workers).

    Rows of a slug without a price are counted but cost nothing.
    """

    def __init__(self, prices: Mapping[str, ClayPrice]) -> None:
        self._prices = prices
        self._lock = threading.Lock()
        self._bills: dict[str, _WorkflowBill] = {}

    def charge_run(self, workflow_slug: str) -> None:
        """Clay accepted a row: its enrichment runs and costs Actions, whatever follows."""
        price = self._prices.get(workflow_slug, FREE)
        with self._lock:
            bill = self._bill(workflow_slug)
            bill.rows += 1
            bill.actions += price.actions_per_run

    def price_callback(
        self, workflow_slug: str, data: Mapping[str, object] | None, *, no_result: bool = False
    ) -> CallbackCharge:
        """Price a row's callback (`data` None: an error); `settle` bills it once it is sent."""
        price = self._prices.get(workflow_slug, FREE)
        credits = ZERO if data is None else price.credits_for(data)
        return CallbackCharge(workflow_slug, price.callback_actions, credits, no_result)

    def settle(self, charge: CallbackCharge) -> bool:
        """Bill `charge` unless already billed (a duplicated copy); True when billed now."""
        with self._lock:
            if charge.settled:
                return False
            charge.settled = True
            bill = self._bill(charge.workflow_slug)
            bill.callbacks += 1
            bill.no_results += int(charge.no_result)
            bill.actions += charge.actions
            bill.data_credits += charge.data_credits
        return True

    def totals(self) -> tuple[Decimal, Decimal]:
        """(Actions, data credits) billed so far."""
        with self._lock:
            return _totals(self._bills.values())

    def snapshot(self) -> dict[str, Any]:
        """The "billing" part of GET /stats; amounts as exact decimal strings."""
        with self._lock:
            actions, data_credits = _totals(self._bills.values())
            return {
                "actions": _plain(actions),
                "data_credits": _plain(data_credits),
                "no_result_answers": sum(bill.no_results for bill in self._bills.values()),
                "by_workflow": {slug: bill.as_json() for slug, bill in self._bills.items()},
            }

    def _bill(self, workflow_slug: str) -> _WorkflowBill:
        bill = self._bills.get(workflow_slug)
        if bill is None:
            bill = self._bills[workflow_slug] = _WorkflowBill()
        return bill


def _totals(bills: Collection[_WorkflowBill]) -> tuple[Decimal, Decimal]:
    actions = sum((bill.actions for bill in bills), ZERO)
    return actions, sum((bill.data_credits for bill in bills), ZERO)


def _plain(amount: Decimal) -> str:
    # Fixed-point: a price written 1e1 in JSON reads back as "10", not "1E+1".
    return format(amount, "f")
