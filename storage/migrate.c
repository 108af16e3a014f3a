/*
 * migrate: samsa's own schema, as numbered migrations applied in order at
 * start-up.  Several samsa processes may start at once: an advisory lock
 * makes them take turns.  A migration, once released, is never edited; a
 * change is a new entry at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_int.h"

static const char *const migrations[] = {
	/* 1: catalog and log */
	"CREATE TABLE samsa.meta (key text PRIMARY KEY, value text NOT NULL);"
	"CREATE TABLE samsa.topics ("
	"  tid serial PRIMARY KEY,"
	"  topic_id uuid NOT NULL UNIQUE,"
	"  name text NOT NULL UNIQUE,"
	"  partitions int NOT NULL,"
	"  created_at timestamptz NOT NULL DEFAULT now());"
	"CREATE TABLE samsa.topic_configs ("
	"  tid int NOT NULL REFERENCES samsa.topics ON DELETE CASCADE,"
	"  name text NOT NULL,"
	"  value text NOT NULL,"
	"  PRIMARY KEY (tid, name));"
	"CREATE TABLE samsa.partitions ("
	"  tid int NOT NULL REFERENCES samsa.topics ON DELETE CASCADE,"
	"  partition int NOT NULL,"
	"  log_start_offset bigint NOT NULL DEFAULT 0,"
	"  next_offset bigint NOT NULL DEFAULT 0,"
	"  leader_epoch int NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (tid, partition));"
	/* One row per record batch, bytes as the producer sent them with
	 * offsets assigned.  No foreign key: appends must not contend with
	 * catalog changes. */
	"CREATE TABLE samsa.log ("
	"  tid int NOT NULL,"
	"  partition int NOT NULL,"
	"  base_offset bigint NOT NULL,"
	"  last_offset bigint NOT NULL,"
	"  max_timestamp bigint NOT NULL,"
	"  producer_id bigint NOT NULL,"
	"  producer_epoch smallint NOT NULL,"
	"  base_sequence int NOT NULL,"
	"  record_count int NOT NULL,"
	"  bytes int NOT NULL,"
	"  batch bytea NOT NULL,"
	"  PRIMARY KEY (tid, partition, base_offset));"
	/* Batches are often compressed already: do not make Postgres try. */
	"ALTER TABLE samsa.log ALTER COLUMN batch SET STORAGE EXTERNAL;"
	"CREATE SEQUENCE samsa.producer_ids;",
	/* 2: consumer groups (storage/groups.c).  Offsets go with their
	 * topic; metadata bytes are kept as clients sent them. */
	"CREATE TABLE samsa.group_offsets ("
	"  group_id text NOT NULL,"
	"  tid int NOT NULL REFERENCES samsa.topics ON DELETE CASCADE,"
	"  partition int NOT NULL,"
	"  committed_offset bigint NOT NULL,"
	"  leader_epoch int NOT NULL,"
	"  metadata bytea NOT NULL,"
	"  commit_time bigint NOT NULL,"
	"  PRIMARY KEY (group_id, tid, partition));"
	"CREATE INDEX ON samsa.group_offsets (tid);"
	"CREATE TABLE samsa.groups ("
	"  group_id text PRIMARY KEY,"
	"  protocol_type text,"
	"  generation int NOT NULL,"
	"  protocol text,"
	"  leader text,"
	"  updated_at timestamptz NOT NULL DEFAULT now());"
	"CREATE TABLE samsa.group_members ("
	"  group_id text NOT NULL REFERENCES samsa.groups ON DELETE CASCADE,"
	"  member_id text NOT NULL,"
	"  position int NOT NULL,"
	"  instance_id text,"
	"  client_id text NOT NULL,"
	"  client_host text NOT NULL,"
	"  session_timeout int NOT NULL,"
	"  rebalance_timeout int NOT NULL,"
	"  metadata bytea NOT NULL,"
	"  assignment bytea NOT NULL,"
	"  PRIMARY KEY (group_id, member_id));",
	/* 3: transactions (storage/txn.c).  The log keeps each batch's
	 * attributes, so open transactions are found again from the log
	 * itself; aborted transactions are indexed for read_committed
	 * fetches; a transactional id's coordinator state is one row. */
	"ALTER TABLE samsa.log ADD COLUMN attributes smallint NOT NULL "
	"  DEFAULT 0;"
	"CREATE INDEX log_txn ON samsa.log (tid, partition, producer_id,"
	"  base_offset) WHERE (attributes & 48) <> 0;"
	"CREATE TABLE samsa.txn_aborted ("
	"  tid int NOT NULL,"
	"  partition int NOT NULL,"
	"  producer_id bigint NOT NULL,"
	"  first_offset bigint NOT NULL,"
	"  last_offset bigint NOT NULL,"
	"  PRIMARY KEY (tid, partition, last_offset));"
	"CREATE TABLE samsa.transactions ("
	"  transactional_id text PRIMARY KEY,"
	"  producer_id bigint NOT NULL,"
	"  producer_epoch smallint NOT NULL,"
	"  state text NOT NULL,"
	"  timeout_ms int NOT NULL,"
	"  start_time bigint NOT NULL,"
	"  updated_at bigint NOT NULL,"
	"  partitions jsonb NOT NULL," /* [[tid, partition], ...] */
	"  groups jsonb NOT NULL,"     /* [group, ...] */
	"  offsets jsonb NOT NULL);",  /* [[group, tid, partition, offset,
					  leader epoch, metadata], ...] */
	/* 4: the Schema Registry (storage/schemas.c).  Ids come from the
	 * serial so that every samsa on this database agrees on them; a
	 * schema row is never deleted, so an id never changes meaning.
	 * Every change bumps registry_state.generation, which tells each
	 * samsa when its in-memory copy is stale and serialises writers. */
	"CREATE TABLE samsa.schemas ("
	"  id serial PRIMARY KEY,"
	"  schema_type text NOT NULL,"
	"  canonical text NOT NULL,"
	"  original text NOT NULL,"
	"  refs jsonb NOT NULL DEFAULT '[]',"
	"  fingerprint text NOT NULL UNIQUE,"
	"  created_at timestamptz NOT NULL DEFAULT now());"
	"CREATE TABLE samsa.subject_versions ("
	"  subject text NOT NULL,"
	"  version int NOT NULL,"
	"  schema_id int NOT NULL REFERENCES samsa.schemas,"
	"  deleted boolean NOT NULL DEFAULT false,"
	"  PRIMARY KEY (subject, version));"
	/* subject '' is the global setting */
	"CREATE TABLE samsa.registry_config ("
	"  subject text PRIMARY KEY,"
	"  compatibility text,"
	"  mode text);"
	"CREATE TABLE samsa.registry_state ("
	"  one boolean PRIMARY KEY DEFAULT true CHECK (one),"
	"  generation bigint NOT NULL);"
	"INSERT INTO samsa.registry_state VALUES (true, 0);",
	/* 5: Kafka Connect connectors (storage/connectors.c).  Progress of
	 * a change data capture source is not here: it is the LSN header of
	 * the records in the log, written in the same transaction as them. */
	"CREATE TABLE samsa.connectors ("
	"  name text PRIMARY KEY,"
	"  seq bigserial,"
	"  config text NOT NULL,"
	"  paused boolean NOT NULL DEFAULT false,"
	"  snapshot_done boolean NOT NULL DEFAULT false,"
	"  created_at timestamptz NOT NULL DEFAULT now());",
	/* 6: members of consumer-protocol (KIP-848) groups, so that they
	 * carry on across a restart; state is proxy/cgroup.c's own encoding
	 * of one member (epochs, subscription, partitions). */
	"CREATE TABLE samsa.consumer_members ("
	"  group_id text NOT NULL REFERENCES samsa.groups ON DELETE CASCADE,"
	"  member_id text NOT NULL,"
	"  state bytea NOT NULL,"
	"  PRIMARY KEY (group_id, member_id));",
};

