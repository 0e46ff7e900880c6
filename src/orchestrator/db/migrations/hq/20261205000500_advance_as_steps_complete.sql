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
    -- double the cost of every claim. The next step is the play's next step number, looked up
    -- once per (batch, step) of the statement.
    INSERT INTO workflow_states (batch_id, item_id, step_name, step_number)
    SELECT n.batch_id, n.item_id, nxt.workflow_slug, nxt.next_number
    FROM new_rows n
    JOIN (
        SELECT steps.batch_id, steps.step_number, later.workflow_slug,
               later.step_number AS next_number
        FROM (SELECT DISTINCT batch_id, step_number FROM new_rows
              WHERE advanced AND status = 'COMPLETED') steps
        JOIN upload_batches b ON b.id = steps.batch_id
        CROSS JOIN LATERAL (
            SELECT ps.workflow_slug, ps.step_number FROM play_steps ps
            WHERE ps.play_name = b.play_name AND ps.step_number > steps.step_number
            ORDER BY ps.step_number LIMIT 1
        ) later
    ) nxt ON nxt.batch_id = n.batch_id AND nxt.step_number = n.step_number
    WHERE n.advanced AND n.status = 'COMPLETED'
    ON CONFLICT (item_id, step_name) DO NOTHING;
    RETURN NULL;
END;
$$;

CREATE TRIGGER workflow_states_create_next_steps
    AFTER UPDATE ON workflow_states
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION create_next_item_steps();
