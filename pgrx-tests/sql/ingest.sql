-- kt_ingest(jsonb): both vocabularies, nested usage, optional fields, idempotency, every kind
-- of bad record in both modes, and a 100k-event array.
CREATE EXTENSION kt_governance;
\ir _helpers.psql
SELECT count(*) FROM kt_create_partitions('2026-03-01', '2026-06-01');

-- valid events: decision and verdict vocabularies, any case, nested usage, offsets, evaluations
SELECT * FROM kt_ingest($$[
  {"id": "e1", "timestamp": "2026-04-01T10:00:00Z", "decision": "allowed", "model": "gpt-4o", "provider": "openai",
   "gateway_id": "gw-1", "user_id": "u1", "team_id": "search", "input_tokens": 120, "output_tokens": 80,
   "cost_usd": 0.001234, "latency_ms": 410, "request_source": "sdk", "batch_id": "b-1",
   "policies_evaluated": [{"name": "pii-detection", "result": "pass", "latency_ms": 3},
                          {"name": "toxicity", "result": "FLAG", "latency_ms": 5, "score": 0.71, "rule": "t/1"}]},
  {"id": "e2", "timestamp": "2026-04-01T12:30:00+02:00", "verdict": "Block", "model": "claude-3-haiku", "provider": "anthropic",
   "gateway_id": "gw-2", "usage": {"input_tokens": "64", "output_tokens": 0}, "cost_usd": "0",
   "policy_evaluations": [{"name": "prompt-injection", "result": "block", "details": {"match": "ignore previous"}}]},
  {"id": "e3", "timestamp": "2026-04-02T08:00:00.123456-05:00", "verdict": "redact", "model": "m", "provider": "p",
   "gateway_id": "gw-1", "usage": {"prompt_tokens": 10, "completion_tokens": 20}},
  {"id": "e4", "timestamp": "2026-04-03T00:00:00Z", "decision": "ESCALATED", "model": "m", "provider": "p", "gateway_id": "gw-3",
   "user_id": null, "team_id": null, "cost_usd": null, "latency_ms": null}
]$$);
SELECT id, "timestamp", decision, model, gateway_id, user_id, team_id, input_tokens, output_tokens, cost_usd, latency_ms, request_source, batch_id
FROM ai_decision_events ORDER BY id;
SELECT event_id, event_timestamp, policy_name, result, latency_ms, details FROM policy_evaluations ORDER BY event_id, policy_name;

-- a single object is accepted too
SELECT * FROM kt_ingest('{"id": "e5", "timestamp": "2026-04-04T00:00:00Z", "decision": "allow", "model": "m", "provider": "p", "gateway_id": "g"}');

