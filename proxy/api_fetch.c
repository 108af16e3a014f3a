/*
 * Fetch: whole record batches from the fetch offset on, from the tail cache
 * or Postgres, with long polling (min_bytes / max_wait_ms).  Fetch sessions
 * are declined (session id 0), so every fetch is a full one.
 */
#include <string.h>

#include "protocol/messages.h"
#include "proxy/errors.h"
#include "proxy/handlers.h"

/* One requested partition and where its answer stands. */
struct fpart {
	struct FetchResponse_PartitionData *r;
	struct st_partition *p;
	int64_t offset;
	int32_t max_bytes;
	size_t data_off, data_len;
	bool has_data;
	struct st_waiter waiter;
};

struct fetch_ctx {
	struct request *req;
	struct FetchResponse *resp;
	struct fpart *parts;
	int32_t nparts;
	int32_t cursor;	       /* next partition to collect */
	struct kb_writer data; /* every partition's record bytes */
	size_t total;
	bool waited;  /* max_wait_ms passed or the client left: answer now */
	bool reading; /* a Postgres read in flight */
	bool parked;  /* collected, waiting for min_bytes */
	struct event *timer;
};

static void collect(struct fetch_ctx *x);

static void fetch_cleanup(void *arg)
{
	struct fetch_ctx *x = arg;
	for (int32_t i = 0; i < x->nparts; i++)
		st_wait_cancel(&x->parts[i].waiter);
	if (x->timer)
		event_free(x->timer);
	kb_writer_free(&x->data);
}

struct aborted_list {
	struct request *req;
	struct FetchResponse_AbortedTransaction *items;
	int32_t n, cap;
};

static void add_aborted(void *arg, int64_t producer_id, int64_t first)
{
	struct aborted_list *l = arg;
	struct FetchResponse_AbortedTransaction *items = arena_grow(
		&l->req->arena, l->items, l->n, &l->cap, sizeof(*items));
	if (!items)
		return;
	l->items = items;
	l->items[l->n++] = (struct FetchResponse_AbortedTransaction){
		.ProducerId = producer_id, .FirstOffset = first};
}

/*
 * read_committed: the partition's bytes end before the first batch at or
 * past the last stable offset, and the aborted transactions they overlap
 * are listed so the client drops their records.
 */
static void committed_only(struct fetch_ctx *x, struct fpart *fp)
{
	int64_t lso = st_last_stable(fp->p);
	const uint8_t *b = x->data.buf + fp->data_off;
	size_t off = 0;
	while (off + 12 <= fp->data_len) {
		/* BaseOffset i64, BatchLength i32, big-endian. */
		uint64_t base = 0;
		uint32_t len = 0;
		for (int i = 0; i < 8; i++)
			base = base << 8 | b[off + (size_t)i];
		for (int i = 8; i < 12; i++)
			len = len << 8 | b[off + (size_t)i];
		if ((int64_t)base >= lso || len > fp->data_len - off - 12)
			break;
		off += 12 + (size_t)len;
	}
	fp->data_len = off;
	fp->has_data = off > 0;
	struct aborted_list l = {.req = x->req};
	if (off > 0)
		st_aborted_txns(fp->p, fp->offset, lso, add_aborted, &l);
	fp->r->AbortedTransactions.count = l.n;
	fp->r->AbortedTransactions.items = l.items;
}

static void answer(struct fetch_ctx *x)
{
	struct FetchRequest *fr = x->req->body;
	for (int32_t i = 0; i < x->nparts; i++)
		st_wait_cancel(&x->parts[i].waiter);
	if (x->timer)
		event_del(x->timer);
	if (!kb_writer_ok(&x->data)) {
		/* Out of memory copying records: no answer can say which
		 * partitions lost theirs; the client fetches again. */
		req_close_connection(x->req);
		return;
	}
	for (int32_t i = 0; i < x->nparts; i++) {
		struct fpart *fp = &x->parts[i];
		if (fp->has_data && fr->IsolationLevel == 1)
			committed_only(x, fp);
		if (fp->has_data)
			fp->r->Records = (struct kstr){
				(const char *)x->data.buf + fp->data_off,
				(int32_t)fp->data_len};
	}
	/* The records plus each partition's fields and the envelope. */
	req_reserve(x->req, x->data.len + 128 * (size_t)x->nparts + 256);
	req_reply(x->req, x->resp);
}

