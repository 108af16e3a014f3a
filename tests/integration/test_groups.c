/*
 * storage/groups.c against a real Postgres: SAMSA_TEST_PG holds its
 * conninfo.  Like test_store.c, every test drops the schema samsa first and
 * opens a store of its own, so the tests of this binary run one at a time.
 * Committed offsets and group metadata must survive a reopen of the store
 * byte for byte, be served only once Postgres committed them, and go with
 * their topic.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "storage/groups.h"
#include "storage/store.h"
#include "tests/support/store_fixture.h"

TestSuite(groups, .init = store_fixture_setup, .fini = store_fixture_teardown,
	  .timeout = 120);

static struct st_topic *topic(const char *name, int32_t partitions)
{
	struct done d = {0};

	st_create_topic(st, kstr_c(name), partitions, NULL, 0, on_done, &d);
	run_until(&d.called);
	cr_assert_eq(d.st, ST_OK);
	struct st_topic *t = st_topic_find(st, kstr_c(name));
	cr_assert_not_null(t);
	return t;
}

static void commit(const char *group, struct st_offset_commit *c, size_t n)
{
	struct done d = {0};

	st_offsets_commit(st, kstr_c(group), c, n, on_done, &d);
	cr_assert_not(d.called, "the callback ran before the call returned");
	run_until(&d.called);
	cr_assert_eq(d.st, ST_OK);
	cr_assert_eq(d.calls, 1);
}

static const struct st_committed *get(const char *group, const char *name,
				      int32_t partition)
{
	struct st_topic *t = st_topic_find(st, kstr_c(name));
	cr_assert_not_null(t);
	return st_offset_get(st, kstr_c(group), t, partition);
}

/* Bytes no text column would keep: NUL, invalid UTF-8. */
static const char odd_md[] = {'m', 0, (char)0xff, (char)0xc3, 'x'};

Test(groups, commit_served_after_postgres_and_kept_across_reopen)
{
	struct st_topic *t = topic("t1", 3);
	struct st_offset_commit c[2] = {
		{.topic = t,
		 .partition = 0,
		 .offset = 42,
		 .leader_epoch = 7,
		 .metadata = {odd_md, sizeof(odd_md)}},
		{.topic = t,
		 .partition = 2,
		 .offset = 5,
		 .leader_epoch = -1,
		 .metadata = KSTR_NULL},
	};
	struct done d = {0};

	st_offsets_commit(st, KSTR_LIT("g"), c, 2, on_done, &d);
	/* In flight: pending, not served yet. */
	const struct st_committed *p = get("g", "t1", 0);
	cr_assert_not_null(p);
	cr_assert_eq(p->pending, 1);
	cr_assert_not(p->valid);
	run_until(&d.called);
	cr_assert_eq(d.st, ST_OK);

	for (int round = 0; round < 2; round++) {
		const struct st_committed *a = get("g", "t1", 0);
		cr_assert_not_null(a);
		cr_assert(a->valid);
		cr_assert_eq(a->pending, 0);
		cr_assert_eq(a->offset, 42);
		cr_assert_eq(a->leader_epoch, 7);
		cr_assert_eq(a->metadata_len, sizeof(odd_md));
		cr_assert_arr_eq(a->metadata, odd_md, sizeof(odd_md));
		const struct st_committed *b = get("g", "t1", 2);
		cr_assert_not_null(b);
		cr_assert_eq(b->offset, 5);
		cr_assert_eq(b->metadata_len, 0, "null metadata is \"\"");
		cr_assert_null(get("g", "t1", 1));
		cr_assert_null(get("other", "t1", 0));
		cr_assert(st_group_has_offsets(st, KSTR_LIT("g")));
		reopen_store();
	}
}

static int counted;

static void count_offsets(void *arg, const struct st_committed *c)
{
	(void)arg;
	(void)c;
	counted++;
}