-- idempotent: re-ingesting changes nothing, even with the timestamp written differently;
-- a batch repeating an id stores it once
SELECT * FROM kt_ingest($$[
  {"id": "e1", "timestamp": "2026-04-01T12:00:00+02:00", "decision": "allowed", "model": "gpt-4o", "provider": "openai", "gateway_id": "gw-1"},
  {"id": "e6", "timestamp": "2026-04-05T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"},
  {"id": "e6", "timestamp": "2026-04-05T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}
]$$);
SELECT pg_temp.counts();

-- naive timestamps only with assume_utc
SELECT pg_temp.try($$SELECT * FROM kt_ingest('{"id": "n1", "timestamp": "2026-04-06T10:00:00", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}')$$);
SELECT inserted FROM kt_ingest('{"id": "n1", "timestamp": "2026-04-06T10:00:00", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}', assume_utc => true);
SELECT "timestamp" FROM ai_decision_events WHERE id = 'n1';

-- every kind of bad record, strict: the whole call fails, naming record, id, field, problem
CREATE TEMP TABLE bad_records (case_name text, record jsonb);
INSERT INTO bad_records VALUES
 ('missing id', '{"timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}'),
 ('empty id', '{"id": "", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}'),
 ('unparseable timestamp', '{"id": "x1", "timestamp": "yesterday", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}'),
 ('missing timestamp', '{"id": "x2", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}'),
 ('unknown verdict', '{"id": "x3", "timestamp": "2026-04-07T00:00:00Z", "verdict": "maybe", "model": "m", "provider": "p", "gateway_id": "g"}'),
 ('no decision', '{"id": "x4", "timestamp": "2026-04-07T00:00:00Z", "model": "m", "provider": "p", "gateway_id": "g"}'),
 ('negative tokens', '{"id": "x5", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "input_tokens": -4}'),
 ('tokens not a number', '{"id": "x6", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "usage": {"output_tokens": "lots"}}'),
 ('negative cost', '{"id": "x7", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "cost_usd": -1}'),
 ('huge cost', '{"id": "x8", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "cost_usd": 1e12}'),
 ('missing model', '{"id": "x9", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "provider": "p", "gateway_id": "g"}'),
 ('evaluations not an array', '{"id": "x10", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "policies_evaluated": {"name": "pii"}}'),
 ('unknown result', '{"id": "x11", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "policies_evaluated": [{"name": "pii", "result": "meh"}]}'),
 ('evaluation without name', '{"id": "x12", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "policies_evaluated": [{"result": "pass"}]}'),
 ('record not an object', '"just a string"'),
 ('model not a string', '{"id": "x13", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": ["m"], "provider": "p", "gateway_id": "g"}');
SELECT case_name, pg_temp.try(format('SELECT * FROM kt_ingest(%L::jsonb)',
    jsonb_build_array('{"id": "good-1", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}'::jsonb, record)))
FROM bad_records ORDER BY case_name;
SELECT pg_temp.counts();

-- quarantine: good records stored, bad ones kept with their reason, call succeeds
SELECT * FROM kt_ingest((SELECT jsonb_agg(record) FROM bad_records)
                        || '[{"id": "good-2", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}]'::jsonb,
                        mode => 'quarantine');
SELECT record_index, event_id, field, reason FROM kt_ingest_errors ORDER BY record_index;
SELECT pg_temp.counts();

SELECT pg_temp.try($$SELECT * FROM kt_ingest('[]', mode => 'lenient')$$);
SELECT * FROM kt_ingest('[]');

-- 100k events in one array: every one stored once, evaluations with them; re-ingest is a no-op
CREATE TEMP TABLE big AS
SELECT jsonb_agg(jsonb_build_object('id', e.id, 'timestamp', e."timestamp", 'verdict', CASE e.decision WHEN 'escalated' THEN 'escalate' ELSE left(e.decision, -2) END,
         'model', e.model, 'provider', e.provider, 'gateway_id', e.gateway_id, 'user_id', e.user_id,
         'team_id', e.team_id, 'usage', jsonb_build_object('input_tokens', e.input_tokens, 'output_tokens', e.output_tokens),
         'cost_usd', e.cost_usd, 'latency_ms', e.latency_ms,
         'policies_evaluated', jsonb_build_array(jsonb_build_object('name', 'pii-detection', 'result', 'pass', 'latency_ms', 2)))) AS doc
FROM kt_sample_events(100000, 20, 77, '2026-05-25') e;
SELECT * FROM kt_ingest((SELECT doc FROM big));
SELECT count(*) AS big_events, sum(cost_usd) = (SELECT sum(cost_usd) FROM kt_sample_events(100000, 20, 77, '2026-05-25')) AS same_cost,
       (SELECT count(*) FROM policy_evaluations WHERE event_id LIKE 'evt-%') AS big_evaluations
FROM ai_decision_events WHERE id LIKE 'evt-%';
SELECT received, inserted, duplicates FROM kt_ingest((SELECT doc FROM big));

-- quarantined records, once fixed and re-ingested, are deleted by an admin; a writer may not
CREATE ROLE kt_ingest_admin_probe LOGIN IN ROLE kt_governance_admin;
CREATE ROLE kt_ingest_writer_probe LOGIN IN ROLE kt_governance_writer;
SELECT count(*) > 0 AS quarantined_before FROM kt_ingest_errors;
SET ROLE kt_ingest_writer_probe;
SELECT pg_temp.try($$DELETE FROM kt_ingest_errors$$) AS writer_delete;
SET ROLE kt_ingest_admin_probe;
DELETE FROM kt_ingest_errors;
RESET ROLE;
SELECT count(*) AS quarantined_after_admin_delete FROM kt_ingest_errors;
DROP ROLE kt_ingest_admin_probe, kt_ingest_writer_probe;