/* Collects every partition again: after an append (the fetch parks again
 * while it has less than min_bytes, with the first deadline), after a
 * read-ahead landed, or at the deadline. */
static void restart(struct fetch_ctx *x)
{
	for (int32_t i = 0; i < x->nparts; i++) {
		st_wait_cancel(&x->parts[i].waiter);
		x->parts[i].has_data = false;
	}
	x->parked = false;
	x->cursor = 0;
	x->total = 0;
	x->data.len = 0;
	collect(x);
}

static long count_again(struct fetch_ctx *x);
static void park(struct fetch_ctx *x, int32_t max_wait_ms);

static void on_wake(void *arg)
{
	struct fetch_ctx *x = arg;
	if (x->reading)
		return;
	/* An append to a parked fetch that still leaves it short of
	 * min_bytes: counted, not copied (copying all it had at every
	 * append made a fetch of many small appends quadratic). */
	struct FetchRequest *fr = x->req->body;
	if (x->parked && !x->waited) {
		long n = count_again(x);
		if (n >= 0 && n < fr->MinBytes) {
			park(x, fr->MaxWaitMs);
			return;
		}
	}
	restart(x);
}

/* The client is gone: stop waiting (a Postgres read in flight answers when
 * it lands, without parking). */
static void fetch_abandon(struct request *req)
{
	struct fetch_ctx *x = req->ctx;
	x->waited = true;
	if (!x->reading)
		answer(x);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct fetch_ctx *x = arg;
	(void)fd;
	(void)what;
	x->waited = true;
	on_wake(x);
}

/* The partition's state in the response, before its data. */
static void fill_offsets(struct fpart *fp)
{
	fp->r->HighWatermark = st_high_watermark(fp->p);
	fp->r->LastStableOffset = st_last_stable(fp->p);
	fp->r->LogStartOffset = st_log_start(fp->p);
}

/*
 * Keeps the n bytes of fp's batches written to the data from before on,
 * within the fetch's MaxBytes: the first partition with data always keeps
 * its first batch whole (so that a consumer moves past a batch larger
 * than its limits, as Kafka does); the others keep nothing that would go
 * over it.
 */
static void take(struct fetch_ctx *x, struct fpart *fp, size_t before, size_t n)
{
	struct FetchRequest *fr = x->req->body;
	if (x->total > 0 &&
	    x->total + n > (size_t)(fr->MaxBytes > 0 ? fr->MaxBytes : 0)) {
		x->data.len = before;
		n = 0;
	}
	fp->data_off = before;
	fp->data_len = n;
	fp->has_data = n > 0;
	x->total += n;
}

static void on_read(void *arg, enum st_status st, const uint8_t *data,
		    size_t len)
{
	struct fetch_ctx *x = arg;
	struct fpart *fp = &x->parts[x->cursor];
	x->reading = false;
	if (st != ST_OK) {
		fp->r->ErrorCode = kerr_from_status(st);
	} else {
		size_t before = x->data.len;
		kb_write_raw(&x->data, data, len);
		take(x, fp, before, len);
	}
	x->cursor++;
	collect(x);
}

/* Waits for an append to any partition not waited on yet, until the
 * deadline set at the first wait. */
static void park(struct fetch_ctx *x, int32_t max_wait_ms)
{
	x->parked = true;
	for (int32_t i = 0; i < x->nparts; i++) {
		struct fpart *fp = &x->parts[i];
		if (fp->p && !fp->waiter.p) {
			fp->waiter.fn = on_wake;
			fp->waiter.arg = x;
			st_wait(fp->p, &fp->waiter);
		}
	}
	/* The deadline is set once: waking up does not extend it. */
	if (x->timer)
		return;
	x->timer = event_new(x->req->srv->base, -1, 0, on_timeout, x);
	struct timeval tv = {max_wait_ms / 1000, (max_wait_ms % 1000) * 1000};
	if (!x->timer || event_add(x->timer, &tv) != 0) {
		x->waited = true; /* no deadline: answer now */
		answer(x);
	}
}

