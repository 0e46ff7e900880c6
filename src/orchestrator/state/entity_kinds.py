"""Companies and people are enriched the same way; only their tables and words differ."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from psycopg import sql

EntityName = Literal["company", "person"]


@dataclass(frozen=True)
class EntityKind:
    name: EntityName
    entity_table: str  # normalized_companies / normalized_people
    state_table: str  # company_workflow_states / person_workflow_states
    result_table: str  # company_enrichment_results / person_enrichment_results
    id_column: str  # company_id / person_id (in state, result and batch_items tables)
    results_view: str  # company_results / person_results: own results and the one reused
    reuse_key: str  # domain / dedupe_key: what finds the same entity in a client's other batch

    @property
    def already_enriched(self) -> str:
        return f"{self.name}_already_enriched"

    @property
    def reused(self) -> str:
        return f"{self.name}_result_reused"

    @property
    def in_progress(self) -> str:
        return f"{self.name}_enrichment_in_progress"

    def identifiers(self) -> dict[str, sql.Identifier]:
        """Table and column names for sql.SQL(...).format(**kind.identifiers())."""
        return {
            "entity_table": sql.Identifier(self.entity_table),
            "state_table": sql.Identifier(self.state_table),
            "result_table": sql.Identifier(self.result_table),
            "id_column": sql.Identifier(self.id_column),
            "results_view": sql.Identifier(self.results_view),
            "reuse_key": sql.Identifier(self.reuse_key),
        }


COMPANY = EntityKind(
    "company",
    "normalized_companies",
    "company_workflow_states",
    "company_enrichment_results",
    "company_id",
    "company_results",
    "domain",
)
PERSON = EntityKind(
    "person",
    "normalized_people",
    "person_workflow_states",
    "person_enrichment_results",
    "person_id",
    "person_results",
    "dedupe_key",
)
KINDS: dict[str, EntityKind] = {"company": COMPANY, "person": PERSON}


def kind_of(entity_type: str) -> EntityKind:
    try:
        return KINDS[entity_type]
    except KeyError:
        raise ValueError(f"entity type {entity_type!r} is not enriched per entity") from None
