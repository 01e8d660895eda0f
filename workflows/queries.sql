-- Queries of the payment domain. Phase 1 and phase 3 of every run each happen in one
-- transaction that starts by locking the payment row (lock order: payment, then run).

-- name: merchant_routing
-- The merchant's settings, with its routing rules in force (NULL: none) in the same round trip.
SELECT m.processor, m.capture_on_create, m.processor_account,
    (SELECT r.rules FROM routing_rules r WHERE r.merchant_id = m.id
     ORDER BY r.version DESC LIMIT 1) AS rules,
    (SELECT a.state FROM processor_accounts a
     WHERE a.merchant_id = m.id AND a.name = m.processor_account) AS account_state
FROM merchants m WHERE m.id = %(merchant_id)s;

-- name: processor_account_kind
SELECT kind, state FROM processor_accounts
WHERE merchant_id = %(merchant_id)s AND name = %(name)s;

-- name: set_processor_account_state
UPDATE processor_accounts a SET state = %(state)s
FROM merchants m
WHERE m.name = %(merchant_name)s AND a.merchant_id = m.id AND a.name = %(account)s
RETURNING a.name;

-- name: save_routing_rules
-- The next version of the merchant's rules (two saving at once: one fails on the key, and says so).
INSERT INTO routing_rules (merchant_id, version, rules, created_by)
SELECT %(merchant_id)s, coalesce(max(version), 0) + 1, %(rules)s, %(created_by)s
FROM routing_rules WHERE merchant_id = %(merchant_id)s
RETURNING version, created_at;

-- name: routing_history
SELECT version, rules, created_by, created_at FROM routing_rules
WHERE merchant_id = %(merchant_id)s ORDER BY version DESC;

-- name: merchant_account_names
SELECT name FROM processor_accounts WHERE merchant_id = %(merchant_id)s;

-- name: find_instrument
-- (A deleted payment method is no longer one: no new payment takes it.)
SELECT network, first6, last4, expiration_month, expiration_year, cardholder_name, mode,
    issuer_country
FROM payment_instruments
WHERE merchant_id = %(merchant_id)s AND token = %(token)s AND deleted_at IS NULL;

-- name: payment_setting
-- What a new payment's phase 1 reads, in one round trip: the merchant's settings with its routing
-- rules in force (NULL: none), and what the gateway keeps of the card behind the token, if it is
-- one of the gateway's tokens (find_instrument's columns; a deleted one is no longer one), and
-- whether that token is single-use (not saved for a customer: use_instrument takes it); and the
-- details of the client session the card was entered in, if it was (and has not expired).
SELECT m.processor, m.capture_on_create, m.processor_account,
    (SELECT r.rules FROM routing_rules r WHERE r.merchant_id = m.id
     ORDER BY r.version DESC LIMIT 1) AS rules,
    (SELECT a.state FROM processor_accounts a
     WHERE a.merchant_id = m.id AND a.name = m.processor_account) AS account_state,
    i.network, i.first6, i.last4, i.expiration_month, i.expiration_year, i.cardholder_name,
    i.mode, i.issuer_country, i.token IS NOT NULL AND i.customer_id IS NULL AS single_use,
    (SELECT s.fields FROM payment_instruments si
     JOIN client_sessions s ON s.merchant_id = si.merchant_id AND s.id = si.client_session
     WHERE si.merchant_id = m.id AND si.token = %(token)s AND si.mode = %(mode)s
       AND s.mode = si.mode AND s.expires_at > now()) AS session_fields
FROM merchants m
LEFT JOIN payment_instruments i
    ON i.merchant_id = m.id AND i.token = %(token)s AND i.deleted_at IS NULL
WHERE m.id = %(merchant_id)s;

-- name: use_instrument
-- A single-use token (not saved for a customer) taken by a payment: locked, so two payments at
-- once cannot both take it. No row: not one of the gateway's single-use tokens.
UPDATE payment_instruments SET used_by = coalesce(used_by, %(payment_id)s)
WHERE merchant_id = %(merchant_id)s AND token = %(token)s AND customer_id IS NULL
RETURNING used_by;

-- name: vault_instrument
-- A vaulted copy of a token for a customer, made once: vaulting it again finds that copy.
INSERT INTO payment_instruments (merchant_id, token, mode, network, first6, last4,
    expiration_month, expiration_year, cardholder_name, issuer_country, customer_id,
    vaulted_from)
SELECT merchant_id, %(vaulted_token)s, mode, network, first6, last4, expiration_month,
    expiration_year, cardholder_name, issuer_country, %(customer_id)s, token
FROM payment_instruments
WHERE merchant_id = %(merchant_id)s AND token = %(token)s AND mode = %(mode)s
  AND deleted_at IS NULL AND vaulted_from IS NULL
ON CONFLICT (merchant_id, vaulted_from) WHERE vaulted_from IS NOT NULL AND deleted_at IS NULL
DO NOTHING;

-- name: vaulted_instrument
-- The vaulted token itself, or the (live) vaulted copy of the token given.
SELECT * FROM payment_instruments
WHERE merchant_id = %(merchant_id)s AND mode = %(mode)s AND customer_id IS NOT NULL
  AND (token = %(token)s OR (vaulted_from = %(token)s AND deleted_at IS NULL))
ORDER BY (token = %(token)s) DESC LIMIT 1;

-- name: lock_customer_instruments
-- (Two defaults made at once for one customer: one waits for the other.)
SELECT token FROM payment_instruments
WHERE merchant_id = %(merchant_id)s AND mode = %(mode)s AND customer_id = %(customer_id)s
FOR UPDATE;

-- name: customer_instruments
SELECT * FROM payment_instruments
WHERE merchant_id = %(merchant_id)s AND mode = %(mode)s AND customer_id = %(customer_id)s
  AND deleted_at IS NULL
ORDER BY created_at;

-- name: delete_instrument
UPDATE payment_instruments SET deleted_at = now(), is_default = false
WHERE merchant_id = %(merchant_id)s AND mode = %(mode)s AND token = %(token)s
  AND customer_id IS NOT NULL AND deleted_at IS NULL
