"""SQL that maps the cells of an uploaded record to the Apollo fields of its batch item.

Both upload paths project items in SQL, from different sources (the stored raw rows, or the COPY
staging table), so the mapping is built over a function that names one cell.
"""

from __future__ import annotations

from collections.abc import Callable

from psycopg import sql

from entities.apollo import APOLLO_FIELDS, HeaderMapping

# The characters str.strip() removes (str.isspace()): a record of only these is blank.
PYTHON_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
# Names the cell of a record at a 0-based column position.
Cell = Callable[[int], sql.Composable]


def item_columns() -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(f) for f in APOLLO_FIELDS)


# The parameters a statement with `item_values` needs.
WHITESPACE_PARAM = {"whitespace": PYTHON_WHITESPACE}


def item_values(mapping: HeaderMapping, cell: Cell) -> sql.Composable:
    """One expression per `item_columns()` column, in the same order; the statement passes
    WHITESPACE_PARAM."""
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
    # Blank as HeaderMapping.extract (and so the forecast) judges it: str.strip()'s whitespace,
    # not only the spaces btrim removes by default. The statement's parameter `whitespace`
    # holds it (see WHITESPACE_PARAM).
    space = sql.Placeholder("whitespace")
    non_blank = [
        sql.SQL("CASE WHEN btrim({0}, {1}) <> '' THEN {0} END").format(c, space) for c in cells
    ]
    return sql.SQL("COALESCE({}, {}, '')").format(sql.SQL(", ").join(non_blank), cells[0])
