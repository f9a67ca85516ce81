-- Run locks: what serializes the extension's own runs (one refresh at a time, one retention or
-- erasure at a time, one reclaim).
--
-- They are row locks on kt_run_locks, a table no role but the extension owner may read, lock
-- or write, taken by the extension's own privileged code. Advisory-lock keys would not do: any
-- login may take any key (in 0.8.0, SELECT pg_advisory_lock(hashtext('kt_governance.refresh_metrics'))
-- from a role with no grants stalled the worker's refresh for as long as it liked).

CREATE TABLE kt_governance_internal.kt_run_locks (
    lock_name  text PRIMARY KEY,
    serializes text NOT NULL
);
COMMENT ON TABLE kt_run_locks IS 'One row per run lock; a run holds its row locked (SELECT ... FOR UPDATE) until its transaction ends. Only the extension owner can read or lock these rows, so no other role can stall or skip a run by holding its lock. A holder shows in pg_locks as its transaction id (the row is marked with it); a run waiting for it shows a lock on the tuple.';
COMMENT ON COLUMN kt_run_locks.lock_name IS 'Lock name: refresh_metrics, retention or reclaim.';
COMMENT ON COLUMN kt_run_locks.serializes IS 'The runs that take this lock.';
INSERT INTO kt_run_locks VALUES
    ('refresh_metrics', 'kt_refresh_metrics(): one refresh at a time'),
    ('retention', 'kt_apply_retention() and kt_erase_subject(): one removal at a time'),
    ('reclaim', 'kt_reclaim_space(): one reclaim at a time');
REVOKE ALL ON kt_run_locks FROM PUBLIC;

-- Takes a run lock for the rest of the transaction. wait => false: returns false at once when
-- another run holds it. Called by privileged (extension-owned) code only.
CREATE FUNCTION kt_governance_internal.kt_take_run_lock(lock_name text, wait boolean DEFAULT true)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    wanted text := lock_name;
    taken boolean;
BEGIN
    IF wait THEN
        PERFORM FROM kt_governance_internal.kt_run_locks l WHERE l.lock_name = wanted FOR UPDATE;
    ELSE
        PERFORM FROM kt_governance_internal.kt_run_locks l WHERE l.lock_name = wanted FOR UPDATE SKIP LOCKED;
    END IF;
    taken := FOUND;
    IF NOT taken AND NOT EXISTS (SELECT FROM kt_governance_internal.kt_run_locks l WHERE l.lock_name = wanted) THEN
        RAISE EXCEPTION 'unknown run lock "%"', wanted USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN taken;
END
$fn$;
COMMENT ON FUNCTION kt_take_run_lock(text, boolean) IS 'Internal: locks the kt_run_locks row lock_name until the transaction ends; wait => false returns false instead of waiting when another run holds it. Not executable by PUBLIC.';
REVOKE ALL ON FUNCTION kt_take_run_lock(text, boolean) FROM PUBLIC;
