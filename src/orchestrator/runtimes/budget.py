"""Connections per container: DATABASE_CONNECTION_BUDGET shared among a deployment's functions.

A deployment runs up to `max_containers` containers of each function, and every container opens
its own pool. With a budget (the most connections the database, or its pooler, takes from all of
them together) each function's pool gets a max size so that the sum over functions of
pool max size x max containers stays within the budget: every container first gets one
connection, then what is left raises the pools one connection per container at a time, all
functions level by level, never past the configured POOL_MAX_SIZE. Without a budget every pool
keeps POOL_MAX_SIZE.

The figures are per database server: when HQ and Workspace are separate databases, each
container opens one pool of that size on each.
"""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.settings import Settings


class ConnectionBudgetError(ValueError):
    """The budget cannot give every container of the deployment one connection."""


def pool_sizes(budget: int | None, containers: Mapping[str, int], cap: int) -> dict[str, int]:
    """Each function's pool max size. `containers` maps a function to its max containers;
    `cap` is the largest pool any container gets (POOL_MAX_SIZE)."""
    if cap < 1:
        raise ValueError(f"POOL_MAX_SIZE must be at least 1, not {cap}")
    unbounded = sorted(name for name, n in containers.items() if n < 1)
    if unbounded:
        raise ValueError(f"every function needs max_containers >= 1: {', '.join(unbounded)}")
    if budget is None:
        return dict.fromkeys(containers, cap)
    needed = sum(containers.values())
    if budget < needed:
        each = ", ".join(f"{name} {n}" for name, n in containers.items())
        raise ConnectionBudgetError(
            f"DATABASE_CONNECTION_BUDGET={budget} cannot give every container one database"
            f" connection: the deployment runs up to {needed} containers ({each}). Raise the"
            f" budget to at least {needed}, or lower max_containers in src/worker.py."
        )
    sizes = dict.fromkeys(containers, 1)
    left = budget - needed
    # Level by level, the functions with the fewest containers (the cheapest) first; one that
    # cannot afford a level stays below it, as what is left only shrinks.
    for level in range(2, cap + 1):
        for name in sorted(containers, key=lambda n: (containers[n], n)):
            if sizes[name] == level - 1 and containers[name] <= left:
                sizes[name] = level
                left -= containers[name]
    return sizes


def connections(sizes: Mapping[str, int], containers: Mapping[str, int]) -> int:
    """The most connections the deployment holds with these pool sizes."""
    return sum(sizes[name] * containers[name] for name in containers)


def settings_for(settings: Settings, containers: Mapping[str, int], function: str) -> Settings:
    """`settings` with the pool sizes of one function's containers."""
    size = pool_sizes(settings.database_connection_budget, containers, settings.pool_max_size)[
        function
    ]
    return settings.model_copy(
        update={"pool_max_size": size, "pool_min_size": min(settings.pool_min_size, size)}
    )
