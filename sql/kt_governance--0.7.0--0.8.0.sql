-- kt_governance 0.7.0 -> 0.8.0: the events partitions' secondary indexes (the document's
-- idx_events_*) are built ascending with deduplication off, which makes COPY of time-ordered
-- events faster and the indexes smaller; newest-first queries read them backward. Partitions
-- created from now on get them; the default partition's are rebuilt here; dated partitions
-- that already exist keep theirs (both forms serve the same queries) until retention drops them.
-- Frozen once released: later changes go into a new upgrade script.
\echo Use "ALTER EXTENSION kt_governance UPDATE TO '0.8.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION kt_add_partition_keys(events_partition text, evaluations_partition text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
DECLARE
    ev text := format('%I.%I', '@extschema@', events_partition);
    pe text := format('%I.%I', '@extschema@', evaluations_partition);
BEGIN
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I PRIMARY KEY (id, "timestamp")', ev, events_partition || '_pkey');
    -- the document's idx_events_* indexes, per partition, built ascending: "ORDER BY timestamp
    -- DESC" reads them backward just as fast, and events arrive in time order, so ascending
    -- keys land on the rightmost leaf of each group (cached descent, leaves filled to 90%)
    -- instead of the leftmost (a full descent and a 50/50 split). Deduplication is off: with
    -- microsecond timestamps the keys are all but unique, and every dedup pass would be wasted.
    -- Measured (README, COPY 10M): 18% smaller indexes, 13% faster COPY.
    EXECUTE format('CREATE INDEX %I ON %s ("timestamp") WITH (deduplicate_items = off)', events_partition || '_timestamp_idx', ev);
    EXECUTE format('CREATE INDEX %I ON %s (decision, "timestamp") WITH (deduplicate_items = off)', events_partition || '_decision_idx', ev);
    EXECUTE format('CREATE INDEX %I ON %s (gateway_id, "timestamp") WITH (deduplicate_items = off)', events_partition || '_gateway_idx', ev);
    EXECUTE format('CREATE INDEX %I ON %s (user_id, "timestamp") WITH (deduplicate_items = off)', events_partition || '_user_idx', ev);
    EXECUTE format('CREATE INDEX %I ON %s (team_id, "timestamp") WITH (deduplicate_items = off)', events_partition || '_team_idx', ev);
    -- event_id first: serves the document's idx_evaluations_event lookups and keeps the key
    -- distributable by event_id
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I PRIMARY KEY (event_id, event_timestamp, id)', pe, evaluations_partition || '_pkey');
    EXECUTE format('CREATE INDEX %I ON %s (policy_name, result)', evaluations_partition || '_policy_idx', pe);
    -- the document's REFERENCES (no cascade): deleting an event that still has evaluations
    -- is refused rather than silently taking them along
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I FOREIGN KEY (event_id, event_timestamp) REFERENCES %s (id, "timestamp")',
                   pe, evaluations_partition || '_event_fkey', ev);
END
$fn$;
COMMENT ON FUNCTION kt_add_partition_keys(text, text) IS 'Internal: adds PRIMARY KEY (id, "timestamp") and the document''s indexes (ascending, read backward for newest-first queries; deduplication off) to an events partition, and to its evaluations partition the key (event_id, event_timestamp, id), the (policy_name, result) index and the foreign key to the events partition.';

-- the default partition is an extension member: make its indexes equal a fresh install's
DO $do$
DECLARE
    col text;
BEGIN
    FOREACH col IN ARRAY ARRAY['timestamp', 'decision', 'gateway', 'user', 'team'] LOOP
        EXECUTE format('DROP INDEX @extschema@.%I', 'events_default_' || col || '_idx');
    END LOOP;
END
$do$;
CREATE INDEX events_default_timestamp_idx ON @extschema@.events_default ("timestamp") WITH (deduplicate_items = off);
CREATE INDEX events_default_decision_idx ON @extschema@.events_default (decision, "timestamp") WITH (deduplicate_items = off);
CREATE INDEX events_default_gateway_idx ON @extschema@.events_default (gateway_id, "timestamp") WITH (deduplicate_items = off);
CREATE INDEX events_default_user_idx ON @extschema@.events_default (user_id, "timestamp") WITH (deduplicate_items = off);
CREATE INDEX events_default_team_idx ON @extschema@.events_default (team_id, "timestamp") WITH (deduplicate_items = off);
