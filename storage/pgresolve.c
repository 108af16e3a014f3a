/*
 * Postgres host names looked up off the event loop: a detached thread per
 * lookup runs getaddrinfo (the resolver libpq itself would use, with
 * /etc/hosts, nsswitch and resolv.conf) and signals the loop through a
 * socket pair.  The lookup is shared by the thread and the loop and freed
 * by whichever lets go of it last, so that a cancelled lookup needs no
 * wait for a resolver that may hang.
 */
#include "storage/pgresolve.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libpq-fe.h>

#define MAX_ADDRS 8 /* libpq tries them in turn, as it would its own */

struct pg_resolve {
	atomic_int refs; /* the thread's and the loop's */
	int fds[2];	 /* [0] the loop's, [1] the thread's */
	struct event *ev;
	pg_resolved_fn done;
	void *arg;
	char name[256];
	/* Written by the thread before it sets ready and signals. */
	atomic_bool ready;
	char host[MAX_ADDRS * 256];
	char hostaddr[MAX_ADDRS * (INET6_ADDRSTRLEN + 1)];
	char err[512];
};

static void release(struct pg_resolve *r)
{
	if (atomic_fetch_sub(&r->refs, 1) == 1)
		free(r);
}

bool pg_numeric_host(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, host, buf) == 1 ||
	       inet_pton(AF_INET6, host, buf) == 1;
}

/* The host libpq would resolve for these options, into name; false when
 * there is none (see pg_resolve_start).  Later options override earlier
 * ones, as in libpq; only the first dbname is expanded; an option not
 * given comes from libpq's environment variable (PGHOST, PGHOSTADDR,
 * PGPORT). */
static bool name_to_look_up(const char *const *kw, const char *const *val,
			    int expand_dbname, char *name, size_t len)
{
	const char *host = NULL, *hostaddr = NULL, *port = NULL;
	PQconninfoOption *parsed = NULL;
	bool expanded = false;
	for (int i = 0; kw[i]; i++) {
		if (!val[i] || !*val[i])
			continue;
		if (strcmp(kw[i], "dbname") == 0 && expand_dbname &&
		    !expanded) {
			expanded = true;
			parsed = PQconninfoParse(val[i], NULL);
			for (PQconninfoOption *p = parsed; p && p->keyword;
			     p++) {
				if (!p->val || !*p->val)
					continue;
				if (strcmp(p->keyword, "host") == 0)
					host = p->val;
				else if (strcmp(p->keyword, "hostaddr") == 0)
					hostaddr = p->val;
				else if (strcmp(p->keyword, "port") == 0)
					port = p->val;
			}
		} else if (strcmp(kw[i], "host") == 0) {
			host = val[i];
		} else if (strcmp(kw[i], "hostaddr") == 0) {
			hostaddr = val[i];
		} else if (strcmp(kw[i], "port") == 0) {
			port = val[i];
		}
	}
	host = host ? host : getenv("PGHOST");
	hostaddr = hostaddr ? hostaddr : getenv("PGHOSTADDR");
	port = port ? port : getenv("PGPORT");
	/* A list of ports goes with a list of hosts. */
	bool found = host && *host && !(hostaddr && *hostaddr) &&
		     !(port && strchr(port, ',')) && host[0] != '/' &&
		     host[0] != '@' && !strchr(host, ',') &&
		     strlen(host) < len && !pg_numeric_host(host);
	if (found)
		snprintf(name, len, "%s", host);
	PQconninfoFree(parsed);
	return found;
}

static void *look_up(void *arg)
{
	struct pg_resolve *r = arg;
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM},
			*res = NULL;
	int e = getaddrinfo(r->name, NULL, &hints, &res);
	size_t hl = 0, al = 0;
	int n = 0;
	for (struct addrinfo *a = res; a && n < MAX_ADDRS; a = a->ai_next) {
		if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
			continue;
		const struct sockaddr_in *v4 = (const void *)a->ai_addr;
		const struct sockaddr_in6 *v6 = (const void *)a->ai_addr;
		char ip[INET6_ADDRSTRLEN];
		if (!inet_ntop(a->ai_family,
			       a->ai_family == AF_INET
				       ? (const void *)&v4->sin_addr
				       : (const void *)&v6->sin6_addr,
			       ip, sizeof(ip)))
			continue;
		hl += (size_t)snprintf(r->host + hl, sizeof(r->host) - hl,
				       "%s%s", n ? "," : "", r->name);
		al += (size_t)snprintf(r->hostaddr + al,
				       sizeof(r->hostaddr) - al, "%s%s",
				       n ? "," : "", ip);
		n++;
	}
	if (res)
		freeaddrinfo(res);
	if (n == 0)
		snprintf(r->err, sizeof(r->err),
			 "could not translate host name \"%s\" to address: "
			 "%s",
			 r->name, e ? gai_strerror(e) : "no IP address");
	atomic_store_explicit(&r->ready, true, memory_order_release);
	/* The loop may have let go already: no SIGPIPE then. */
	(void)send(r->fds[1], "", 1, MSG_NOSIGNAL);
	close(r->fds[1]);
	release(r);
	return NULL;
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	struct pg_resolve *r = arg;
	(void)fd;
	(void)what;
	event_free(r->ev);
	close(r->fds[0]);
	if (!atomic_load_explicit(&r->ready, memory_order_acquire))
		snprintf(r->err, sizeof(r->err), "host name lookup failed");
	if (r->err[0])
		r->done(r->arg, NULL, NULL, r->err);
	else
		r->done(r->arg, r->host, r->hostaddr, NULL);
	release(r);
}

struct pg_resolve *pg_resolve_start(struct event_base *base,
				    const char *const *kw,
				    const char *const *val, int expand_dbname,
				    pg_resolved_fn done, void *arg)
{
	char name[256];
	if (!name_to_look_up(kw, val, expand_dbname, name, sizeof(name)))
		return NULL;
	struct pg_resolve *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	memcpy(r->name, name, sizeof(name));
	r->done = done;
	r->arg = arg;
	atomic_init(&r->refs, 2);
	atomic_init(&r->ready, false);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, r->fds) != 0) {
		free(r);
		return NULL;
	}
	r->ev = event_new(base, r->fds[0], EV_READ, on_signal, r);
	pthread_attr_t attr;
	pthread_t th;
	bool started = false;
	if (r->ev && event_add(r->ev, NULL) == 0 &&
	    pthread_attr_init(&attr) == 0) {
		/* Signals stay with the loop's thread: the thread starts with
		 * all of them blocked. */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		started = pthread_create(&th, &attr, look_up, r) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_attr_destroy(&attr);
	}
	if (!started) {
		if (r->ev)
			event_free(r->ev);
		close(r->fds[0]);
		close(r->fds[1]);
		free(r);
		return NULL;
	}
	return r;
}

void pg_resolve_cancel(struct pg_resolve *r)
{
	if (!r)
		return;
	event_free(r->ev);
	close(r->fds[0]);
	release(r);
}
