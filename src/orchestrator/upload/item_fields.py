"""SQL that maps the cells of an uploaded record to the Apollo fields of its batch item.

Both upload paths project items in SQL, from different sources (the stored raw rows, or the COPY
staging table), so the mapping is built over a function that names one cell.
"""

from __future__ import annotations

from collections.abc import Callable

from psycopg import sql

from entities.apollo import APOLLO_FIELDS, HeaderMapping

# Names the cell of a record at a 0-based column position.
Cell = Callable[[int], sql.Composable]


def item_columns() -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(f) for f in APOLLO_FIELDS)


def item_values(mapping: HeaderMapping, cell: Cell) -> sql.Composable:
    """One expression per `item_columns()` column, in the same order."""
    return sql.SQL(", ").join(_field_expression(mapping, f, cell) for f in APOLLO_FIELDS)


def _field_expression(mapping: HeaderMapping, field: str, cell: Cell) -> sql.Composable:
    """First non-blank value among the columns mapped to `field`."""
    positions = mapping.alternates.get(field) or (
        (mapping.index[field],) if field in mapping.index else ()
    )
    if not positions:
        return sql.Literal("")
    cells = [cell(p) for p in positions]
    if len(cells) == 1:
        # Every record has a value in every column, so one column needs no fallback (and no
        # per-row btrim).
        return cells[0]
    non_blank = [sql.SQL("CASE WHEN btrim({0}) <> '' THEN {0} END").format(c) for c in cells]
    return sql.SQL("COALESCE({}, {}, '')").format(sql.SQL(", ").join(non_blank), cells[0])
