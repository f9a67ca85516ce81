-- kt_governance schema: the two documented tables, partitioned in lock-step by event time.
--
-- Decisions recorded here (see README "Schema decisions"):
--  * ai_decision_events is range-partitioned on "timestamp"; the key is (id, "timestamp")
--    because every unique key of a partitioned table must contain the partition key.
--  * policy_evaluations carries its event's timestamp (event_timestamp), written by the loader
--    together with event_id, and is partitioned on it with the same bounds, so an event and its
--    evaluations always live in a pair of partitions of the same range.
--  * Keys, indexes and the foreign key are made per partition pair by kt_add_partition_keys()
--    (partitions.sql): events_X has PRIMARY KEY (id, "timestamp") and the document's indexes,
--    policy_evaluations_X has its key and a foreign key to events_X. Ranges are disjoint, so
--    this is the same guarantee as parent-level keys, and it keeps two things simple: a plain
--    pg_dump / pg_restore round trip (no parent index is cloned into the dump's partitions)
--    and retention (an old pair is dropped together, no DETACH under ACCESS EXCLUSIVE on both
--    parents).
--  * Every unique key of policy_evaluations starts with event_id, so the schema can be
--    distributed by Citus (events by id, evaluations by event_id, co-located).

-- The trust boundary is a schema boundary (docs/security.md). The extension's schema (public
-- by default) holds what users call and read: the documented tables, the views, the public
-- functions. It is usually owned by the database owner, who may create, rename and drop things
-- in it; so no privileged code resolves a name there through search_path.
--  * kt_governance_internal: every internal function and bookkeeping table. Made here, by the
--    role running CREATE EXTENSION (a superuser), and plain CREATE SCHEMA: a schema of that
--    name planted beforehand makes the install fail instead of being adopted.
--  * kt_governance_partitions: the dated partitions and the default ones, out of the user's
--    table list, owned by the extension owner, so nobody below superuser drops one.
-- Privileged functions pin search_path to pg_catalog, kt_governance_internal, pg_temp and reach
-- the user's schema only by qualified names; the schema cannot be renamed (guard.sql).
CREATE SCHEMA kt_governance_internal;
COMMENT ON SCHEMA kt_governance_internal IS 'kt_governance internals: bookkeeping tables and internal functions. Not an API: names and signatures change between releases.';
CREATE SCHEMA kt_governance_partitions;
COMMENT ON SCHEMA kt_governance_partitions IS 'kt_governance: the dated and default partitions of ai_decision_events and policy_evaluations, made and removed by the extension. Query the parent tables, not these.';
-- Unqualified names in this script: created in the user's schema, looked up in all three.
SET search_path = @extschema@, kt_governance_internal, kt_governance_partitions;

CREATE TABLE ai_decision_events (
    id              text        NOT NULL,
    "timestamp"     timestamptz NOT NULL,
    decision        text        NOT NULL,
    model           text        NOT NULL,
    provider        text        NOT NULL,
    gateway_id      text        NOT NULL,
    user_id         text,
    team_id         text,
    input_tokens    integer     NOT NULL DEFAULT 0,
    output_tokens   integer     NOT NULL DEFAULT 0,
    cost_usd        numeric(12, 6),
    latency_ms      integer,
    request_source  text,
    batch_id        text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ai_decision_events_id_not_empty CHECK (id <> ''),
    CONSTRAINT ai_decision_events_decision_check
        CHECK (decision IN ('allowed', 'blocked', 'escalated', 'redacted')),
    -- the door refuses what would break the store for everyone (issue 20 class 7): a time no
    -- report can compute a window around (one event at 294276-12-31 made every report fail for
    -- every reader), a created_at in the future (retention spares rows stored after the export
    -- horizon, so 'infinity' kept a row forever), unbounded text in the grouping columns
    CONSTRAINT ai_decision_events_timestamp_in_range
        CHECK ("timestamp" >= '1970-01-01 00:00:00+00' AND "timestamp" < '10000-01-01 00:00:00+00'),
    CONSTRAINT ai_decision_events_created_at_not_future CHECK (created_at <= now() AND isfinite(created_at)),
    CONSTRAINT ai_decision_events_id_length CHECK (octet_length(id) <= 256),
    CONSTRAINT ai_decision_events_model_length CHECK (octet_length(model) <= 256),
    CONSTRAINT ai_decision_events_provider_length CHECK (octet_length(provider) <= 256),
    CONSTRAINT ai_decision_events_gateway_id_length CHECK (octet_length(gateway_id) <= 256),
    CONSTRAINT ai_decision_events_user_id_length CHECK (octet_length(user_id) <= 256),
    CONSTRAINT ai_decision_events_team_id_length CHECK (octet_length(team_id) <= 256),
    CONSTRAINT ai_decision_events_request_source_length CHECK (octet_length(request_source) <= 256),
    CONSTRAINT ai_decision_events_batch_id_length CHECK (octet_length(batch_id) <= 256),
    CONSTRAINT ai_decision_events_tokens_check CHECK (input_tokens >= 0 AND output_tokens >= 0),
    CONSTRAINT ai_decision_events_cost_check CHECK (cost_usd >= 0),
    CONSTRAINT ai_decision_events_latency_check CHECK (latency_ms >= 0)
) PARTITION BY RANGE ("timestamp");

