-- name: register_runner
INSERT INTO runners (hostname, pid, kind) VALUES (%(hostname)s, %(pid)s, %(kind)s) RETURNING id;

-- name: runner_heartbeat
UPDATE runners SET heartbeat_at = NOW() WHERE id = %(runner_id)s AND stopped_at IS NULL;

-- name: runner_stopped
UPDATE runners SET stopped_at = NOW() WHERE id = %(runner_id)s;

-- name: runners_alive
-- Runners that neither said they stopped nor fell silent for `stale_after` seconds; the caller
-- also drops those whose process is gone from this host.
SELECT id, hostname, pid, started_at FROM runners
WHERE stopped_at IS NULL AND heartbeat_at > NOW() - make_interval(secs => %(stale_after)s);