Test(groups, offsets_go_with_their_topic)
{
	struct st_topic *t = topic("gone", 2);
	struct st_offset_commit c = {.topic = t, .partition = 1, .offset = 9};

	commit("g", &c, 1);
	struct done d = {0};
	st_delete_topic(st, t, on_done, &d);
	run_until(&d.called);
	cr_assert_eq(d.st, ST_OK);
	cr_assert_eq(sql_num("SELECT count(*) FROM samsa.group_offsets"), 0);
	/* A new topic of the same name starts without offsets. */
	topic("gone", 2);
	cr_assert_null(get("g", "gone", 1));
	counted = 0;
	st_offsets_each(st, KSTR_LIT("g"), count_offsets, NULL);
	cr_assert_eq(counted, 0);
	cr_assert_not(st_group_has_offsets(st, KSTR_LIT("g")));
}

Test(groups, delete_and_expire)
{
	struct st_topic *t = topic("t", 4);
	struct st_offset_commit c[4];

	for (int i = 0; i < 4; i++)
		c[i] = (struct st_offset_commit){
			.topic = t, .partition = i, .offset = 10 + i};
	commit("g", c, 4);
	int32_t parts[2] = {1, 3};
	struct done d = {0};
	st_offsets_delete(st, KSTR_LIT("g"), t, parts, 2, on_done, &d);
	run_until(&d.called);
	cr_assert_eq(d.st, ST_OK);
	cr_assert_not_null(get("g", "t", 0));
	cr_assert_null(get("g", "t", 1));
	cr_assert_eq(sql_num("SELECT count(*) FROM samsa.group_offsets"), 2);

	/* A cutoff in the past keeps everything; one in the future not. */
	struct done e = {0};
	st_offsets_expire(st, KSTR_LIT("g"), 0, on_done, &e);
	run_until(&e.called);
	cr_assert_not_null(get("g", "t", 0));
	struct done f = {0};
	st_offsets_expire(st, KSTR_LIT("g"), INT64_MAX, on_done, &f);
	run_until(&f.called);
	cr_assert_eq(f.st, ST_OK);
	cr_assert_null(get("g", "t", 0));
	cr_assert_eq(sql_num("SELECT count(*) FROM samsa.group_offsets"), 0);
}

struct seen {
	int groups;
	bool found;
	struct st_group_meta copy;
	char buf[4][64];
	uint8_t md[2][16], as[2][16];
	size_t mdl[2], asl[2];
	char mid[2][64], iid[2][64];
	bool has_iid[2];
};

static void each_group(void *arg, const char *name,
		       const struct st_group_meta *m)
{
	struct seen *s = arg;

	s->groups++;
	if (strcmp(name, "cg") != 0 || !m)
		return;
	s->found = true;
	s->copy = *m;
	cr_assert_eq(m->nmembers, 2);
	for (int i = 0; i < 2; i++) {
		snprintf(s->mid[i], 64, "%s", m->members[i].member_id);
		s->has_iid[i] = m->members[i].instance_id != NULL;
		if (s->has_iid[i])
			snprintf(s->iid[i], 64, "%s",
				 m->members[i].instance_id);
		s->mdl[i] = m->members[i].metadata_len;
		memcpy(s->md[i], m->members[i].metadata, s->mdl[i]);
		s->asl[i] = m->members[i].assignment_len;
		memcpy(s->as[i], m->members[i].assignment, s->asl[i]);
	}
	snprintf(s->buf[0], 64, "%s", m->protocol_type);
	snprintf(s->buf[1], 64, "%s", m->protocol);
	snprintf(s->buf[2], 64, "%s", m->leader);
}

