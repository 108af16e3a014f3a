/*
 * slotdrop: slot.drop.on.stop, Debezium's option to drop a connector's
 * replication slot when the connector stops for good, so that Postgres
 * may recycle the WAL the slot held (meant for development: changes made
 * while no slot exists are never captured).
 *
 * The slot can be dropped only once its walsender has let go of it, a
 * moment after the replication connection closed, and a stopping samsa
 * has no loop left to wait on: each drop runs on a thread of its own,
 * with blocking libpq, and samsa waits for those threads as it exits.
 */
#ifndef SAMSA_STORAGE_SLOTDROP_H
#define SAMSA_STORAGE_SLOTDROP_H

/*
 * Drops slot through a new connection made with kw/val (as
 * PQconnectdbParams takes them, expand_dbname 0; copied), waiting up to
 * 10 s for the slot to become inactive.  Logs the outcome to stderr under
 * the connector's name.  Returns 0, or -1 when no thread could start (it
 * says so on stderr).
 */
int slot_drop_start(const char *const *kw, const char *const *val,
		    const char *slot, const char *connector);

/* Waits until every drop started has ended, at most timeout_ms; returns
 * how many are still running. */
int slot_drop_wait(int timeout_ms);

#endif