/*
 * What fp can add to an answer holding total bytes so far: the most bytes
 * to read (in *limit; a first batch larger goes whole), nothing, or an
 * error to answer with.
 */
enum fpart_turn { READ, NOTHING, GONE, OUT_OF_RANGE };
static enum fpart_turn fpart_turn(const struct fetch_ctx *x,
				  const struct fpart *fp, size_t total,
				  int32_t *limit)
{
	const struct FetchRequest *fr = x->req->body;
	if (st_partition_deleted(fp->p))
		return GONE;
	if (fp->offset < st_log_start(fp->p) ||
	    fp->offset > st_high_watermark(fp->p))
		return OUT_OF_RANGE;
	if (fp->offset == st_high_watermark(fp->p))
		return NOTHING;
	if (fr->IsolationLevel == 1 && fp->offset >= st_last_stable(fp->p))
		return NOTHING; /* nothing committed to read yet */
	int64_t room = (int64_t)fr->MaxBytes - (int64_t)total;
	if (total > 0 && room <= 0)
		return NOTHING;
	*limit = fp->max_bytes;
	if (room < *limit)
		*limit = room > 0 ? (int32_t)room : 1;
	return READ;
}

/* What collecting again would gather, counted in the tail cache without
 * copying: -1 when it would take more (a read, an error to answer). */
static long count_again(struct fetch_ctx *x)
{
	const struct FetchRequest *fr = x->req->body;
	size_t total = 0;
	for (int32_t i = 0; i < x->nparts; i++) {
		const struct fpart *fp = &x->parts[i];
		int32_t limit;
		if (!fp->p || fp->r->ErrorCode)
			continue;
		enum fpart_turn turn = fpart_turn(x, fp, total, &limit);
		if (turn == NOTHING)
			continue;
		long n = turn == READ ? st_read_cached(fp->p, fp->offset, limit,
						       NULL)
				      : -1;
		if (n < 0)
			return -1;
		/* As take() would keep it. */
		if (total == 0 || total + (size_t)n <= (size_t)fr->MaxBytes)
			total += (size_t)n;
	}
	return (long)total;
}

static void collect(struct fetch_ctx *x)
{
	struct FetchRequest *fr = x->req->body;
	struct store *s = x->req->srv->store;
	bool error = false;

	for (; x->cursor < x->nparts; x->cursor++) {
		struct fpart *fp = &x->parts[x->cursor];
		int32_t limit;
		if (!fp->p || fp->r->ErrorCode)
			continue;
		enum fpart_turn turn = fpart_turn(x, fp, x->total, &limit);
		if (turn == GONE) {
			/* Deleted while the fetch waited. */
			fp->r->ErrorCode =
				x->req->hdr.RequestApiVersion >= 13
					? KERR_UNKNOWN_TOPIC_ID
					: KERR_UNKNOWN_TOPIC_OR_PARTITION;
			continue;
		}
		fp->r->ErrorCode = KERR_NONE;
		fill_offsets(fp);
		if (turn == OUT_OF_RANGE) {
			fp->r->ErrorCode = KERR_OFFSET_OUT_OF_RANGE;
			continue;
		}
		if (turn == NOTHING)
			continue;
		size_t before = x->data.len;
		long n = st_read_cached(fp->p, fp->offset, limit, &x->data);
		if (n >= 0) {
			st_read_ahead(s, fp->p, fp->offset);
			take(x, fp, before, (size_t)n);
			continue;
		}
		if (st_read_ahead_brings(fp->p, fp->offset)) {
			fp->waiter.fn = on_wake;
			fp->waiter.arg = x;
			st_wait_read_ahead(fp->p, &fp->waiter);
			return;
		}
		x->reading = true;
		st_read(s, fp->p, fp->offset, limit, on_read, x);
		return;
	}
	for (int32_t i = 0; i < x->nparts; i++)
		error |= x->parts[i].r->ErrorCode != 0;
	if (!x->waited && !error && fr->MaxWaitMs > 0 &&
	    x->total < (size_t)(fr->MinBytes > 0 ? fr->MinBytes : 0)) {
		park(x, fr->MaxWaitMs);
		return;
	}
	answer(x);
}

