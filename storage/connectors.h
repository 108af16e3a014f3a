/*
 * connectors: Kafka Connect's connector configs in Postgres
 * (samsa.connectors), so that connectors resume after a restart, and the
 * queries the change data capture source makes on samsa's own database.
 *
 * All calls but cn_load are made from the event loop; their callbacks run
 * later, from the loop, exactly once.
 */
#ifndef SAMSA_CONNECTORS_H
#define SAMSA_CONNECTORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

struct cn_store;

/*
 * Opens the store's own connection to conninfo and waits (start-up only)
 * until it is up, so the Connect port never answers "not connected" just
 * after it starts listening; base is borrowed for the store's life.  NULL
 * with a reason in err when memory runs out or Postgres did not answer.
 */
struct cn_store *cn_open(struct event_base *base, const char *conninfo,
			 char *err, size_t errlen);
/* Fails the callbacks still pending and frees s. */
void cn_close(struct cn_store *s);

/*
 * Start-up only (blocking): calls fn once per stored connector, in creation
 * order, with its name, its config as JSON text, whether it is paused and
 * whether its snapshot is complete.  Returns 0, or -1 with a one-line reason
 * in err.
 */
int cn_load(const char *conninfo,
	    void (*fn)(void *arg, const char *name, const char *config,
		       bool paused, bool snapshot_done),
	    void *arg, char *err, size_t errlen);

/* err is NULL on success, else why the write failed. */
typedef void (*cn_done_cb)(void *arg, const char *err);

/*
 * Creates or replaces connector name with config (JSON text) and the paused
 * flag; a replaced config keeps nothing of the old one but the creation
 * order.  Strings are copied.
 */
void cn_put(struct cn_store *s, const char *name, const char *config,
	    bool paused, bool reset_snapshot, cn_done_cb cb, void *arg);
void cn_set_paused(struct cn_store *s, const char *name, bool paused,
		   cn_done_cb cb, void *arg);
void cn_set_snapshot_done(struct cn_store *s, const char *name, cn_done_cb cb,
			  void *arg);
void cn_delete(struct cn_store *s, const char *name, cn_done_cb cb, void *arg);

/*
 * The last record batch of partition `partition` of the topic whose
 * internal id is tid (data NULL when the log is empty).  data is valid
 * during the callback only.
 */
typedef void (*cn_batch_cb)(void *arg, const char *err, const uint8_t *data,
			    size_t len);
void cn_last_batch(struct cn_store *s, int32_t tid, int32_t partition,
		   cn_batch_cb cb, void *arg);

#endif