RETURNING *;

-- name: clear_default_instrument
-- (First of the two statements that make a default: the one index allows one per customer.)
UPDATE payment_instruments SET is_default = false
WHERE merchant_id = %(merchant_id)s AND mode = %(mode)s AND customer_id = %(customer_id)s
  AND is_default AND token <> %(token)s;

-- name: make_default_instrument
UPDATE payment_instruments SET is_default = true
WHERE merchant_id = %(merchant_id)s AND mode = %(mode)s AND token = %(token)s
  AND customer_id IS NOT NULL AND deleted_at IS NULL
RETURNING *;

-- name: create_instrument
INSERT INTO payment_instruments (merchant_id, token, mode, network, first6, last4,
    expiration_month, expiration_year, cardholder_name, issuer_country, client_session)
VALUES (%(merchant_id)s, %(token)s, %(mode)s, %(network)s, %(first6)s, %(last4)s,
    %(expiration_month)s, %(expiration_year)s, %(cardholder_name)s, %(issuer_country)s,
    %(client_session)s)
RETURNING created_at;

-- name: insert_payment
-- A new payment, and the SALE of its first attempt, in one statement.
WITH inserted AS (
    INSERT INTO payments (merchant_id, id, mode, status, order_id, currency_code, amount,
        customer_id, customer, order_details, metadata, payment_options, payment_method_token, card_token_type,
        card, card_last4, processor, processor_account, processor_merchant_id, sale_id)
    VALUES (%(merchant_id)s, %(id)s, %(mode)s, 'PENDING', %(order_id)s, %(currency_code)s,
        %(amount)s, %(customer_id)s, %(customer)s, %(order_details)s, %(metadata)s, %(payment_options)s,
        %(payment_method_token)s, %(card_token_type)s, %(card)s, %(card_last4)s, %(processor)s,
        %(processor_account)s, %(processor_merchant_id)s, %(sale_id)s)
    RETURNING *
), sale AS (
    -- The SALE of its first attempt, on the same account (a payment its rule holds has none).
    INSERT INTO transactions (merchant_id, id, payment_id, type, amount, currency_code, order_id,
        processor_status, processor, processor_account)
    SELECT merchant_id, sale_id, id, 'SALE', amount, currency_code, order_id, 'PENDING',
        processor, processor_account
    FROM inserted WHERE sale_id IS NOT NULL
)
SELECT inserted.*, EXISTS (SELECT 1 FROM webhook_endpoints w
                           WHERE w.merchant_id = inserted.merchant_id AND w.mode = inserted.mode
                             AND w.state = 'active') AS webhook_endpoints
FROM inserted;

-- name: lock_payment
SELECT * FROM payments WHERE merchant_id = %(merchant_id)s AND id = %(id)s FOR UPDATE;

-- name: lock_run
-- A run's row, locked after its payment's (phase 3's locked way, before record_outcome).
SELECT 1 FROM workflow_runs WHERE merchant_id = %(merchant_id)s AND id = %(id)s FOR UPDATE;

-- name: place_payment
-- A held payment, authorized on the processor the merchant named: its account and card, as
-- insert_payment would have written them.
UPDATE payments SET processor = %(processor)s, processor_account = %(processor_account)s,
    processor_merchant_id = %(processor_merchant_id)s, card_token_type = %(card_token_type)s,
    card = %(card)s, card_last4 = %(card_last4)s, sale_id = %(sale_id)s, updated_at = now()
WHERE merchant_id = %(merchant_id)s AND id = %(id)s
RETURNING *;

-- name: get_payment
SELECT * FROM payments WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: payment_view
-- A payment as the edge shows it, with its transactions, in one round trip.
SELECT p.*, (
    SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY t.created_at, t.id), '[]'::jsonb)
    FROM transactions t WHERE t.merchant_id = p.merchant_id AND t.payment_id = p.id
) AS transactions
FROM payments p WHERE p.merchant_id = %(merchant_id)s AND p.id = %(id)s;

-- name: get_payment_status
SELECT status FROM payments WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: update_payment
-- Phase 1 reservations and phase 3 outcomes both land here; the CHECK constraints of the table
-- refuse any figure that would pass a limit.
UPDATE payments SET
    status = %(status)s,
    status_reason = %(status_reason)s,
    amount_authorized = %(amount_authorized)s,
    amount_captured = %(amount_captured)s,
    amount_refunded = %(amount_refunded)s,
    capture_reserved = %(capture_reserved)s,
    refund_reserved = %(refund_reserved)s,
    captures_closed = %(captures_closed)s,
    required_action = %(required_action)s,
    updated_at = now()
WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: insert_transaction
INSERT INTO transactions (merchant_id, id, payment_id, type, amount, currency_code, order_id,
    reason, processor_status, processor, processor_account)
VALUES (%(merchant_id)s, %(id)s, %(payment_id)s, %(type)s, %(amount)s, %(currency_code)s,
    %(order_id)s, %(reason)s, %(processor_status)s, %(processor)s, %(processor_account)s);

-- name: lock_capture_event
SELECT id, amount, refunded, refund_reserved FROM transaction_events
WHERE merchant_id = %(merchant_id)s AND payment_id = %(payment_id)s AND id = %(id)s
  AND type = 'CAPTURE_SUCCEEDED'
FOR UPDATE;

-- name: reserve_event_refund
UPDATE transaction_events SET refund_reserved = refund_reserved + %(amount)s
WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: transaction_account
-- The account a run's transaction went to (NULL kind: a row from before 0018, the payment's).
SELECT processor, processor_account FROM transactions
WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: lock_payment_with_sale
-- The payment locked, with its SALE in force as the statement's snapshot saw it: right if the lock
-- was free, but a SALE written while the statement waited for the lock is not seen (READ
-- COMMITTED re-reads only the locked row). The caller takes the SALE's processor id as final only
-- once known (it never changes once set); else it reads the SALE again (sale_transaction).
SELECT p.*, t.id AS sale_transaction_id, t.processor_transaction_id AS sale_processor_id
FROM payments p
LEFT JOIN transactions t ON t.merchant_id = p.merchant_id AND t.id = p.sale_id
WHERE p.merchant_id = %(merchant_id)s AND p.id = %(id)s
FOR UPDATE OF p;

