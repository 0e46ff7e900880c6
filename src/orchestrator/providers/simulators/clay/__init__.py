"""A stand-in for Clay that speaks real HTTP, for local runs, tests and benchmarks.

It accepts rows on `POST /webhooks/<name>` exactly like a Clay table webhook
source and, after an optional delay, POSTs deterministic synthetic enrichment to
each row's `callback_url`, the way a Clay HTTP-API column would. Faults (auth,
rate limits, outages, dropped/duplicated/failed callbacks, enrichments that find
nothing) can be switched on through `SimulatorConfig`.

Clay's own limits can be enforced too (`SimulatorConfig.with_clay_limits`, or the
CLI's --clay-limits): one token bucket for the whole workspace, shared by every
webhook name served (429 + Retry-After beyond), a payload cap (413) and a
lifetime limit of accepted submissions per webhook name (410). `stats()` and
`GET /stats` report what was received, accepted and rejected, duplicates, and
the highest rates seen in sliding 1 s and 10 s windows.

It bills like Clay, in Actions and data credits, at the prices given per
workflow_slug (`SimulatorConfig.prices`, a `ClayPrice` each; the CLI's --prices):
Actions when a row is accepted, callback Actions once per row whose callback is
sent (duplicated copies are not billed again, dropped callbacks not at all), and
data credits per priced field the callback's data has a value for (none for
error or no-result answers). Rejected rows cost nothing. `billed()` gives the
totals, `stats()["billing"]` the breakdown per workflow.

The enrichment (`synthesize`) depends only on the row's content (domain, email,
names), never on `entity_id` or the seed, so two runs produce identical data.
The seed only drives the fault dice, which are keyed by entity and attempt so
they do not depend on thread scheduling either.

Note the real-world race this reproduces: with a zero delay a callback can
reach the receiver before the sender has finished processing Clay's 200.
"""

from orchestrator.providers.simulators.clay.billing import ClayPrice
from orchestrator.providers.simulators.clay.cli import main
from orchestrator.providers.simulators.clay.config import SimulatorConfig
from orchestrator.providers.simulators.clay.records import CallbackOutcome, Submission
from orchestrator.providers.simulators.clay.reference import KNOWN_COMPANIES, KnownCompany
from orchestrator.providers.simulators.clay.simulator import ClaySimulator
from orchestrator.providers.simulators.clay.synthesis import synthesize

__all__ = [
    "KNOWN_COMPANIES",
    "CallbackOutcome",
    "ClayPrice",
    "ClaySimulator",
    "KnownCompany",
    "SimulatorConfig",
    "Submission",
    "main",
    "synthesize",
]
