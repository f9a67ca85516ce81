-- kt_ingest(jsonb) and kt_ingest(text): both vocabularies, nested usage, optional fields,
-- idempotency, every kind of bad record in both modes (content no parser takes: quarantined one
-- record at a time), the acceptance window, and a 100k-event array.
CREATE EXTENSION kt_governance;
\ir _helpers.psql
-- the events below have fixed 2026 dates: the acceptance window (tested at the end, relative to
-- now()) is off until then, so this test passes whatever the date
SET kt_governance.ingest_accept_past = -1;
SET kt_governance.ingest_accept_future = -1;
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
 ('model not a string', '{"id": "x13", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": ["m"], "provider": "p", "gateway_id": "g"}'),
 ('fractional tokens', '{"id": "x14", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "input_tokens": 12.7}'),
 ('cost below a micro-dollar', '{"id": "x15", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "cost_usd": 0.0000004}'),
 ('tokens beyond double precision', '{"id": "x16", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "usage": {"input_tokens": 1e400}}'),
 ('latency beyond double precision', '{"id": "x17", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "latency_ms": -1e999}'),
 ('over-long id', format('{"id": "%s", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}', repeat('x', 5200))::jsonb),
 ('deep nesting', format('{"id": "x18", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "extra": %s%s}', repeat('[', 200), repeat(']', 200))::jsonb),
 ('id of the wrong type', '{"id": true, "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}'),
 ('cost with an exponent numeric cannot take', '{"id": "x19", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "cost_usd": "0e2000000000"}'),
 ('leap second at the end of time', '{"id": "x20", "timestamp": "9999-12-31T23:59:60Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}');
SELECT case_name, pg_temp.try(format('SELECT * FROM kt_ingest(%L::jsonb)',
    jsonb_build_array('{"id": "good-1", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}'::jsonb, record)))
FROM bad_records ORDER BY case_name;
SELECT pg_temp.counts();

-- quarantine: good records stored, bad ones kept with their reason, call succeeds
SELECT * FROM kt_ingest((SELECT jsonb_agg(record) FROM bad_records)
                        || '[{"id": "good-2", "timestamp": "2026-04-07T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}]'::jsonb,
                        mode => 'quarantine');
SELECT record_index, left(event_id, 20) AS event_id, field, left(reason, 90) AS reason FROM kt_ingest_errors ORDER BY record_index;
SELECT pg_temp.counts();

