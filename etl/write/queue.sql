-- Every statement on the `shards` table (the write stage's work queue and its manifests), used only by
-- etl/write/queue.py. A word in braces is filled in by queue.py before the query runs: a row lock or setting that
-- only PostgreSQL has, or the plan's ranked images.

-- name: add_shards
INSERT INTO shards (plan_id, shard_index, path, state, n_planned)
VALUES (:plan, :index, :path, 'pending', :planned)

-- name: add_members
-- The n-th ranked image (from 1) goes to shard (n - 1) / per at position (n - 1) % per. The rows come in the
-- ranking's order, which is the key's (shard, slot) order, so they are appended after the other plans' rows:
-- no sort and no random insert (migration 0020 dropped the index on image_id, which took them in id order).
INSERT INTO shard_members (shard_id, position, image_id)
SELECT sh.id, (r.n - 1) % :per, r.image_id
FROM ({ranked}) AS r
JOIN shards AS sh ON sh.plan_id = :plan AND sh.shard_index = (r.n - 1) / :per

-- name: fail_exhausted
-- Shards whose lease expired after their last allowed attempt. SQLite runs it before claim_next in the claim's
-- transaction; on PostgreSQL queue.py puts it in claim_next's WITH (see there).
UPDATE shards SET state = 'failed', error = COALESCE(error, 'lease expired (worker lost)')
    || ' after ' || CAST(attempts AS VARCHAR(12)) || ' attempts', claim_token = NULL
WHERE plan_id = :plan AND state = 'claimed' AND lease_until < :now AND attempts >= :max

-- name: claim_next
-- The first pending (or lease-expired) shard. SQLite: no row lock (both words in braces empty), the
-- write transaction (BEGIN IMMEDIATE) already excludes every other writer. PostgreSQL: queue.py composes one
-- statement, `WITH exhausted AS (fail_exhausted RETURNING id) claim_next`, sent alone in autocommit: one round
-- trip per claim instead of five (BEGIN, SET LOCAL, two UPDATEs, COMMIT). The data-modifying WITH runs to
-- completion whether or not it is read; both parts see one snapshot, which is enough, as they touch disjoint
-- rows (attempts at the maximum, attempts below it). The first word skips the rows other workers hold locked;
-- the second is `SET LOCAL synchronous_commit = off` for the statement's own transaction: a claim need not
-- wait for its WAL flush, which a busy server can stall for a quarter of a second (bench/scale at 10M). A claim
-- lost in a server crash is harmless: the worker's renewals and its final commit both check the claim token,
-- and the shard is simply claimed again.
UPDATE shards SET state = 'claimed', claim_token = :token, worker = :worker, claimed_at = :now,
       lease_until = :lease, attempts = attempts + 1
WHERE id = (
    SELECT id FROM shards
    WHERE plan_id = :plan AND attempts < :max
      AND (state = 'pending' OR (state = 'claimed' AND lease_until < :now))
    ORDER BY shard_index LIMIT 1{skip_locked}){no_wal_wait}
RETURNING id, shard_index, path, attempts, n_planned

-- name: renew
UPDATE shards SET lease_until = :lease WHERE id = :id AND claim_token = :token AND state = 'claimed'

-- name: release
UPDATE shards SET state = 'pending', claim_token = NULL, lease_until = NULL, error = :error,
       attempts = attempts - :uncounted
WHERE id = :id AND claim_token = :token AND state = 'claimed'

-- name: fail_attempt
UPDATE shards SET state = CASE WHEN attempts >= :max THEN 'failed' ELSE 'pending' END,
       claim_token = NULL, lease_until = NULL, error = :error
WHERE id = :id AND claim_token = :token AND state = 'claimed'

-- name: lock_own_claim
SELECT id FROM shards WHERE id = :id AND claim_token = :token AND state = 'claimed' {lock}

-- name: clear_image_errors
DELETE FROM image_errors WHERE shard_id = :shard

-- name: record_image_error
INSERT INTO image_errors (image_id, shard_id, stage, reason, planned_position)
VALUES (:image, :shard, 'write', :reason, :slot)

-- name: record_manifest
UPDATE shards SET state = 'done', n_samples = :n_samples, n_bytes = :n_bytes, sha256 = :sha256,
       md5 = :md5, codec = :codec, duration_s = :duration_s, done_at = :done_at, error = NULL,
       lease_until = NULL
WHERE id = :id AND claim_token = :token

-- name: unfinished
-- Shards neither done nor failed, and the earliest lease expiry among the claimed ones.
SELECT COUNT(*), MIN(CASE WHEN state = 'claimed' THEN lease_until END) FROM shards
WHERE plan_id = :plan AND state IN ('pending', 'claimed')

-- name: reset
UPDATE shards SET state = 'pending', attempts = 0, claim_token = NULL, lease_until = NULL,
       n_samples = NULL, n_bytes = NULL, sha256 = NULL, md5 = NULL, codec = NULL, error = :reason
WHERE id = :id

-- name: shard_samples
-- What to write into one shard, in order. `class` is a Python keyword, hence `class_`.
SELECT m.position, i.id AS image_id, i.source, i.path, i.member_offset, i.byte_size, i.eol_content_id,
       i.eol_page_id, i.inat21_filename, i.inat21_cls_name, i.inat21_cls_num, i.bioscan_part,
       i.bioscan_filename,
       t.kingdom, t.phylum, t."class" AS class_, t."order", t.family, t.genus, t.species,
       t.scientific_name, t.taxonomic_name, t.tagged_name, t.common_name,
       t.class_index_kingdom, t.class_index_phylum, t.class_index_class, t.class_index_order,
       t.class_index_family, t.class_index_genus, t.class_index_species, i.source_mtime_ns,
       l.license_key, l.license_name, l.license_link, l.rights_holder, l.source_url
FROM shard_members AS m
JOIN images AS i ON i.id = m.image_id
JOIN taxa AS t ON t.id = i.taxon_id
JOIN image_licenses AS l ON l.image_id = i.id
WHERE m.shard_id = :shard
ORDER BY m.position

-- name: shard_image_errors
SELECT image_id FROM image_errors WHERE shard_id = :shard

-- name: manifests
SELECT id, shard_index, path, state, n_planned, n_samples, n_bytes, sha256, md5
FROM shards WHERE plan_id = :plan ORDER BY shard_index

-- name: status_states
SELECT state, COUNT(*) FROM shards WHERE plan_id = :plan GROUP BY state

-- name: status_written
-- Samples written (by the shards finished since a given time), and the span from the start of the first of those
-- shards to the end of the last one: the one rate `tol status` and the write summary both show.
SELECT COALESCE(SUM(n_samples), 0), MIN(done_at - duration_s), MAX(done_at)
FROM shards WHERE plan_id = :plan AND state = 'done' AND done_at >= :since

-- name: status_workers
SELECT worker, COUNT(*), SUM(n_samples) FROM shards WHERE plan_id = :plan AND state = 'done'
GROUP BY worker ORDER BY worker

-- name: status_failed
SELECT shard_index, attempts, error FROM shards WHERE plan_id = :plan AND state = 'failed' ORDER BY shard_index

-- name: summary_workers
-- Per worker, the shards finished since a run started, their samples, busy seconds and image errors.
SELECT s.worker, COUNT(*), COALESCE(SUM(s.n_samples), 0), COALESCE(SUM(s.duration_s), 0),
       (SELECT COUNT(*) FROM image_errors AS e JOIN shards AS x ON x.id = e.shard_id
        WHERE x.worker = s.worker AND x.plan_id = s.plan_id AND x.state = 'done'
          AND x.done_at >= :since)
FROM shards AS s
WHERE s.plan_id = :plan AND s.state = 'done' AND s.done_at >= :since
GROUP BY s.worker, s.plan_id ORDER BY s.worker

-- name: retry_failed
-- Failed shards back to pending with their attempts forgiven (their last error stays until they are written).
UPDATE shards SET state = 'pending', attempts = 0, claim_token = NULL, lease_until = NULL
WHERE plan_id = :plan AND state = 'failed'

-- name: watch_claims
-- The shards in hand, per worker, with when each was claimed and until when its lease runs (for status --watch).
SELECT worker, shard_index, claimed_at, lease_until FROM shards
WHERE plan_id = :plan AND state = 'claimed' ORDER BY worker, shard_index

-- name: lock_claims
-- PostgreSQL: no claim, renewal or commit until this transaction ends (a migration checking for live claims).
LOCK TABLE shards IN SHARE MODE

-- name: live_claims
-- Claims whose lease has not run out: workers are writing (or were, until less than a lease ago).
SELECT COUNT(*), MIN(worker), MAX(lease_until) FROM shards WHERE state = 'claimed' AND lease_until >= :now
-- name: live_tokens
-- The claim tokens of the plan's shards in hand whose lease still runs (their temporaries are not stale).
SELECT claim_token FROM shards WHERE plan_id = :plan AND state = 'claimed' AND lease_until >= :now

-- name: done_image_errors
-- The image errors of the plan's done shards, for `tol shards repair` to pick those whose cause may have passed.
SELECT s.id, e.reason FROM shards AS s JOIN image_errors AS e ON e.shard_id = s.id
WHERE s.plan_id = :plan AND s.state = 'done' ORDER BY s.shard_index

-- name: repair_reset
-- A done shard back to pending, to be written again in its planned order; its new bytes get a new manifest.
UPDATE shards SET state = 'pending', attempts = 0, claim_token = NULL, lease_until = NULL,
       n_samples = NULL, n_bytes = NULL, sha256 = NULL, md5 = NULL, error = :reason
WHERE id = :id AND state = 'done'