-- name: sale_transaction
-- The SALE in force (the payment names it: an authorization that fell back has several), read
-- after the payment's lock in a statement of its own (its processor id may have just landed).
SELECT id, processor_transaction_id FROM transactions
WHERE merchant_id = %(merchant_id)s AND id = %(sale_id)s;

-- name: insert_run
-- The run, and the first line of its history, in one statement. A run with nothing to send
-- (no lease owner: a held payment's authorization, its cancel) is finished as it is written,
-- with its outcome.
WITH run AS (
    INSERT INTO workflow_runs (merchant_id, id, payment_id, kind, idempotency_key, target,
        request_fingerprint, input, amount, transaction_id, capture_event_id, processor_key,
        state, recovery_point, lease_owner, lease_expires_at, next_attempt_at, outcome)
    VALUES (%(merchant_id)s, %(id)s, %(payment_id)s, %(kind)s, %(idempotency_key)s, %(target)s,
        %(request_fingerprint)s,
        %(input)s, %(amount)s, %(transaction_id)s, %(capture_event_id)s, %(processor_key)s,
        CASE WHEN %(lease_owner)s::text IS NULL THEN 'succeeded' ELSE 'running' END::run_state,
        CASE WHEN %(lease_owner)s::text IS NULL THEN 'finished' ELSE 'call_processor' END,
        %(lease_owner)s,
        CASE WHEN %(lease_owner)s::text IS NOT NULL
            THEN now() + make_interval(secs => %(lease_seconds)s) END,
        CASE WHEN %(lease_owner)s::text IS NOT NULL
            THEN now() + make_interval(secs => %(lease_seconds)s) END,
        %(outcome)s)
    RETURNING *
), started AS (
    INSERT INTO workflow_history (merchant_id, run_id, id, event, detail)
    SELECT merchant_id, id, %(history_id)s, %(event)s, %(history_detail)s FROM run
)
-- With the payment's row version (xmin) as phase 1 leaves it: phase 3 may then write without
-- locking the row first, if it is still that version (record_outcome).
SELECT run.*, (SELECT p.xmin::text FROM payments p
               WHERE p.merchant_id = run.merchant_id AND p.id = run.payment_id) AS payment_version
FROM run;

-- name: find_run_by_idempotency_key
-- A key names one request of the merchant, whatever the operation: its fingerprint (of the
-- operation, the payment and the body) tells a repeat from a reuse.
SELECT r.state, p.id AS payment_id, p.status AS payment_status, r.request_fingerprint
FROM workflow_runs r JOIN payments p ON p.merchant_id = r.merchant_id AND p.id = r.payment_id
WHERE r.merchant_id = %(merchant_id)s AND r.idempotency_key = %(idempotency_key)s;

-- name: run_by_idempotency_key
SELECT * FROM workflow_runs
WHERE merchant_id = %(merchant_id)s AND idempotency_key = %(idempotency_key)s;

-- name: extend_lease
UPDATE workflow_runs SET
    lease_expires_at = now() + make_interval(secs => %(lease_seconds)s),
    next_attempt_at = now() + make_interval(secs => %(lease_seconds)s)
WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND state = 'running'
  AND lease_owner = %(lease_owner)s;

-- name: record_outcome
-- Phase 3 in one statement: the run finishes (or waits again) and its history line is written;
-- everything else is written only if this process still held the run's lease (a rescuer that
-- took the run over records the same answer, got with the same processor key). Parts whose
-- parameters are NULL are skipped.
-- Two ways in. The locked way (version NULL): on the payment row this transaction locked just
-- before. The quick way, straight after phase 1 and on its own (autocommit): `version` is the
-- payment row's version (xmin) as phase 1 left it, and what the caller decided from that row
-- is written only if the row is still that version and free to lock at once (SKIP LOCKED: the
-- statement never waits, so what it reads is current as of the lock), and, if the change is
-- one the merchant's webhooks hear of (notice), only if the merchant has no endpoint to tell
-- (the outbox's events are written the locked way). No row back: the caller takes the locked
-- way, which decides again on the row as it is.
-- Either way the statement waits for no lock (the locked way took the payment's and the run's
-- before, lock_run; the quick way skips): one that waited would commit a change after, say, a
-- webhook endpoint added meanwhile, which its snapshot did not see.
WITH payment AS MATERIALIZED (
    SELECT p.merchant_id FROM payments p
    WHERE p.merchant_id = %(merchant_id)s AND p.id = %(payment_id)s
      AND (%(version)s::xid IS NULL OR (p.xmin = %(version)s::xid
        AND NOT (%(notice)s AND EXISTS (SELECT 1 FROM webhook_endpoints w
                                        WHERE w.merchant_id = %(merchant_id)s
                                          AND w.mode = %(mode)s AND w.state = 'active'))))
    FOR UPDATE SKIP LOCKED
), locked_run AS MATERIALIZED (
    -- After the payment's lock, as every writer of both takes them.
    SELECT r.id FROM workflow_runs r
    WHERE r.merchant_id = %(merchant_id)s AND r.id = %(run_id)s AND EXISTS (SELECT 1 FROM payment)
    FOR UPDATE SKIP LOCKED
), finished AS (
    UPDATE workflow_runs SET
        state = %(state)s::run_state, recovery_point = %(recovery_point)s,
        attempts = attempts + %(attempts)s, outcome = %(outcome)s, last_error = %(last_error)s,
        may_have_reached_processor = may_have_reached_processor OR %(reached)s,
        lease_owner = NULL, lease_expires_at = NULL,
        -- Waiting again: due after the backoff, or at once if an event came meanwhile.
        next_attempt_at = CASE WHEN %(state)s::run_state = 'running'
            THEN now() + CASE WHEN woken THEN interval '0'
                ELSE make_interval(secs => %(retry_after_seconds)s) END END,
        updated_at = now()
    WHERE merchant_id = %(merchant_id)s AND id = %(run_id)s AND state = 'running'
      AND lease_owner = %(lease_owner)s AND EXISTS (SELECT 1 FROM locked_run)
    RETURNING merchant_id, id
), noted AS (
    INSERT INTO workflow_history (merchant_id, run_id, id, event, detail)
    SELECT merchant_id, id, %(history_id)s, %(event)s, %(history_detail)s FROM finished
), paid AS (
    UPDATE payments SET
        status = %(status)s, status_reason = %(status_reason)s, amount = %(amount)s,
        amount_authorized = %(amount_authorized)s, amount_captured = %(amount_captured)s,
        amount_refunded = %(amount_refunded)s, capture_reserved = %(capture_reserved)s,
        refund_reserved = %(refund_reserved)s, captures_closed = %(captures_closed)s,
        required_action = %(required_action)s, updated_at = now()
    WHERE merchant_id = %(merchant_id)s AND id = %(payment_id)s AND %(change_payment)s
      AND EXISTS (SELECT 1 FROM finished)
    RETURNING *
), transacted AS (
    UPDATE transactions SET
        processor_status = coalesce(%(transaction_status)s::payment_status, processor_status),
        status_reason = CASE WHEN %(transaction_status)s::payment_status IS NULL
            THEN status_reason ELSE %(transaction_reason)s END,
        -- The processor's id of a transaction is set once (a follow-up's phase 1 relies on it:
        -- lock_payment_with_sale): a later answer naming another leaves it as it is.
        processor_transaction_id = coalesce(processor_transaction_id, %(processor_transaction_id)s),
        outcome_unknown = %(outcome_unknown)s,
        updated_at = now()
    WHERE merchant_id = %(merchant_id)s AND id = %(transaction_id)s AND %(change_transaction)s
      AND EXISTS (SELECT 1 FROM finished)
    RETURNING *
), evented AS (
    INSERT INTO transaction_events (merchant_id, id, payment_id, transaction_id, type, amount,
        final)
    SELECT merchant_id, %(event_id)s, %(payment_id)s, %(transaction_id)s, %(event_type)s,
        %(event_amount)s, %(event_final)s
    FROM finished WHERE %(event_type)s::text IS NOT NULL
), refund_settled AS (
    UPDATE transaction_events SET
        refund_reserved = refund_reserved - %(capture_released)s,
        refunded = refunded + %(capture_refunded)s
    WHERE merchant_id = %(merchant_id)s AND id = %(capture_event_id)s
      AND %(capture_event_id)s::uuid IS NOT NULL AND EXISTS (SELECT 1 FROM finished)
)
-- Whether the merchant has an endpoint to tell of the change: read here, after the payment's
-- lock was taken (a statement that waited for it would see endpoints as they were before).
-- And, when `view`, the payment as this statement leaves it (payment_view's shape), so that it
-- need not be read back: the rows it changed as they return, the others as they were.
SELECT f.id, EXISTS (SELECT 1 FROM webhook_endpoints w
                     WHERE w.merchant_id = %(merchant_id)s AND w.mode = %(mode)s
                       AND w.state = 'active') AS webhook_endpoints,
    CASE WHEN %(view)s THEN coalesce(
        (SELECT to_jsonb(p) FROM paid p),
        (SELECT to_jsonb(p) FROM payments p
         WHERE p.merchant_id = %(merchant_id)s AND p.id = %(payment_id)s)) END AS payment,
    CASE WHEN %(view)s THEN (
        SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY t.created_at, t.id), '[]'::jsonb)
        FROM (SELECT * FROM transacted
              UNION ALL
              SELECT * FROM transactions t
              WHERE t.merchant_id = %(merchant_id)s AND t.payment_id = %(payment_id)s
                AND NOT EXISTS (SELECT 1 FROM transacted x WHERE x.id = t.id)) t) END
        AS transactions