CREATE TABLE policy_evaluations (
    id              bigint      GENERATED ALWAYS AS IDENTITY,
    event_id        text        NOT NULL,
    event_timestamp timestamptz NOT NULL,
    policy_name     text        NOT NULL,
    result          text        NOT NULL,
    latency_ms      integer,
    details         jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT policy_evaluations_result_check
        CHECK (result IN ('pass', 'block', 'redact', 'flag', 'escalate')),
    CONSTRAINT policy_evaluations_latency_check CHECK (latency_ms >= 0),
    CONSTRAINT policy_evaluations_created_at_not_future CHECK (created_at <= now() AND isfinite(created_at)),
    CONSTRAINT policy_evaluations_event_id_length CHECK (octet_length(event_id) <= 256),
    CONSTRAINT policy_evaluations_policy_name_length CHECK (octet_length(policy_name) <= 256)
) PARTITION BY RANGE (event_timestamp);

COMMENT ON TABLE ai_decision_events IS
    'One row per governed LLM request: the gateway''s decision and its usage. Range-partitioned by "timestamp" (monthly by default); rows outside every partition land in events_default until kt_run_maintenance() moves them. Every partition has PRIMARY KEY (id, "timestamp") and the document''s indexes. Text columns hold at most 256 bytes each.';
COMMENT ON COLUMN ai_decision_events.id IS 'Event id assigned by the gateway; unique per event (the key is (id, "timestamp") because of partitioning).';
COMMENT ON COLUMN ai_decision_events."timestamp" IS 'When the gateway decided (UTC instant); the partition key. From 1970-01-01 to before 10000-01-01 UTC.';
COMMENT ON COLUMN ai_decision_events.decision IS 'Outcome: allowed, blocked, escalated or redacted.';
COMMENT ON COLUMN ai_decision_events.model IS 'Requested model name, e.g. gpt-4o.';
COMMENT ON COLUMN ai_decision_events.provider IS 'Model provider, e.g. openai, anthropic.';
COMMENT ON COLUMN ai_decision_events.gateway_id IS 'Gateway that made the decision.';
COMMENT ON COLUMN ai_decision_events.user_id IS 'End user on whose behalf the request ran; NULL when unknown.';
COMMENT ON COLUMN ai_decision_events.team_id IS 'Owning team; NULL is reported as ''unassigned''.';
COMMENT ON COLUMN ai_decision_events.input_tokens IS 'Prompt tokens (>= 0).';
COMMENT ON COLUMN ai_decision_events.output_tokens IS 'Completion tokens (>= 0; 0 when blocked).';
COMMENT ON COLUMN ai_decision_events.cost_usd IS 'Cost of the request in USD, 6 decimals; NULL when unknown.';
COMMENT ON COLUMN ai_decision_events.latency_ms IS 'End-to-end latency in milliseconds; NULL when unknown.';
COMMENT ON COLUMN ai_decision_events.request_source IS 'Where the request came from (api, sdk, ide, ...).';
COMMENT ON COLUMN ai_decision_events.batch_id IS 'Export or batch the event arrived in, if any.';
COMMENT ON COLUMN ai_decision_events.created_at IS 'When the row was stored (transaction start time of the load); never in the future.';

COMMENT ON TABLE policy_evaluations IS
    'One row per policy evaluated for an event. Partitioned by event_timestamp with the same bounds as ai_decision_events; each partition''s foreign key (event_id, event_timestamp) to its events partition means no evaluation outlives its event.';
COMMENT ON COLUMN policy_evaluations.id IS 'Surrogate id (identity).';
COMMENT ON COLUMN policy_evaluations.event_id IS 'The evaluated event''s id.';
COMMENT ON COLUMN policy_evaluations.event_timestamp IS 'The evaluated event''s "timestamp", written with event_id; the partition key.';
COMMENT ON COLUMN policy_evaluations.policy_name IS 'Policy that was evaluated.';
COMMENT ON COLUMN policy_evaluations.result IS 'Result: pass, block, redact, flag or escalate.';
COMMENT ON COLUMN policy_evaluations.latency_ms IS 'Time the policy took, in milliseconds.';
COMMENT ON COLUMN policy_evaluations.details IS 'Policy-specific details as JSON (scores, matched rules, ...).';
COMMENT ON COLUMN policy_evaluations.created_at IS 'When the row was stored.';

-- Roles: created when missing and left alone when they exist (roles are cluster-wide, so
-- several databases with the extension share them). Grants are made by each capability's file.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'kt_governance_reader') THEN
        CREATE ROLE kt_governance_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'kt_governance_writer') THEN
        CREATE ROLE kt_governance_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'kt_governance_admin') THEN
        CREATE ROLE kt_governance_admin NOLOGIN;
    END IF;
    -- legal holds are a separate duty: this role may place and release any hold, and is not
    -- part of admin
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'kt_governance_legal_hold') THEN
        CREATE ROLE kt_governance_legal_hold NOLOGIN;
    END IF;
END
$roles$;
GRANT kt_governance_reader TO kt_governance_writer;
GRANT kt_governance_writer TO kt_governance_admin;
GRANT kt_governance_reader TO kt_governance_legal_hold;

-- USAGE on the user's schema (when installed elsewhere than public) and on the internal one:
-- report functions run as their caller and read rollups there
GRANT USAGE ON SCHEMA @extschema@, kt_governance_internal TO kt_governance_reader;
GRANT SELECT ON ai_decision_events, policy_evaluations TO kt_governance_reader;
GRANT INSERT ON ai_decision_events, policy_evaluations TO kt_governance_writer;
