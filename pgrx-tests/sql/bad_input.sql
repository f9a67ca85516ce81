-- Bad rows are refused with the right SQLSTATE and leave both tables as they were.
CREATE EXTENSION kt_governance;
\ir _helpers.psql
SELECT partition_name FROM kt_create_partitions('2026-01-01', '2026-02-01');

INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, cost_usd, latency_ms)
VALUES ('evt-1', '2026-01-10 12:00:00+00', 'allowed', 'gpt-4o', 'openai', 'gw-1', 0.001, 120);
INSERT INTO policy_evaluations (event_id, event_timestamp, policy_name, result)
SELECT id, "timestamp", 'pii-detection', 'pass' FROM ai_decision_events;
SELECT pg_temp.counts();
SELECT count(*) AS dated_rows_elsewhere FROM ai_decision_events WHERE tableoid <> 'events_2026_01'::regclass;

CREATE TEMP TABLE catalogue (case_name text, stmt text);
INSERT INTO catalogue VALUES
 ('unknown decision', $$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id) VALUES ('b1', '2026-01-10 13:00:00+00', 'maybe', 'm', 'p', 'g')$$),
 ('verdict vocabulary in the table', $$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id) VALUES ('b2', '2026-01-10 13:00:00+00', 'allow', 'm', 'p', 'g')$$),
 ('negative input tokens', $$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, input_tokens) VALUES ('b3', '2026-01-10 13:00:00+00', 'allowed', 'm', 'p', 'g', -1)$$),
 ('negative output tokens', $$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, output_tokens) VALUES ('b4', '2026-01-10 13:00:00+00', 'allowed', 'm', 'p', 'g', -5)$$),
 ('negative cost', $$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, cost_usd) VALUES ('b5', '2026-01-10 13:00:00+00', 'allowed', 'm', 'p', 'g', -0.01)$$),
 ('cost beyond numeric(12,6)', $$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, cost_usd) VALUES ('b6', '2026-01-10 13:00:00+00', 'allowed', 'm', 'p', 'g', 1234567.5)$$),
 ('negative latency', $$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, latency_ms) VALUES ('b7', '2026-01-10 13:00:00+00', 'allowed', 'm', 'p', 'g', -3)$$),
 ('NULL timestamp', $$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id) VALUES ('b8', NULL, 'allowed', 'm', 'p', 'g')$$),
 ('infinite timestamp', $$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id) VALUES ('b9', 'infinity', 'allowed', 'm', 'p', 'g')$$),
 ('-infinite timestamp', $$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id) VALUES ('b10', '-infinity', 'allowed', 'm', 'p', 'g')$$),
 ('NULL id', $$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id) VALUES (NULL, '2026-01-10 13:00:00+00', 'allowed', 'm', 'p', 'g')$$),
 ('empty id', $$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id) VALUES ('', '2026-01-10 13:00:00+00', 'allowed', 'm', 'p', 'g')$$),
 ('NULL model', $$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id) VALUES ('b11', '2026-01-10 13:00:00+00', 'allowed', NULL, 'p', 'g')$$),
 ('NULL gateway', $$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id) VALUES ('b12', '2026-01-10 13:00:00+00', 'allowed', 'm', 'p', NULL)$$),
 ('duplicate (id, timestamp)', $$INSERT INTO ai_decision_events SELECT * FROM ai_decision_events WHERE id = 'evt-1'$$),
 ('batch with one bad row', $$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id) VALUES ('b13', '2026-01-10 13:00:00+00', 'allowed', 'm', 'p', 'g'), ('b14', '2026-01-10 13:00:00+00', 'nope', 'm', 'p', 'g')$$),
 ('evaluation for a missing event', $$INSERT INTO policy_evaluations (event_id, event_timestamp, policy_name, result) VALUES ('no-such-event', '2026-01-10 13:00:00+00', 'p', 'pass')$$),
 ('evaluation with the wrong event timestamp', $$INSERT INTO policy_evaluations (event_id, event_timestamp, policy_name, result) SELECT id, "timestamp" + interval '1 second', 'p', 'pass' FROM ai_decision_events WHERE id = 'evt-1'$$),
 ('result outside the set', $$INSERT INTO policy_evaluations (event_id, event_timestamp, policy_name, result) SELECT id, "timestamp", 'p', 'allow' FROM ai_decision_events WHERE id = 'evt-1'$$),
 ('NULL policy name', $$INSERT INTO policy_evaluations (event_id, event_timestamp, policy_name, result) SELECT id, "timestamp", NULL, 'pass' FROM ai_decision_events WHERE id = 'evt-1'$$),
 ('negative evaluation latency', $$INSERT INTO policy_evaluations (event_id, event_timestamp, policy_name, result, latency_ms) SELECT id, "timestamp", 'p', 'pass', -1 FROM ai_decision_events WHERE id = 'evt-1'$$),
 ('explicit identity id', $$INSERT INTO policy_evaluations (id, event_id, event_timestamp, policy_name, result) SELECT 1, id, "timestamp", 'p', 'pass' FROM ai_decision_events WHERE id = 'evt-1'$$),
 ('details that are not JSON', $$INSERT INTO policy_evaluations (event_id, event_timestamp, policy_name, result, details) SELECT id, "timestamp", 'p', 'pass', '{bad' FROM ai_decision_events WHERE id = 'evt-1'$$),
 ('tokens that are not numbers', $$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, input_tokens) VALUES ('b15', '2026-01-10 13:00:00+00', 'allowed', 'm', 'p', 'g', 'many')$$),
 ('updating a decision to junk', $$UPDATE ai_decision_events SET decision = 'junk' WHERE id = 'evt-1'$$),
 ('COPY with one bad row', $$COPY ai_decision_events (id, "timestamp", decision, model, provider, gateway_id) FROM PROGRAM 'printf "c1\t2026-01-10 00:00:00+00\tallowed\tm\tp\tg\nc2\tnot-a-date\tallowed\tm\tp\tg\n"'$$);
SELECT case_name, pg_temp.try(stmt) AS outcome FROM catalogue ORDER BY case_name;
-- nothing changed
SELECT pg_temp.counts();
SELECT count(*) AS catalogue_cases FROM catalogue;

-- no evaluation outlives its event: deleting an event that has evaluations is refused, as
-- is moving it to another time; deleting the evaluations first works
SELECT pg_temp.try($$DELETE FROM ai_decision_events WHERE id = 'evt-1'$$);
SELECT pg_temp.try($$UPDATE ai_decision_events SET "timestamp" = "timestamp" + interval '40 days' WHERE id = 'evt-1'$$);
SELECT pg_temp.counts();
DELETE FROM policy_evaluations WHERE event_id = 'evt-1';
DELETE FROM ai_decision_events WHERE id = 'evt-1';
SELECT pg_temp.counts();