-- content that jsonb (or any JSON parser) refuses for a whole document, sent as text: each is one
-- quarantined record naming its field, the good record beside it is stored; ignored fields are
-- ignored whatever they hold (a huge number there is not a problem); a key given twice is a bad
-- record at any depth of a field kt_ingest reads
SELECT * FROM kt_ingest($$[
  {"id": "t-nul", "timestamp": "2026-04-08T00:00:00Z", "decision": "allowed", "model": "m\u0000x", "provider": "p", "gateway_id": "g"},
  {"id": "t-dup", "timestamp": "2026-04-08T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "decision": "blocked"},
  {"id": "t-huge", "timestamp": "2026-04-08T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "cost_usd": 1e400},
  {"id": "t-eval-nul", "timestamp": "2026-04-08T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g",
   "policies_evaluated": [{"name": "pii", "result": "pass", "note": "a\u0000b"}]},
  {"id": "t-nested-dup", "timestamp": "2026-04-08T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g",
   "usage": {"input_tokens": 3, "input_tokens": 4}},
  {"id": "t-good", "timestamp": "2026-04-08T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g",
   "vendor_extra": 1e400, "vendor_text": "a\u0000b", "vendor_deep": {"a": {"b": [1, 2]}}, "vendor_extra": 2}
]$$::text, mode => 'quarantine');
SELECT record_index, event_id, field, reason, raw ->> 'model' AS raw_model FROM kt_ingest_errors WHERE event_id LIKE 't-%' ORDER BY record_index;
SELECT id, model FROM ai_decision_events WHERE id LIKE 't-%';
-- a null does not hide a value given in the other place; a details value that is not an object
-- is kept as it is
SELECT inserted FROM kt_ingest('{"id": "n-usage", "timestamp": "2026-04-08T00:00:00Z", "decision": "allowed", "model": "m",
  "provider": "p", "gateway_id": "g", "input_tokens": null, "usage": {"input_tokens": 120}, "policies_evaluated": null,
  "policy_evaluations": [{"name": "pii", "result": "flag", "details": "ssn matched"}]}');
SELECT e.input_tokens, pe.policy_name, pe.details FROM ai_decision_events e JOIN policy_evaluations pe ON pe.event_id = e.id
WHERE e.id = 'n-usage';
-- numbers are read as written where a double would change them: two numeric ids beyond 2^64
-- that a double cannot tell apart are two events; a cost or a token count with more digits
-- than a double keeps is refused, not rounded (the text input; jsonb keeps them exactly too)
SELECT inserted, duplicates, quarantined FROM kt_ingest('[
  {"id": 123456789012345678901234, "timestamp": "2026-04-08T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"},
  {"id": 123456789012345678901235, "timestamp": "2026-04-08T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"},
  {"id": "exact-cost", "timestamp": "2026-04-08T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "cost_usd": 0.10000000000000000001},
  {"id": "exact-tokens", "timestamp": "2026-04-08T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "usage": {"input_tokens": 3.0000000000000001}}
]'::text, mode => 'quarantine');
SELECT id FROM ai_decision_events WHERE id LIKE '1234567890123456789012%' ORDER BY id;
SELECT event_id, field, reason FROM kt_ingest_errors WHERE event_id LIKE 'exact-%' ORDER BY event_id;
-- a record too large to keep whole (over 16 MB of JSON; jsonb holds no string over 256 MB) is
-- quarantined cut to its first 10,000 characters, and an evaluation's details over 16 MB are a
-- bad record, not a failed batch; the good record beside them is stored
SELECT inserted, quarantined FROM kt_ingest(format('[
  {"id": "big-raw", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "note": "%s"},
  {"id": "big-details", "timestamp": "2026-04-08T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g",
   "policies_evaluated": [{"name": "pii", "result": "pass", "excerpt": "%s"}]},
  {"id": "big-ok", "timestamp": "2026-04-08T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}]',
  repeat('x', 17000000), repeat('y', 17000000)), mode => 'quarantine');
SELECT event_id, field, reason, jsonb_typeof(raw) AS raw_type, length(raw #>> '{}') < 10100 AS raw_cut
FROM kt_ingest_errors WHERE event_id LIKE 'big-%' ORDER BY event_id;
SELECT id FROM ai_decision_events WHERE id LIKE 'big-%';
-- strict mode names the same record and field, and stores nothing
SELECT pg_temp.try($$SELECT * FROM kt_ingest('[{"id": "s-ok", "timestamp": "2026-04-08T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"},
  {"id": "s-nul", "timestamp": "2026-04-08T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "team_id": "a\u0000"}]')$$);
SELECT count(*) AS strict_stored FROM ai_decision_events WHERE id LIKE 's-%';
-- a document that is not JSON at all is refused as a whole (22P02)
SELECT pg_temp.try($$SELECT * FROM kt_ingest('[{"id": "a"}, {')$$);

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

-- the acceptance window (settings, relative to the transaction's start): an event from 1970 or
-- from year 9999 is a bad record, counted as quarantined, never stored
RESET kt_governance.ingest_accept_past;
RESET kt_governance.ingest_accept_future;
SELECT name, setting, unit FROM pg_settings WHERE name LIKE 'kt_governance.ingest_accept%' ORDER BY name;
SELECT inserted, quarantined FROM kt_ingest(format($$[
  {"id": "w-1970", "timestamp": "1970-01-02T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"},
  {"id": "w-9999", "timestamp": "9999-12-30T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"},
  {"id": "w-skew", "timestamp": "%s", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"},
  {"id": "w-soon", "timestamp": "%s", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}]$$,
  to_char((now() + interval '2 hours') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
  to_char((now() + interval '10 minutes') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')), mode => 'quarantine');
SELECT event_id, field, regexp_replace(reason, '^"[^"]*"', '<timestamp>') AS reason FROM kt_ingest_errors WHERE event_id LIKE 'w-%' ORDER BY event_id;
SELECT array_agg(id ORDER BY id) AS window_stored FROM ai_decision_events WHERE id LIKE 'w-%';
-- a writer cannot widen the window for itself (superuser settings)
CREATE ROLE kt_ingest_window_probe LOGIN IN ROLE kt_governance_writer;
SET ROLE kt_ingest_window_probe;
SELECT pg_temp.try($$SET kt_governance.ingest_accept_past = -1$$) AS writer_widens_window;
RESET ROLE;
DROP ROLE kt_ingest_window_probe;
