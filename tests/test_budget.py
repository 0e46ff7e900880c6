"""DATABASE_CONNECTION_BUDGET shared among the deployment's containers."""

from __future__ import annotations

import pytest

from orchestrator.runtimes.budget import (
    ConnectionBudgetError,
    connections,
    pool_sizes,
    settings_for,
)
from orchestrator.settings import Settings

CONTAINERS = {"Steps": 20, "Receivers": 5, "api": 3, "orchestrator_pass": 10, "sweeper": 1}


def test_without_a_budget_every_pool_keeps_its_configured_size() -> None:
    assert pool_sizes(None, CONTAINERS, 10) == dict.fromkeys(CONTAINERS, 10)


def test_a_budget_below_one_connection_per_container_is_refused_with_the_figures() -> None:
    with pytest.raises(ConnectionBudgetError) as refused:
        pool_sizes(38, CONTAINERS, 10)
    message = str(refused.value)
    assert "DATABASE_CONNECTION_BUDGET=38" in message
    assert "up to 39 containers" in message
    assert "Steps 20, Receivers 5, api 3, orchestrator_pass 10, sweeper 1" in message
    assert "at least 39" in message


def test_a_budget_of_one_per_container_gives_each_one() -> None:
    assert pool_sizes(39, CONTAINERS, 10) == dict.fromkeys(CONTAINERS, 1)


@pytest.mark.parametrize("cap", [1, 2, 5, 10])
def test_every_budget_is_kept_and_used(cap: int) -> None:
    for budget in range(39, 500):
        sizes = pool_sizes(budget, CONTAINERS, cap)
        assert connections(sizes, CONTAINERS) <= budget
        assert all(1 <= n <= cap for n in sizes.values())
        # Nothing more fits: each pool below the cap would overrun the budget by growing.
        left = budget - connections(sizes, CONTAINERS)
        assert all(sizes[f] == cap or CONTAINERS[f] > left for f in CONTAINERS), (budget, sizes)


def test_the_shares_grow_level_by_level() -> None:
    # 39 give one each, 39 more a second each; of the 22 left, a third goes to the pools whose
    # containers it still covers, cheapest first (sweeper 1, api 3, Receivers 5,
    # orchestrator_pass 10), not Steps (20); the last 3 only the sweeper can use.
    assert pool_sizes(100, CONTAINERS, 10) == {
        "Steps": 2,
        "Receivers": 3,
        "api": 3,
        "orchestrator_pass": 3,
        "sweeper": 6,
    }


def test_a_function_without_a_container_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_containers"):
        pool_sizes(100, {"Steps": 0}, 10)


def test_settings_for_a_function_carry_its_pool_sizes() -> None:
    settings = Settings(database_connection_budget=60, pool_min_size=2, pool_max_size=10)
    sizes = pool_sizes(60, CONTAINERS, 10)
    for function in CONTAINERS:
        shared = settings_for(settings, CONTAINERS, function)
        assert shared.pool_max_size == sizes[function]
        assert shared.pool_min_size == min(2, sizes[function])
    unbudgeted = settings_for(Settings(pool_max_size=7), CONTAINERS, "Steps")
    assert (unbudgeted.pool_max_size, unbudgeted.pool_min_size) == (7, 1)
