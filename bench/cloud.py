"""The deployment at full size on one machine: Modal containers as processes, Supabase's
transaction pooler as PgBouncer, Clay as its simulator with Clay's real workspace limit.

    python bench/cloud.py                        # 2,000 rows, 6 Steps containers, 10 rows/s
    python bench/cloud.py --kill                 # SIGKILL a Steps container mid Clay send
    python bench/cloud.py --company-webhooks 3 --person-webhooks 2 --lifetime-limit 400
    python bench/cloud.py --lifetime-limit 500 --batches 2   # lifetime counts carry over
    python bench/cloud.py --lifetime-limit 500 --add-webhook-when-held   # held, then redeployed
    python bench/cloud.py --src /tmp/before/src  # the containers run another source tree
    python bench/cloud.py --json > result.json   # figures as JSON on stdout, the rest on stderr

It runs `tests/cloud/harness.StandIn` (see that module): a fresh database on the test server
(TEST_DATABASE_URL, else a Docker or embedded PostgreSQL, as the test suite picks), migrated
directly; PgBouncer (pool_mode=transaction, default_pool_size=15, max_client_conn 200 as
Supabase's smallest plan); the Clay simulator process (`--rate`/`--burst` per workspace,
payloads over 100 KB refused, `--lifetime-limit` per webhook); the control plane standing for
Modal's queue; the receivers (`api`) process, a pass container, `--containers` Steps
containers and the sweeper, each an OS process with its own CloudRuntime and pool, all through
PgBouncer. The batch is uploaded through the api and runs to its end; then `enrich verify`.
With --batches N, N batches (seeds --seed, --seed+1, ...) run one after another in the same
stand-in: Clay's lifetime counts per webhook carry over from one to the next. A batch whose
workflow's webhooks are used up stops (HELD); with --add-webhook-when-held the hold's reason
and time are printed and the app is redeployed with one more webhook URL for that workflow
(every container stopped and started again, as after editing the Modal secret), again each
time it stops, until the batch is done.

Printed: rows, unique companies and people, Clay calls (accepted by the simulator), wall time
from upload to COMPLETED, the simulator's most rows accepted in any 1 s window after the first
second and its best 10 s average rate, 429s and their share of what it received, accepted per
webhook against the lifetime limit (and during the batch), 410s (sends past a webhook's limit),
duplicates, SHOW POOLS peaks and SHOW STATS totals (waits, refused clients), tracebacks and
statement errors per process log, and the verify result; per batch, then Clay's final counts
per webhook and the holds and redeploys in order. With --kill: which container died running
what, and entities dispatched again before or after their lease expired.

Run it as `python bench/cloud.py` from the project (needs pgbouncer: apt-get install pgbouncer).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from cloud.config import StandInConfig
from cloud.figures import RunFigures
from cloud.harness import StandIn
from common import emit_json, log, machine_state, source_fingerprint
from support.pgbouncer import find_pgbouncer, missing_reason
from support.postgres import find_postgres

# Long enough for the tail of a chunk to be sent: a lease starts when an entity is claimed.
KILL_LEASE_SECONDS = 300


SRC = Path(__file__).resolve().parents[1] / "src"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--rows", type=int, default=2000, help="rows of the batch (default 2000)")
    add("--companies", type=int, default=None, help="companies (default rows * 0.15)")
    add("--seed", type=int, default=0)
    add("--containers", type=int, default=6, help="Steps containers (default 6)")
    add("--rate", type=float, default=10.0, help="Clay workspace rows/s (Clay: 10)")
    add("--burst", type=int, default=20, help="Clay workspace burst (Clay: 20)")
    add("--kill", action="store_true", help="SIGKILL one Steps container mid Clay send")
    add("--lifetime-limit", type=int, default=None, help="submissions per webhook, ever")
    add("--company-webhooks", type=int, default=1, help="webhook URLs of the company workflow")
    add("--person-webhooks", type=int, default=1, help="webhook URLs of the person workflow")
    add(
        "--lease-seconds",
        type=int,
        default=None,
        help="timeout_seconds of the Clay workflows (default: the registry's; with --kill"
        f" {KILL_LEASE_SECONDS})",
    )
    add("--sweep-interval", type=float, default=5.0, help="sweeper period, seconds")
    add("--callback-delay", type=float, default=0.5, help="Clay's answer delay, seconds")
    add("--callback-jitter", type=float, default=1.0, help="extra random delay, seconds")
    add("--max-client-conn", type=int, default=200, help="PgBouncer max_client_conn")
    add("--pool-size", type=int, default=15, help="PgBouncer default_pool_size")
    add("--pool-max-size", type=int, default=None, help="POOL_MAX_SIZE of each container")
    add("--connection-budget", type=int, default=None, help="DATABASE_CONNECTION_BUDGET")
    add("--timeout", type=float, default=1800.0, help="give up on the batch after this")
    add("--batches", type=int, default=1, help="batches one after another (seeds differ)")
    add(
        "--add-webhook-when-held",
        action="store_true",
        help="when a batch is held (its workflow's webhooks used up), redeploy with one more"
        " webhook URL for that workflow and go on",
    )
    add("--max-redeploys", type=int, default=20, help="with --add-webhook-when-held: at most")
    add("--src", type=Path, default=None, help="source tree the containers run (default ours)")
    add("--keep", type=Path, default=None, help="copy the run's logs here")
    add("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if min(args.rows, args.containers, args.company_webhooks, args.person_webhooks) < 1:
        parser.error("--rows, --containers and the webhook counts must be at least 1")
    if args.batches < 1:
        parser.error("--batches must be at least 1")
    if args.src is not None and not (args.src / "orchestrator").is_dir():
        parser.error(f"--src {args.src}: no orchestrator package there")
    return args


def config_of(args: argparse.Namespace) -> StandInConfig:
    lease = args.lease_seconds
    if lease is None and args.kill:
        lease = KILL_LEASE_SECONDS
    return StandInConfig(
        rows=args.rows,
        companies=args.companies or max(1, round(args.rows * 0.15)),
        seed=args.seed,
        containers=args.containers,
        clay_rate=args.rate,
        clay_burst=args.burst,
        company_webhooks=args.company_webhooks,
        person_webhooks=args.person_webhooks,
        lifetime_limit=args.lifetime_limit,
        clay_timeout_seconds=lease,
        sweep_interval=args.sweep_interval,
        callback_delay=args.callback_delay,
        callback_jitter=args.callback_jitter,
        max_client_conn=args.max_client_conn,
        default_pool_size=args.pool_size,
        pool_max_size=args.pool_max_size,
        connection_budget=args.connection_budget,
        batch_timeout=args.timeout,
        src=args.src.resolve() if args.src else None,
    )


def run(args: argparse.Namespace, run_dir: Path) -> tuple[list[RunFigures], dict[str, Any]]:
    binary = find_pgbouncer()
    if binary is None:
        raise SystemExit(missing_reason())
    config = config_of(args)
    context: dict[str, Any] = {"config": {k: str(v) for k, v in vars(config).items()}}
    context["source"] = f"{config.src or SRC}: {source_fingerprint(config.src or SRC)}"
    log(f"code under test: {context['source']}")
    context["machine"] = machine_state().describe()
    log(f"machine: {context['machine']}")
    results: list[RunFigures] = []
    timeline: list[str] = []
    context["timeline"], context["status"] = timeline, []
    with find_postgres() as server:
        context["server"] = f"{server.kind} PostgreSQL {server.version}"
        log(f"server: {context['server']}")
        with StandIn(
            server.admin_conninfo, config, run_dir, pgbouncer_binary=binary, say=log
        ) as standin:
            for index in range(args.batches):
                batch = standin.upload(seed=args.seed + index)
                timeline.append(f"batch {index + 1} {batch} uploaded (seed {args.seed + index})")
                if args.kill and index == 0:
                    standin.kill_during_clay_send(min_running=2.0, timeout=args.timeout)
                status = wait(standin, batch, args, timeline)
                timeline.append(f"batch {index + 1}: {status}")
                results.append(standin.figures(batch))
                # As wait_done saw it: COMPLETED, HELD or UNFINISHED.
                context["status"].append(status)
                if status != "COMPLETED":
                    break
            context["machine_at_end"] = machine_state().describe()
            if args.keep:
                _keep(standin, args.keep)
    return results, context


def wait(standin: StandIn, batch: UUID, args: argparse.Namespace, timeline: list[str]) -> str:
    """Until the batch ends; with --add-webhook-when-held, a redeploy with one more webhook
    for each held workflow whenever it stops, as a user would after Clay's message."""
    redeploys = 0
    while True:
        try:
            status = standin.wait_done(batch)
        except Exception as exc:
            log(f"the batch did not finish: {exc}")
            log(standin.processes.tails(20))
            return "UNFINISHED"
        if status != "HELD" or not args.add_webhook_when_held:
            return status
        at = time.monotonic() - standin.uploads[batch].uploaded_at
        held = standin.held()
        added = {"company": 0, "person": 0}
        for slug, reason in held.items():
            line = f"{at:.1f}s after the upload, {time.strftime('%H:%M:%S')}: HELD {slug}: {reason}"
            timeline.append(line)
            print(line, flush=True, file=sys.stderr if args.json else sys.stdout)
            kind = "company" if "company" in slug else "person" if "person" in slug else None
            if kind is None:
                log(f"{slug} is no workflow of the stand-in's webhooks: not redeploying")
                return status
            added[kind] = 1
        if not held:
            continue  # lifted meanwhile (a container started): it goes on
        if redeploys >= args.max_redeploys:
            return status
        redeploys += 1
        company = standin.config.company_webhooks + added["company"]
        person = standin.config.person_webhooks + added["person"]
        standin.redeploy(company_webhooks=company, person_webhooks=person)
        line = (
            f"{time.monotonic() - standin.uploads[batch].uploaded_at:.1f}s after the upload:"
            f" redeployed with company {company}, person {person} webhook(s)"
        )
        timeline.append(line)
        print(line, flush=True, file=sys.stderr if args.json else sys.stdout)