#define NMIGRATIONS (int)(sizeof(migrations) / sizeof(migrations[0]))

static int exec(PGconn *conn, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(r);
	int rc = 0;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
		size_t n = strlen(err);
		while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
		rc = -1;
	}
	PQclear(r);
	return rc;
}

static int current_version(PGconn *conn, int *version, char *err, size_t errlen)
{
	PGresult *r = PQexec(conn, "SELECT value FROM samsa.meta "
				   "WHERE key = 'schema_version'");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		/* No meta table yet: a fresh schema. */
		PQclear(r);
		*version = 0;
		return exec(conn, "ROLLBACK TO SAVEPOINT fresh", err, errlen);
	}
	*version = PQntuples(r) ? atoi(PQgetvalue(r, 0, 0)) : 0;
	PQclear(r);
	return 0;
}

int st_migrate(PGconn *conn, char *err, size_t errlen)
{
	int version;

	if (exec(conn, "BEGIN", err, errlen) < 0)
		return -1;
	if (exec(conn, "SELECT pg_advisory_xact_lock(7238467)", err, errlen) <
		    0 ||
	    /* Not CREATE SCHEMA IF NOT EXISTS: that checks the CREATE
	     * privilege on the database first, which a role that was handed
	     * an existing schema need not have. */
	    exec(conn,
		 "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_namespace WHERE "
		 "nspname = 'samsa') THEN CREATE SCHEMA samsa; END IF; END$$",
		 err, errlen) < 0 ||
	    exec(conn, "SAVEPOINT fresh", err, errlen) < 0 ||
	    current_version(conn, &version, err, errlen) < 0)
		goto fail;
	if (version > NMIGRATIONS) {
		snprintf(err, errlen,
			 "schema samsa is at version %d, newer than this "
			 "samsa (%d): upgrade samsa",
			 version, NMIGRATIONS);
		goto fail;
	}
	for (int v = version; v < NMIGRATIONS; v++)
		if (exec(conn, migrations[v], err, errlen) < 0)
			goto fail;
	if (version < NMIGRATIONS) {
		char sql[160];
		snprintf(sql, sizeof(sql),
			 "INSERT INTO samsa.meta VALUES ('schema_version', "
			 "'%d') ON CONFLICT (key) DO UPDATE SET value = "
			 "excluded.value",
			 NMIGRATIONS);
		if (exec(conn, sql, err, errlen) < 0)
			goto fail;
	}
	/* The cluster id is made once, by whoever migrates first. */
	if (exec(conn,
		 "INSERT INTO samsa.meta SELECT 'cluster_id', "
		 "rtrim(translate(encode(decode(md5(random()::text || "
		 "clock_timestamp()::text), 'hex'), 'base64'), '+/', '-_'), "
		 "'=') ON CONFLICT (key) DO NOTHING",
		 err, errlen) < 0)
		goto fail;
	return exec(conn, "COMMIT", err, errlen);
fail:;
	char ignore[8];
	exec(conn, "ROLLBACK", ignore, sizeof(ignore));
	return -1;
}
