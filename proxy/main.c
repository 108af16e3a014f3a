/*
 * samsa: a Kafka-compatible broker that keeps its state in PostgreSQL.
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "proxy/config.h"
#include "proxy/connect.h"
#include "proxy/logging.h"
#include "proxy/registry.h"
#include "proxy/server.h"
#include "storage/store.h"

/*
 * Fetch answers (and large produce frames) are megabytes, allocated and
 * freed once per request.  glibc gave each back to the kernel when freed
 * (unmapped, or trimmed off the heap's top), so the next one was fresh
 * pages: a page fault and a zeroed page per 4 KiB, 45% of samsa's CPU
 * while a consumer read a cached topic.  Now they stay in the heap and
 * are reused; the heap keeps up to 64 MiB free for them.
 */
static void keep_big_buffers(void)
{
#ifdef __GLIBC__
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct event_base *base = arg;
	(void)what;
	log_info("%s: shutting down", strsignal((int)sig));
	event_base_loopbreak(base);
}

int main(int argc, char **argv)
{
	struct config cfg;
	char err[512] = "";
	int rc = config_load(&cfg, argc, argv, err, sizeof(err));
	if (rc != 0) {
		if (rc < 0)
			fprintf(stderr, "samsa: %s\n", err);
		config_free(&cfg);
		return rc < 0 ? 2 : 0;
	}
	signal(SIGPIPE, SIG_IGN);
	keep_big_buffers();

	struct event_base *base = event_base_new();
	if (!base) {
		fprintf(stderr, "samsa: cannot create the event loop\n");
		return 1;
	}
	/* The port first: a port in use is one line, before Postgres. */
	struct server srv = {.base = base, .cfg = &cfg};
	struct store *store = NULL;
	struct event *sigint = NULL, *sigterm = NULL;
	int status = 1;
	if (server_start(&srv, err, sizeof(err)) < 0)
		goto out;
	struct st_options so = {.conninfo = cfg.pg, .schema = "samsa"};
	store = store_open(base, &so, err, sizeof(err));
	if (!store)
		goto out;
	srv.store = store;
	server_accept(&srv);
	if (registry_start(&srv, err, sizeof(err)) < 0 ||
	    connect_start(&srv, err, sizeof(err)) < 0)
		goto out;
	sigint = evsignal_new(base, SIGINT, on_signal, base);
	sigterm = evsignal_new(base, SIGTERM, on_signal, base);
	event_add(sigint, NULL);
	event_add(sigterm, NULL);
	log_info("samsa %s: Kafka on %s:%d (advertised %s:%d), cluster %s",
		 SAMSA_VERSION, cfg.kafka.host, cfg.kafka.port,
		 cfg.advertise.host, cfg.advertise.port,
		 store_cluster_id(store));

	event_base_dispatch(base);
	status = 0;
out:
	if (status != 0)
		fprintf(stderr, "samsa: %s\n", err);
	/* Each stop is a no-op for what never started. */
	connect_stop();
	registry_stop(&srv);
	server_stop(&srv);
	store_close(store);
	if (sigint)
		event_free(sigint);
	if (sigterm)
		event_free(sigterm);
	event_base_free(base);
	config_free(&cfg);
	return status;
}
