-- HQ database. An item's next step is created by the statement that completes its current one.
--
-- Until now a step's completion wrote the row COMPLETED, and a later orchestrator pass wrote it
-- again (advanced = TRUE) and inserted the next step: two statements and two row versions where
-- one will do. Every statement that completes item-steps now sets `advanced = TRUE` with the
-- status, and this statement-level trigger inserts the next step of each such row, set-based,
-- in the same statement. A row completed by a statement that does not set `advanced` is still
-- advanced by the next pass (advance_completed_items), which now only sets the flag: this
-- trigger inserts for it too. `advanced` keeps its meaning: the next step exists.

CREATE FUNCTION create_next_item_steps() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- A row flagged before this statement (updated again while COMPLETED) already has its next
    -- step, so ON CONFLICT skips it: no need to compare with the old rows, whose capture would
    -- add to the cost of every claim. The next steps are worked out once per (batch, step) of
    -- the statement, then joined to its rows.
    WITH moves AS MATERIALIZED (
        SELECT DISTINCT n.batch_id, n.step_number, later.next_slug, later.next_number
        FROM new_rows n
        JOIN upload_batches b ON b.id = n.batch_id
        JOIN (
            SELECT play_name, step_number,
                   lead(workflow_slug) OVER steps AS next_slug,
                   lead(step_number) OVER steps AS next_number
            FROM play_steps
            WINDOW steps AS (PARTITION BY play_name ORDER BY step_number)
        ) later ON later.play_name = b.play_name AND later.step_number = n.step_number
        WHERE n.advanced AND n.status = 'COMPLETED' AND later.next_slug IS NOT NULL
    )
    INSERT INTO workflow_states (batch_id, item_id, step_name, step_number)
    SELECT n.batch_id, n.item_id, moves.next_slug, moves.next_number
    FROM new_rows n
    JOIN moves ON moves.batch_id = n.batch_id AND moves.step_number = n.step_number
    WHERE n.advanced AND n.status = 'COMPLETED'
    ON CONFLICT (item_id, step_name) DO NOTHING;
    RETURN NULL;
END;
$$;

CREATE TRIGGER workflow_states_create_next_steps
    AFTER UPDATE ON workflow_states
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION create_next_item_steps();

-- A trigger's statements are planned once per connection and the plan kept, whatever the
-- tables have become since: planned at the start of a batch, when the result tables were
-- empty, billing found each answer's stored result by scanning person_enrichment_results
-- whole, once per callback (0.6 ms each at 3,000 people, growing with the batch). The
-- triggers' lookups must be index probes at any size: they are told so. And billing compares
-- each dispatch's new row with its old one; transition tables have no statistics, so the
-- planner took each for one row and joined them in a nested loop, 250,000 comparisons for a
-- chunk of 500 sends (0.13 s), where a hash or merge join does it in one pass.
ALTER FUNCTION bill_dispatches() SET enable_nestloop = off;
ALTER FUNCTION bill_dispatches() SET enable_seqscan = off;
ALTER FUNCTION create_next_item_steps() SET enable_seqscan = off;

-- The role's plan_cache_mode goes back to the server's default. Forcing a custom plan at every
-- execution was meant for the service's own statements, which are no longer prepared on the
-- server at all (see orchestrator/db/pool.py); it also made the server plan again, each time,
-- every foreign-key check (a primary-key probe: about half the cost of an insert of split's
-- people) and every statement of a trigger or SQL function (the billing of a callback).
DO $$
BEGIN
    EXECUTE format('ALTER ROLE %I RESET plan_cache_mode', current_user);
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'could not reset plan_cache_mode for role %: reset it per role or database', current_user;
END
$$;