Test(groups, group_metadata_saved_loaded_and_deleted)
{
	struct st_group_member mb[2] = {
		{.member_id = "m-1",
		 .instance_id = NULL,
		 .client_id = "c1",
		 .client_host = "/127.0.0.1",
		 .session_timeout = 10000,
		 .rebalance_timeout = 30000,
		 .metadata = (const uint8_t *)"\0\1md",
		 .metadata_len = 4,
		 .assignment = (const uint8_t *)"",
		 .assignment_len = 0},
		{.member_id = "i-2-abc",
		 .instance_id = "i-2",
		 .client_id = "c2",
		 .client_host = "/10.0.0.2",
		 .session_timeout = 45000,
		 .rebalance_timeout = 300000,
		 .metadata = (const uint8_t *)"x",
		 .metadata_len = 1,
		 .assignment = (const uint8_t *)"\0as\xff",
		 .assignment_len = 4},
	};
	struct st_group_meta g = {.group_id = "cg",
				  .protocol_type = "consumer",
				  .generation = 12,
				  .protocol = "range",
				  .leader = "i-2-abc",
				  .nmembers = 2,
				  .members = mb};
	struct done d = {0};

	st_group_save(st, &g, on_done, &d);
	run_until(&d.called);
	cr_assert_eq(d.st, ST_OK);
	/* Saving again replaces the members. */
	struct done d2 = {0};
	st_group_save(st, &g, on_done, &d2);
	run_until(&d2.called);
	cr_assert_eq(sql_num("SELECT count(*) FROM samsa.group_members"), 2);

	reopen_store();
	struct seen s = {0};
	st_groups_each(st, each_group, &s);
	cr_assert(s.found);
	cr_assert_eq(s.copy.generation, 12);
	cr_assert_str_eq(s.buf[0], "consumer");
	cr_assert_str_eq(s.buf[1], "range");
	cr_assert_str_eq(s.buf[2], "i-2-abc");
	cr_assert_str_eq(s.mid[0], "m-1", "members keep their order");
	cr_assert_not(s.has_iid[0]);
	cr_assert(s.has_iid[1]);
	cr_assert_str_eq(s.iid[1], "i-2");
	cr_assert_eq(s.mdl[0], 4);
	cr_assert_arr_eq(s.md[0], "\0\1md", 4);
	cr_assert_eq(s.asl[0], 0);
	cr_assert_eq(s.asl[1], 4);
	cr_assert_arr_eq(s.as[1], "\0as\xff", 4);

	struct st_topic *t = topic("t", 1);
	struct st_offset_commit c = {.topic = t, .partition = 0, .offset = 1};
	commit("cg", &c, 1);
	struct done d3 = {0};
	st_group_delete(st, KSTR_LIT("cg"), on_done, &d3);
	run_until(&d3.called);
	cr_assert_eq(d3.st, ST_OK);
	cr_assert_null(get("cg", "t", 0));
	cr_assert_eq(sql_num("SELECT count(*) FROM samsa.groups"), 0);
	cr_assert_eq(sql_num("SELECT count(*) FROM samsa.group_members"), 0);
	cr_assert_eq(sql_num("SELECT count(*) FROM samsa.group_offsets"), 0);
	reopen_store();
	struct seen s2 = {0};
	st_groups_each(st, each_group, &s2);
	cr_assert_not(s2.found);
}

static void cmember(const char *group, const char *member, const char *state,
		    size_t len)
{
	struct done d = {0};

	if (state)
		st_cmember_save(st, kstr_c(group), member,
				(const uint8_t *)state, len, on_done, &d);
	else
		st_cmember_delete(st, kstr_c(group), member, on_done, &d);
	run_until(&d.called);
	cr_assert_eq(d.st, ST_OK);
}

struct cmembers_seen {
	int32_t generation;
	size_t n;
	char ids[3][16];
	uint8_t states[3][8];
	size_t lens[3];
};

static void cmembers_of(void *arg, const char *name,
			const struct st_group_meta *m)
{
	struct cmembers_seen *c = arg;

	if (strcmp(name, "cg") != 0 || !m)
		return;
	c->generation = m->generation;
	c->n = m->ncmembers;
	for (size_t i = 0; i < m->ncmembers && i < 3; i++) {
		snprintf(c->ids[i], sizeof(c->ids[i]), "%s",
			 m->cmembers[i].member_id);
		c->lens[i] = m->cmembers[i].len;
		memcpy(c->states[i], m->cmembers[i].state,
		       m->cmembers[i].len < 8 ? m->cmembers[i].len : 8);
	}
}

static struct cmembers_seen cmembers_after_reopen(void)
{
	struct cmembers_seen c = {.generation = -1};

	reopen_store();
	st_groups_each(st, cmembers_of, &c);
	return c;
}

/* Consumer-protocol members are saved byte for byte beside the classic
 * metadata without disturbing it, replaced, deleted, and go with the
 * group. */