FROM finished f;

-- name: run_key_age
SELECT greatest(clock_timestamp() - coalesce(key_created_at, created_at), interval '0')
FROM workflow_runs WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: tried_accounts
-- The accounts a payment's authorization has been tried on (each attempt is a SALE).
SELECT DISTINCT coalesce(t.processor_account, t.processor, p.processor_account, p.processor)
FROM transactions t JOIN payments p ON p.merchant_id = t.merchant_id AND p.id = t.payment_id
WHERE t.merchant_id = %(merchant_id)s AND t.payment_id = %(payment_id)s AND t.type = 'SALE';

-- name: next_attempt
-- Phase 3 of an attempt that a soft decline or a definite failure ended, with an account left
-- to try, right after record_outcome in the same transaction: the next attempt's SALE, the
-- payment moved to that account, and the run given the attempt's new processor key. The lease
-- is kept by the process that recorded (it goes on with the attempt) or, given back, the run is
-- due for any worker now.
WITH sale AS (
    INSERT INTO transactions (merchant_id, id, payment_id, type, amount, currency_code,
        order_id, processor_status, processor, processor_account)
    SELECT merchant_id, %(transaction_id)s, id, 'SALE', amount, currency_code, order_id,
        'PENDING', %(processor)s, %(processor_account)s
    FROM payments WHERE merchant_id = %(merchant_id)s AND id = %(payment_id)s
), moved AS (
    UPDATE payments SET processor = %(processor)s, processor_account = %(processor_account)s,
        processor_merchant_id = %(processor_merchant_id)s, sale_id = %(transaction_id)s,
        updated_at = now()
    WHERE merchant_id = %(merchant_id)s AND id = %(payment_id)s
)
UPDATE workflow_runs SET
    transaction_id = %(transaction_id)s, processor_key = %(processor_key)s, key_created_at = now(),
    may_have_reached_processor = false, recoveries = 0, quiet_until = NULL,
    recovery_point = 'call_processor', outcome = NULL, last_error = NULL,
    lease_owner = %(lease_owner)s,
    lease_expires_at = CASE WHEN %(lease_owner)s::text IS NOT NULL
        THEN now() + make_interval(secs => %(lease_seconds)s) END,
    next_attempt_at = CASE WHEN %(lease_owner)s::text IS NOT NULL
        THEN now() + make_interval(secs => %(lease_seconds)s) ELSE now() END,
    updated_at = now()
