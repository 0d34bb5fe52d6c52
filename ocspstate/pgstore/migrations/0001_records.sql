-- Version 1: one row per (issuer, serial), the due-time index, and the
-- per-state counters. {{schema}} is replaced by the quoted schema name.

CREATE TABLE {{schema}}.records (
	-- The key: the issuer's IssuerID and the serial's big-endian magnitude
	-- (no leading zero octet), compared as bytes: the same order as the
	-- bbolt store's keys.
	issuer        bytea       NOT NULL CHECK (length(issuer) = 32),
	serial        bytea       NOT NULL CHECK (length(serial) BETWEEN 1 AND 20),

	-- Hot fields, rewritten by every Update.
	version       bigint      NOT NULL CHECK (version > 0),
	state         smallint    NOT NULL CHECK (state BETWEEN 1 AND 6),
	ocsp_enabled  boolean     NOT NULL,
	ocsp_status   smallint    NOT NULL,
	revoked_at    timestamptz,
	reason        smallint    NOT NULL,
	response      bytea,
	this_update   timestamptz,
	next_update   timestamptz,
	not_before    timestamptz NOT NULL,
	not_after     timestamptz NOT NULL,
	lease_owner   text        NOT NULL,
	lease_expires timestamptz,
	created       timestamptz NOT NULL,
	updated       timestamptz NOT NULL,
	due           timestamptz,

	-- Which store instance Due handed the record to, and until when. Not
	-- part of the Record; every Update clears it.
	claim_owner   text,
	claim_expires timestamptz,

	-- Immutable fields, each written once (CheckTransition forbids
	-- changing them). Kept out of line, uncompressed (DER does not
	-- compress), so that rewriting the hot fields copies a pointer to
	-- them rather than the bytes.
	intent        bytea       NOT NULL,
	precert       bytea,
	scts          bytea[],
	final         bytea,

	PRIMARY KEY (issuer, serial)
) WITH (fillfactor = 80, toast_tuple_target = 256);

ALTER TABLE {{schema}}.records
	ALTER COLUMN intent  SET STORAGE EXTERNAL,
	ALTER COLUMN precert SET STORAGE EXTERNAL,
	ALTER COLUMN scts    SET STORAGE EXTERNAL,
	ALTER COLUMN final   SET STORAGE EXTERNAL,
	ALTER COLUMN response SET STORAGE MAIN;

-- The due-time index: only records that will ever be due are in it.
CREATE INDEX records_due ON {{schema}}.records (due) WHERE due IS NOT NULL;

-- Record counts per state, spread over 64 rows per state so that
-- concurrent transitions rarely wait for each other's counter. Counts sums
-- them.
CREATE TABLE {{schema}}.counts (
	state smallint NOT NULL CHECK (state BETWEEN 1 AND 6),
	shard smallint NOT NULL,
	n     bigint   NOT NULL,
	PRIMARY KEY (state, shard)
) WITH (fillfactor = 50);

INSERT INTO {{schema}}.counts (state, shard, n)
SELECT s, h, 0 FROM generate_series(1, 6) AS s, generate_series(0, 63) AS h;