Test(groups, consumer_members_saved_loaded_and_deleted)
{
	struct st_group_meta g = {
		.group_id = "cg", .protocol_type = "consumer", .generation = 3};
	struct done d = {0};
	st_group_save(st, &g, on_done, &d);
	run_until(&d.called);

	cmember("cg", "m-b", "\0\1b", 3);
	cmember("cg", "m-a", "a", 1);
	cmember("cg", "m-a", "\xff\0a2", 4);
	struct cmembers_seen c = cmembers_after_reopen();
	cr_assert_eq(c.generation, 3, "the classic metadata is kept");
	cr_assert_eq(c.n, 2);
	cr_assert_str_eq(c.ids[0], "m-a", "in member id order");
	cr_assert_eq(c.lens[0], 4);
	cr_assert_arr_eq(c.states[0], "\xff\0a2", 4);
	cr_assert_str_eq(c.ids[1], "m-b");
	cr_assert_arr_eq(c.states[1], "\0\1b", 3);

	/* A classic save keeps them. */
	struct done d2 = {0};
	st_group_save(st, &g, on_done, &d2);
	run_until(&d2.called);
	cmember("cg", "m-b", NULL, 0);
	c = cmembers_after_reopen();
	cr_assert_eq(c.n, 1);
	cr_assert_str_eq(c.ids[0], "m-a");

	/* A group known only by its members gets a row; deleting the group
	 * deletes them. */
	cmember("solo", "m", "x", 1);
	cr_assert_eq(sql_num("SELECT count(*) FROM samsa.groups WHERE "
			     "group_id = 'solo'"),
		     1);
	struct done d3 = {0};
	st_group_delete(st, KSTR_LIT("cg"), on_done, &d3);
	run_until(&d3.called);
	cr_assert_eq(sql_num("SELECT count(*) FROM samsa.consumer_members"), 1);
}

Test(groups, commits_apply_in_order)
{
	struct st_topic *t = topic("t", 1);
	struct done d[20] = {0};

	for (int i = 0; i < 20; i++) {
		struct st_offset_commit c = {
			.topic = t, .partition = 0, .offset = i};
		st_offsets_commit(st, KSTR_LIT("g"), &c, 1, on_done, &d[i]);
	}
	cr_assert_eq(get("g", "t", 0)->pending, 20);
	run_until(&d[19].called);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(d[i].st, ST_OK);
	cr_assert_eq(get("g", "t", 0)->offset, 19);
	cr_assert_eq(get("g", "t", 0)->pending, 0);
	reopen_store();
	cr_assert_eq(get("g", "t", 0)->offset, 19);
}

struct after {
	const struct done *last; /* the last commit before the wait */
	bool called, last_done;
};

static void after_writes(void *arg)
{
	struct after *a = arg;
	a->called = true;
	a->last_done = a->last->called;
}

/* What an OffsetFetch that arrives during commits waits for. */
Test(groups, after_writes_runs_once_earlier_commits_are_served)
{
	struct st_topic *t = topic("t", 1);
	struct done d[4] = {0};
	struct after a = {.last = &d[2]};

	cr_assert_not(st_offsets_writing(st, KSTR_LIT("g")));
	for (int i = 0; i < 3; i++) {
		struct st_offset_commit c = {
			.topic = t, .partition = 0, .offset = 10 + i};
		st_offsets_commit(st, KSTR_LIT("g"), &c, 1, on_done, &d[i]);
	}
	cr_assert(st_offsets_writing(st, KSTR_LIT("g")));
	cr_assert_not(st_offsets_writing(st, KSTR_LIT("other")));
	cr_assert(st_offsets_after_writes(st, after_writes, &a));
	cr_assert_not(a.called, "ran before the call returned");
	/* A commit after the wait is not waited for. */
	struct st_offset_commit c = {.topic = t, .partition = 0, .offset = 99};
	st_offsets_commit(st, KSTR_LIT("g"), &c, 1, on_done, &d[3]);
	run_until(&a.called);
	cr_assert(a.last_done, "ran before the commits before it were over");
	cr_assert_not(d[3].called, "waited for a later commit");
	run_until(&d[3].called);
	cr_assert_eq(get("g", "t", 0)->offset, 99);
	cr_assert_not(st_offsets_writing(st, KSTR_LIT("g")));
}