WHERE merchant_id = %(merchant_id)s AND id = %(run_id)s AND state = 'running'
  AND lease_owner IS NULL
RETURNING *;

-- name: claim_due_runs
-- Any number of workers on any number of machines: each due run goes to exactly one of them.
-- A run whose process died is due when its lease runs out.
WITH due AS (
    SELECT merchant_id, id FROM workflow_runs
    WHERE state = 'running' AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE workflow_runs r SET
    lease_owner = %(lease_owner)s,
    lease_expires_at = now() + make_interval(secs => %(lease_seconds)s),
    next_attempt_at = now() + make_interval(secs => %(lease_seconds)s),
    -- (A turn a processor's event asked for is not a recovery: events do not use them up.)
    recoveries = r.recoveries
        + CASE WHEN r.recovery_point = 'call_processor' AND NOT r.woken THEN 1 ELSE 0 END,
    woken = false,
    -- A lease still held means its process died mid-pass, perhaps after sending its call.
    may_have_reached_processor = r.may_have_reached_processor OR r.lease_owner IS NOT NULL,
    quiet_until = CASE WHEN r.lease_owner IS NULL THEN r.quiet_until
        ELSE greatest(r.quiet_until, r.lease_expires_at + make_interval(secs => %(quiet_seconds)s))
        END,
    updated_at = now()
FROM due WHERE r.merchant_id = due.merchant_id AND r.id = due.id
RETURNING r.*;

-- name: claim_run_for_operator
-- An operator's replay or resolution takes a run that is stuck, or waiting with no holder. Only
-- a replay (which re-sends with the same key, or asks first) takes one whose lease ran out: a
-- resolution may end the run as "did not happen", and a lapsed holder may still be sending (also
-- after another took the run over: until quiet_until).
WITH found AS (
    SELECT merchant_id, id, state AS previous_state FROM workflow_runs
    WHERE id = %(id)s FOR UPDATE
)
UPDATE workflow_runs r SET
    state = 'running',
    may_have_reached_processor = r.may_have_reached_processor OR r.lease_owner IS NOT NULL,
    quiet_until = CASE WHEN r.lease_owner IS NULL THEN r.quiet_until
        ELSE greatest(r.quiet_until, r.lease_expires_at + make_interval(secs => %(quiet_seconds)s))
        END,
    lease_owner = %(lease_owner)s,
    lease_expires_at = now() + make_interval(secs => %(lease_seconds)s),
    next_attempt_at = now() + make_interval(secs => %(lease_seconds)s),
    recoveries = 0,
    updated_at = now()
FROM found
WHERE r.merchant_id = found.merchant_id AND r.id = found.id
  AND (r.state = 'stuck'
       OR (r.state = 'running' AND (r.lease_owner IS NULL
           OR (%(lapsed_lease)s AND r.lease_expires_at < now()))))
  -- A resolution waits until no holder that lost its lease can still be sending.
  AND (%(lapsed_lease)s OR coalesce(r.quiet_until, '-infinity') < now())
RETURNING r.*, found.previous_state;

-- name: mark_stuck
-- Also when an operator's action is given back: whatever it sent counts as perhaps received.
UPDATE workflow_runs SET state = 'stuck', lease_owner = NULL, lease_expires_at = NULL,
    next_attempt_at = NULL, may_have_reached_processor = true, updated_at = now()
WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND lease_owner = %(lease_owner)s;

-- name: release_run
-- A run given back by the one holding it: due for any worker now (and whatever it sent counts
-- as perhaps received).
UPDATE workflow_runs SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = now(),
    may_have_reached_processor = true, updated_at = now()
WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND lease_owner = %(lease_owner)s
  AND state = 'running';

-- name: claim_run_awaiting_action
-- A payment's authorization waiting for the customer (3-D Secure), taken by the request that
-- resumes it (not while a worker holds it).
UPDATE workflow_runs SET lease_owner = %(lease_owner)s,
    lease_expires_at = now() + make_interval(secs => %(lease_seconds)s),
    next_attempt_at = now() + make_interval(secs => %(lease_seconds)s), updated_at = now()
WHERE merchant_id = %(merchant_id)s AND payment_id = %(payment_id)s AND kind = 'authorize'
  AND state = 'running' AND recovery_point = 'await_action'
  -- (a holder whose lease ran out only asked the processor: its answer is asked again)
  AND (lease_owner IS NULL OR lease_expires_at < now())
RETURNING *;

-- name: awaiting_action
SELECT EXISTS (SELECT 1 FROM workflow_runs
    WHERE merchant_id = %(merchant_id)s AND payment_id = %(payment_id)s AND kind = 'authorize'
      AND state = 'running' AND recovery_point = 'await_action');

-- name: append_history
INSERT INTO workflow_history (merchant_id, run_id, id, event, detail)
VALUES (%(merchant_id)s, %(run_id)s, %(history_id)s, %(event)s, %(detail)s);

-- name: get_run
-- With the account its transaction went to (an authorization's: its current attempt's).
SELECT r.*, coalesce(t.processor_account, t.processor) AS account
FROM workflow_runs r
LEFT JOIN transactions t ON t.merchant_id = r.merchant_id AND t.id = r.transaction_id
WHERE r.id = %(id)s;

-- name: run_history
SELECT at, event, detail FROM workflow_history
WHERE merchant_id = %(merchant_id)s AND run_id = %(run_id)s ORDER BY at, id;

-- name: list_runs
SELECT * FROM workflow_runs
WHERE (%(state)s::run_state IS NULL OR state = %(state)s::run_state)
  AND (%(payment_id)s::text IS NULL OR payment_id = %(payment_id)s)
ORDER BY updated_at DESC, id DESC
LIMIT %(limit)s;

-- name: payment_transactions
SELECT * FROM transactions
WHERE merchant_id = %(merchant_id)s AND payment_id = %(payment_id)s ORDER BY created_at, id;

-- name: payment_events
SELECT * FROM transaction_events
WHERE merchant_id = %(merchant_id)s AND payment_id = %(payment_id)s ORDER BY created_at, id;

-- name: list_payments
-- Primer's filters; a NULL parameter means "no filter". Keyset pagination on (created_at, id):
-- forward pages walk down from the cursor, backward pages walk up and are reversed by the caller.
SELECT * FROM payments
WHERE merchant_id = %(merchant_id)s
  AND (%(statuses)s::payment_status[] IS NULL OR status = ANY (%(statuses)s::payment_status[]))
  AND (%(currencies)s::text[] IS NULL OR currency_code = ANY (%(currencies)s::text[]))
  AND (%(order_id)s::text IS NULL OR order_id = %(order_id)s)
  AND (%(customer_ids)s::text[] IS NULL OR customer_id = ANY (%(customer_ids)s::text[]))
  AND (%(from_date)s::timestamptz IS NULL OR created_at >= %(from_date)s)
  AND (%(to_date)s::timestamptz IS NULL OR created_at <= %(to_date)s)
  AND (%(min_amount)s::bigint IS NULL OR amount >= %(min_amount)s)
  AND (%(max_amount)s::bigint IS NULL OR amount <= %(max_amount)s)
  AND (%(processors)s::text[] IS NULL OR processor = ANY (%(processors)s::text[]))
  AND (%(last4s)s::text[] IS NULL OR card_last4 = ANY (%(last4s)s::text[]))
  AND (%(after_at)s::timestamptz IS NULL OR (created_at, id) < (%(after_at)s, %(after_id)s::text))
  AND (%(before_at)s::timestamptz IS NULL OR (created_at, id) > (%(before_at)s, %(before_id)s::text))
ORDER BY
    CASE WHEN %(before_at)s::timestamptz IS NULL THEN created_at END DESC,
    CASE WHEN %(before_at)s::timestamptz IS NULL THEN id END DESC,
    CASE WHEN %(before_at)s::timestamptz IS NOT NULL THEN created_at END ASC,
    CASE WHEN %(before_at)s::timestamptz IS NOT NULL THEN id END ASC
LIMIT %(limit)s;

-- name: configure_merchant
UPDATE merchants SET
    processor = coalesce(%(processor)s::text, processor),
    processor_account = CASE WHEN %(processor)s::text IS NULL
        THEN processor_account END,
    capture_on_create = coalesce(%(capture_on_create)s, capture_on_create)
WHERE name = %(name)s
RETURNING id, name, coalesce(processor_account, processor::text), capture_on_create;

-- name: add_processor_account
INSERT INTO processor_accounts (merchant_id, name, kind, settings, secret_ciphertext,
    secret_key_id)
VALUES (%(merchant_id)s, %(name)s, %(kind)s, %(settings)s, %(secret_ciphertext)s,
    %(secret_key_id)s);

-- name: lock_processor_account
SELECT 1 FROM processor_accounts WHERE merchant_id = %(merchant_id)s AND name = %(name)s
FOR UPDATE;

-- name: find_processor_account
SELECT kind, settings, secret_ciphertext, secret_key_id FROM processor_accounts
WHERE merchant_id = %(merchant_id)s AND name = %(name)s;

-- name: accounts_to_rotate
-- Every account not sealed under the current master key in the current format, locked while it
-- is re-sealed.
SELECT merchant_id, name, kind, settings, secret_ciphertext, secret_key_id
FROM processor_accounts
WHERE (secret_key_id IS DISTINCT FROM %(key_id)s
       OR substring(secret_ciphertext FROM 1 FOR 3) <> %(format)s::bytea)
  AND octet_length(secret_ciphertext) > 0  -- a kind without secrets (sandbox) has nothing sealed
  AND (%(merchant_id)s::text IS NULL OR merchant_id = %(merchant_id)s)
ORDER BY merchant_id, name
FOR UPDATE;

-- name: reseal_processor_account
UPDATE processor_accounts SET secret_ciphertext = %(secret_ciphertext)s,
    secret_key_id = %(secret_key_id)s
WHERE merchant_id = %(merchant_id)s AND name = %(name)s;

-- name: list_processor_accounts
SELECT m.name, a.name, a.kind, a.settings, a.created_at, a.state
FROM processor_accounts a JOIN merchants m ON m.id = a.merchant_id
ORDER BY m.name, a.name;

-- name: route_merchant_to_account
-- Routes a merchant to one of its processor accounts; no row when it has no such account.
UPDATE merchants m SET processor = a.kind, processor_account = a.name
FROM processor_accounts a
WHERE m.name = %(merchant_name)s AND a.merchant_id = m.id AND a.name = %(account)s
RETURNING m.id, m.name, a.name, m.capture_on_create;

-- name: bench_check_figures
-- For the benchmark: how many captured payments of a merchant, and how many whose figures differ
-- from the sum of their capture events and settled refunds.
WITH captured AS (
    SELECT id, amount_captured, amount_refunded FROM payments
    WHERE merchant_id = %(merchant_id)s AND amount_captured > 0
), events AS (
    SELECT payment_id, sum(amount) AS captured FROM transaction_events
    WHERE merchant_id = %(merchant_id)s AND type = 'CAPTURE_SUCCEEDED' GROUP BY payment_id
), refunds AS (
    SELECT payment_id, sum(amount) AS refunded FROM transactions
    WHERE merchant_id = %(merchant_id)s AND type = 'REFUND' AND processor_status = 'SETTLED'
    GROUP BY payment_id
)
SELECT count(*),
       count(*) FILTER (WHERE c.amount_captured <> coalesce(e.captured, 0)
                           OR c.amount_refunded <> coalesce(r.refunded, 0))
FROM captured c
LEFT JOIN events e ON e.payment_id = c.id
LEFT JOIN refunds r ON r.payment_id = c.id;

-- name: create_merchant
INSERT INTO merchants (id, name) VALUES (%(id)s, %(name)s)
RETURNING id, name, created_at;

-- name: find_merchant_by_name
SELECT id, name, created_at FROM merchants WHERE name = %(name)s;

-- name: list_merchants
SELECT m.id, m.name, coalesce(m.processor_account, m.processor) AS processor,
       m.capture_on_create, m.created_at,
       coalesce((SELECT array_agg(a.name || ' (' || a.kind || ')' ORDER BY a.name)
                 FROM processor_accounts a WHERE a.merchant_id = m.id), '{}') AS accounts,
       (SELECT count(*) FROM api_keys k
        WHERE k.merchant_id = m.id AND k.revoked_at IS NULL)::int AS active_keys
FROM merchants m
WHERE %(name)s::text IS NULL OR m.name = %(name)s
ORDER BY m.name;

-- name: remove_processor_account
-- Removes an account no payment has used (their follow-ups would need it); no row otherwise.
DELETE FROM processor_accounts a
USING merchants m
WHERE m.name = %(merchant_name)s AND a.merchant_id = m.id AND a.name = %(account)s
  AND NOT EXISTS (
      SELECT 1 FROM payments p WHERE p.merchant_id = a.merchant_id AND p.processor_account = a.name)
RETURNING a.name;

-- name: processor_account_payments
SELECT count(*)::int FROM payments p JOIN merchants m ON m.id = p.merchant_id
WHERE m.name = %(merchant_name)s AND p.processor_account = %(account)s;


-- ---------------------------------------------------------------- webhooks out

-- name: add_webhook_endpoint
INSERT INTO webhook_endpoints (merchant_id, id, mode, url, description, secret_ciphertext,
    secret_key_id)
VALUES (%(merchant_id)s, %(id)s, %(mode)s, %(url)s, %(description)s, %(secret_ciphertext)s,
    %(secret_key_id)s)
RETURNING *;

-- name: list_webhook_endpoints
SELECT * FROM webhook_endpoints
WHERE %(merchant_id)s::text IS NULL OR merchant_id = %(merchant_id)s
ORDER BY merchant_id, created_at;

-- name: set_webhook_endpoint_state
UPDATE webhook_endpoints SET state = %(state)s
WHERE merchant_id = %(merchant_id)s AND id = %(id)s
RETURNING *;

-- name: lock_webhook_endpoint
SELECT * FROM webhook_endpoints WHERE merchant_id = %(merchant_id)s AND id = %(id)s FOR UPDATE;

-- name: rotate_webhook_secret
UPDATE webhook_endpoints SET
    previous_ciphertext = secret_ciphertext, previous_key_id = secret_key_id,
    secret_ciphertext = %(secret_ciphertext)s, secret_key_id = %(secret_key_id)s,
    rotated_at = now()
WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: webhook_endpoint_secrets
SELECT mode, url, secret_ciphertext, secret_key_id, previous_ciphertext, previous_key_id,
    coalesce(rotated_at > now() - interval '24 hours', false) AS previous_fresh
FROM webhook_endpoints WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: webhook_endpoints_to_reseal
SELECT * FROM webhook_endpoints
WHERE (secret_key_id IS DISTINCT FROM %(key_id)s
       OR (previous_ciphertext IS NOT NULL AND previous_key_id IS DISTINCT FROM %(key_id)s))
  AND (%(merchant_id)s::text IS NULL OR merchant_id = %(merchant_id)s)
ORDER BY merchant_id, id
FOR UPDATE;

-- name: reseal_webhook_endpoint
UPDATE webhook_endpoints SET secret_ciphertext = %(secret_ciphertext)s,
    secret_key_id = %(secret_key_id)s, previous_ciphertext = %(previous_ciphertext)s,
    previous_key_id = %(previous_key_id)s
WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: has_webhook_endpoints
SELECT EXISTS (SELECT 1 FROM webhook_endpoints
               WHERE merchant_id = %(merchant_id)s AND mode = %(mode)s AND state = 'active');

-- name: emit_webhook_event
-- The event, next in its payment's sequence (the payment is locked: no two at once), and a
-- delivery to each active endpoint of the payment's mode, due now.
WITH event AS (
    INSERT INTO webhook_events (merchant_id, id, payment_id, sequence, type, snapshot,
        transaction_id)
    SELECT %(merchant_id)s, %(id)s, %(payment_id)s, coalesce(max(sequence), 0) + 1, %(type)s,
        %(snapshot)s, %(transaction_id)s
    FROM webhook_events WHERE merchant_id = %(merchant_id)s AND payment_id = %(payment_id)s
    RETURNING merchant_id, id, payment_id, sequence
)
INSERT INTO webhook_deliveries (merchant_id, event_id, endpoint_id, payment_id, sequence,
    next_attempt_at)
SELECT e.merchant_id, e.id, w.id, e.payment_id, e.sequence, now()
FROM event e JOIN webhook_endpoints w ON w.merchant_id = e.merchant_id
WHERE w.mode = %(mode)s AND w.state = 'active';

-- name: claim_webhook_deliveries
-- Any number of workers: each due delivery goes to one, for `lease_seconds` (then it is due
-- again). A payment's deliveries to an endpoint go in order: one waits while an earlier one is
-- pending (being tried, or to be tried again); a dead-lettered one no longer holds the rest.
WITH due AS (
    SELECT d.merchant_id, d.event_id, d.endpoint_id FROM webhook_deliveries d
    WHERE d.state = 'pending' AND d.next_attempt_at <= now()
      -- A disabled endpoint is sent nothing: its deliveries wait until it is enabled again.
      AND EXISTS (SELECT 1 FROM webhook_endpoints w
                  WHERE w.merchant_id = d.merchant_id AND w.id = d.endpoint_id
                    AND w.state = 'active')
      AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries e
          WHERE e.merchant_id = d.merchant_id AND e.endpoint_id = d.endpoint_id
            AND e.payment_id = d.payment_id AND e.sequence < d.sequence AND e.state = 'pending')
    ORDER BY d.next_attempt_at
    LIMIT %(limit)s
    FOR UPDATE OF d SKIP LOCKED
), claimed AS (
    UPDATE webhook_deliveries d SET
        next_attempt_at = now() + make_interval(secs => %(lease_seconds)s),
        first_attempt_at = coalesce(d.first_attempt_at, now()),
        attempts = d.attempts + 1,
        claim = gen_random_uuid()
    FROM due
    WHERE d.merchant_id = due.merchant_id AND d.event_id = due.event_id
      AND d.endpoint_id = due.endpoint_id
    RETURNING d.*
)
SELECT c.merchant_id, c.event_id, c.endpoint_id, c.payment_id, c.sequence, c.attempts,
    c.claim, c.first_attempt_at, e.type, e.snapshot, e.transaction_id, w.url, w.mode, w.description
FROM claimed c
JOIN webhook_events e ON e.merchant_id = c.merchant_id AND e.id = c.event_id
JOIN webhook_endpoints w ON w.merchant_id = c.merchant_id AND w.id = c.endpoint_id;

-- name: delivery_age
SELECT clock_timestamp() - first_attempt_at FROM webhook_deliveries
WHERE merchant_id = %(merchant_id)s AND event_id = %(event_id)s
  AND endpoint_id = %(endpoint_id)s;

-- name: record_webhook_attempt
-- The attempt (numbered by its claim), and the delivery's outcome if that claim is still the
-- latest (one that outlived its claim was followed by another attempt, which decides).
WITH attempt AS (
    INSERT INTO webhook_attempts (merchant_id, event_id, endpoint_id, number, status_code,
        latency_ms, error, answer)
    VALUES (%(merchant_id)s, %(event_id)s, %(endpoint_id)s, %(number)s, %(status_code)s,
        %(latency_ms)s, %(error)s, %(answer)s)
)
UPDATE webhook_deliveries SET
    state = %(state)s,
    claim = NULL,
    next_attempt_at = CASE WHEN %(state)s = 'pending'
        THEN now() + make_interval(secs => %(retry_after_seconds)s) END,
    finished_at = CASE WHEN %(state)s = 'pending' THEN NULL ELSE now() END
WHERE merchant_id = %(merchant_id)s AND event_id = %(event_id)s
  AND endpoint_id = %(endpoint_id)s AND claim = %(claim)s AND state = 'pending';

-- name: list_webhook_deliveries
SELECT d.merchant_id, d.event_id, d.endpoint_id, d.payment_id, d.sequence, e.type, d.state,
    d.attempts, d.next_attempt_at, d.created_at, d.finished_at
FROM webhook_deliveries d
JOIN webhook_events e ON e.merchant_id = d.merchant_id AND e.id = d.event_id
WHERE (%(merchant_id)s::text IS NULL OR d.merchant_id = %(merchant_id)s)
  AND (%(endpoint_id)s::uuid IS NULL OR d.endpoint_id = %(endpoint_id)s)
  AND (%(payment_id)s::text IS NULL OR d.payment_id = %(payment_id)s)
  AND (%(state)s::text IS NULL OR d.state = %(state)s)
ORDER BY d.created_at DESC, d.sequence DESC
LIMIT %(limit)s;

-- name: webhook_attempts
SELECT number, at, status_code, latency_ms, error, answer FROM webhook_attempts
WHERE merchant_id = %(merchant_id)s AND event_id = %(event_id)s
  AND endpoint_id = %(endpoint_id)s
ORDER BY number;

-- name: redeliver_webhooks
-- Not one being sent right now (claimed, its claim not run out): it is on its way already.
UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = now(),
    first_attempt_at = NULL, finished_at = NULL
WHERE (%(merchant_id)s::text IS NULL OR merchant_id = %(merchant_id)s)
  AND NOT (state = 'pending' AND claim IS NOT NULL AND next_attempt_at > now())
  AND ((%(event_id)s::uuid IS NOT NULL AND event_id = %(event_id)s)
       OR (%(failed_since)s::timestamptz IS NOT NULL AND state = 'dead'
           AND finished_at >= %(failed_since)s))
RETURNING event_id;

-- ---------------------------------------------------------------- processor events in

-- name: record_processor_event
INSERT INTO processor_events (merchant_id, account, id, type)
VALUES (%(merchant_id)s, %(account)s, %(id)s, %(type)s)
ON CONFLICT DO NOTHING
RETURNING id;

-- name: wake_runs_for_processor_event
-- The open runs of the account's payments that the event concerns: by our processor key or
-- payment id echoed in its metadata, or by the processor's id of one of the payment's
-- transactions. Due now (one held now: as soon as its holder lets it go): the worker asks the
-- processor and applies its answer.
UPDATE workflow_runs r SET woken = true, updated_at = now(),
    next_attempt_at = CASE WHEN r.lease_owner IS NULL THEN now() ELSE r.next_attempt_at END
FROM payments p
WHERE r.merchant_id = %(merchant_id)s AND r.state = 'running'
  AND p.merchant_id = r.merchant_id AND p.id = r.payment_id
  AND p.processor_account = %(account)s
  AND (r.processor_key = %(processor_key)s
       OR p.id = %(payment_id)s
       OR EXISTS (SELECT 1 FROM transactions t
                  WHERE t.merchant_id = p.merchant_id AND t.payment_id = p.id
                    AND t.processor_transaction_id = %(object_id)s))
RETURNING r.id;

-- ---------------------------------------------------------------- client sessions

-- name: create_client_session
INSERT INTO client_sessions (merchant_id, id, mode, token_hash, fields, expires_at)
VALUES (%(merchant_id)s, %(id)s, %(mode)s, %(token_hash)s, %(fields)s,
    now() + make_interval(secs => %(ttl_seconds)s))
RETURNING *;

-- name: find_client_session
SELECT * FROM client_sessions
WHERE merchant_id = %(merchant_id)s AND mode = %(mode)s AND token_hash = %(token_hash)s
  AND expires_at > now();

-- name: lock_client_session
SELECT * FROM client_sessions
WHERE merchant_id = %(merchant_id)s AND mode = %(mode)s AND token_hash = %(token_hash)s
  AND expires_at > now()
FOR UPDATE;

-- name: update_client_session
UPDATE client_sessions SET fields = %(fields)s, updated_at = now()
WHERE merchant_id = %(merchant_id)s AND id = %(id)s
RETURNING *;