def _keep(standin: StandIn, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for path in (standin.run_dir / "logs").glob("*.log"):
        shutil.copy(path, target / path.name)
    if standin.bouncer is not None:
        shutil.copy(standin.bouncer.log_path, target / "pgbouncer.log")
    log(f"logs copied to {target}")


def final_lines(results: list[RunFigures], context: dict[str, Any]) -> list[str]:
    """Clay's counts per webhook over the whole run against the limit, 410s, duplicates, and
    the holds and redeploys in order."""
    last = results[-1]
    limit = last.lifetime_limit
    over = {k: n for k, n in last.accepted_by_webhook.items() if limit is not None and n > limit}
    out = [f"== after {len(results)} batch(es): {', '.join(context['status'])}"]
    out += last.webhook_lines()[:1]
    out.append(
        f"accepted_by_webhook {dict(sorted(last.accepted_by_webhook.items()))}; limit {limit};"
        f" over the limit: {over or 'none'}; accepted {last.clay_accepted} of"
        f" {last.clay_received} received; rejected {last.rejected}"
    )
    out += [f"  {line}" for line in context["timeline"]]
    out.append(f"machine at the start: {context['machine']}")
    out.append(f"machine at the end: {context.get('machine_at_end', 'n/a')}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    run_dir = Path(tempfile.mkdtemp(prefix="bench-cloud-"))
    try:
        results, context = run(args, run_dir)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    out = sys.stderr if args.json else sys.stdout
    print(f"server: {context['server']}; code: {context['source']}", file=out)
    for index, figures in enumerate(results, start=1):
        print(f"== batch {index} of {args.batches}", file=out)
        for line in figures.lines():
            print(line, file=out)
    for line in final_lines(results, context):
        print(line, file=out)
    print(f"(whole run {time.perf_counter() - started:.0f}s)", file=out)
    if args.json:
        batches = [figures.to_json() for figures in results]
        emit_json({"context": context, "figures": batches[-1], "batches": batches})
    done = len(results) == args.batches
    ok = done and all(f.batch_status == "COMPLETED" and f.verified for f in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
