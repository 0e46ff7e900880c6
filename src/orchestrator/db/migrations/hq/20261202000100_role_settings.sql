-- The service's two planning settings, for the role it connects as. A session pool sets them per
-- connection too; a transaction pooler (Supabase's port 6543, PgBouncer in transaction mode)
-- keeps no session state, so there the role's defaults are what every transaction gets.
-- jit: our statements are short and many; compiling one whose estimated cost crosses the
-- threshold costs ~100 ms for nothing. plan_cache_mode: server-side functions keep generic
-- plans after five runs, costed once while a batch's tables were still empty.
-- A role may set its own defaults; where even that is refused, the service still works (more
-- slowly) and the notice says so.
DO $$
BEGIN
    EXECUTE format('ALTER ROLE %I SET jit = off', current_user);
    EXECUTE format('ALTER ROLE %I SET plan_cache_mode = force_custom_plan', current_user);
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'could not set jit and plan_cache_mode for role %: set them per role or database', current_user;
END
$$;