void handle_Fetch(struct request *req)
{
	struct FetchRequest *fr = req->body;
	struct FetchResponse *resp = req_response(req);
	struct store *s = req->srv->store;
	int16_t v = req->hdr.RequestApiVersion;
	struct fetch_ctx *x = arena_alloc(&req->arena, sizeof(*x));
	int32_t nt = fr->Topics.count > 0 ? fr->Topics.count : 0;
	struct FetchResponse_FetchableTopicResponse *rt =
		req_array(req, &resp->Responses,
			  &FetchResponse_FetchableTopicResponse_struct, nt);
	if (!resp || !x || (nt && !rt)) {
		req_close_connection(req);
		return;
	}
	/* As Kafka: an answer is at most the broker's fetch.max.bytes. */
	int64_t most = bc_get_int("fetch.max.bytes", 57671680);
	if (fr->MaxBytes > most)
		fr->MaxBytes = (int32_t)most;
	x->req = req;
	x->resp = resp;
	req->ctx = x;
	req->cleanup = fetch_cleanup;
	req->abandon = fetch_abandon;
	resp->SessionId = 0; /* sessions declined */

	int32_t total = 0;
	for (int32_t i = 0; i < nt; i++)
		if (fr->Topics.items[i].Partitions.count > 0)
			total += fr->Topics.items[i].Partitions.count;
	x->parts = arena_alloc(&req->arena, (size_t)(total > 0 ? total : 1) *
						    sizeof(*x->parts));
	if (!x->parts) {
		req_close_connection(req);
		return;
	}
	for (int32_t i = 0; i < nt; i++) {
		struct FetchRequest_FetchTopic *t = &fr->Topics.items[i];
		struct st_topic *topic =
			v >= 13 ? st_topic_find_id(s, &t->TopicId)
				: st_topic_find(s, t->Topic);
		rt[i].Topic = t->Topic;
		rt[i].TopicId = t->TopicId;
		int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
		struct FetchResponse_PartitionData *rp =
			req_array(req, &rt[i].Partitions,
				  &FetchResponse_PartitionData_struct, np);
		for (int32_t j = 0; rp && j < np; j++) {
			struct FetchRequest_FetchPartition *q =
				&t->Partitions.items[j];
			struct fpart *fp = &x->parts[x->nparts++];
			memset(fp, 0, sizeof(*fp));
			fp->r = &rp[j];
			rp[j].PartitionIndex = q->Partition;
			rp[j].HighWatermark = -1;
			rp[j].LastStableOffset = -1;
			rp[j].LogStartOffset = -1;
			/* Empty, not null: pre-flexible clients read the
			 * size as a length. */
			rp[j].Records = KSTR_LIT("");
			/* read_committed wants a list (empty: no aborted
			 * transactions); read_uncommitted gets null. */
			rp[j].AbortedTransactions.count =
				fr->IsolationLevel == 1 ? 0 : -1;
			fp->p = topic ? st_partition(topic, q->Partition)
				      : NULL;
			if (!fp->p) {
				rp[j].ErrorCode =
					v >= 13 && !topic
						? KERR_UNKNOWN_TOPIC_ID
						: KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			fp->offset = q->FetchOffset;
			fp->max_bytes = q->PartitionMaxBytes;
			if (fp->max_bytes <= 0) {
				rp[j].ErrorCode = KERR_INVALID_FETCH_SIZE;
				continue;
			}
		}
	}
	collect(x);
}
