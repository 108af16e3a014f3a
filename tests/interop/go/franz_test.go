package interop

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// franz-go negotiates the newest version of every API samsa offers.

// Idempotent produce in each codec to three partitions, then a consumer
// group reads every record once and commits where it stopped.
func TestFranzProduceConsumeGroup(t *testing.T) {
	topic := uniqueName("go-franz")
	createTopic(t, topic, 3, nil)

	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(),
		"zstd": kgo.ZstdCompression(),
	}
	want := map[string]bool{}
	for name, codec := range codecs {
		p := franzClient(t, kgo.DefaultProduceTopic(topic),
			kgo.ProducerBatchCompression(codec), kgo.RequiredAcks(kgo.AllISRAcks()))
		var recs []*kgo.Record
		for i := 0; i < 400; i++ {
			v := fmt.Sprintf("%s-%d", name, i)
			want[v] = true
			recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i % 17)), Value: []byte(v)})
		}
		if err := p.ProduceSync(timeout(t, callTimeout), recs...).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", name, err)
		}
	}
	ends := endOffsets(t, topic)
	var total int64
	for _, e := range ends {
		total += e
	}
	if total != int64(len(want)) {
		t.Fatalf("high watermarks %v add up to %d, want %d", ends, total, len(want))
	}

	group := uniqueName("go-franz-group")
	c := franzClient(t, kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	ctx := timeout(t, 60*time.Second)
	seen := map[string]bool{}
	for len(seen) < len(want) {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(seen), len(want), err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			if !want[v] || seen[v] {
				t.Fatalf("record %q at %s/%d@%d: unknown or seen twice", v, r.Topic, r.Partition, r.Offset)
			}
			seen[v] = true
		})
	}
	if err := c.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	sameOffsets(t, "committed", committedOffsets(t, group, topic), ends)

	// The group as the admin API describes it: one member holding all
	// three partitions.
	adm := kadm.NewClient(franzClient(t))
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatalf("describe %s: %v", group, err)
	}
	g := described[group]
	if g.Err != nil || g.State != "Stable" || len(g.Members) != 1 {
		t.Fatalf("group %s: state %q, %d members, err %v", group, g.State, len(g.Members), g.Err)
	}
	assigned, _ := g.Members[0].Assigned.AsConsumer()
	if assigned == nil || len(assigned.Topics) != 1 || len(assigned.Topics[0].Partitions) != 3 {
		t.Fatalf("member assignment: %+v", assigned)
	}
}

// A transactional producer aborts one transaction and commits the next: a
// read_committed consumer sees only the committed records, a
// read_uncommitted one both.
func TestFranzTransactions(t *testing.T) {
	topic := uniqueName("go-franz-txn")
	createTopic(t, topic, 1, nil)
	p := franzClient(t, kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID(uniqueName("go-franz-txid")))
	ctx := timeout(t, 60*time.Second)

	for _, commit := range []bool{false, true} {
		if err := p.BeginTransaction(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		var recs []*kgo.Record
		for i := 0; i < 100; i++ {
			recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("%v-%d", commit, i))})
		}
		if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end (commit %v): %v", commit, err)
		}
	}
	// 200 records and two markers.
	if ends := endOffsets(t, topic); ends[0] != 202 {
		t.Fatalf("high watermark %d, want 202", ends[0])
	}

	read := func(level kgo.IsolationLevel, want int) {
		c := franzClient(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			topic: {0: kgo.NewOffset().AtStart()}}), kgo.FetchIsolationLevel(level))
		var got []string
		for len(got) < want {
			fs := c.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("read %d of %d: %v", len(got), want, err)
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
		if len(got) != want {
			t.Fatalf("read %d records, want %d", len(got), want)
		}
		if want == 100 && (got[0] != "true-0" || got[99] != "true-99") {
			t.Fatalf("read_committed read %q ... %q", got[0], got[99])
		}
	}
	read(kgo.ReadCommitted(), 100)
	read(kgo.ReadUncommitted(), 200)
}

// Topic administration as kadm does it: configs described and altered,
// partitions added, records deleted, the topic deleted.
func TestFranzAdmin(t *testing.T) {
	topic := uniqueName("go-franz-admin")
	retention := "3600000"
	createTopic(t, topic, 1, map[string]*string{"retention.ms": &retention})
	adm := kadm.NewClient(franzClient(t))
	ctx := timeout(t, 60*time.Second)

	configValue := func(name string) string {
		rcs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatalf("describe configs: %v", err)
		}
		rc, err := rcs.On(topic, nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("configs of %s: %v %v", topic, err, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key == name {
				return c.MaybeValue()
			}
		}
		t.Fatalf("%s has no config %s", topic, name)
		return ""
	}
	if v := configValue("retention.ms"); v != retention {
		t.Fatalf("retention.ms %q, want %q", v, retention)
	}
	compact := "compact"
	alt, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "cleanup.policy", Value: &compact}}, topic)
	if err != nil || alt[0].Err != nil {
		t.Fatalf("alter configs: %v %+v", err, alt)
	}
	if v := configValue("cleanup.policy"); v != compact {
		t.Fatalf("cleanup.policy %q after the change", v)
	}
	bad := "-5"
	alt, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "min.cleanable.dirty.ratio", Value: &bad}}, topic)
	if err == nil && alt[0].Err == nil {
		t.Fatalf("min.cleanable.dirty.ratio=-5 was taken")
	}
	if err == nil && !errors.Is(alt[0].Err, kerr.InvalidConfig) {
		t.Fatalf("min.cleanable.dirty.ratio=-5: %v, want INVALID_CONFIG", alt[0].Err)
	}

	if _, err := adm.CreatePartitions(ctx, 2, topic); err != nil {
		t.Fatalf("create partitions: %v", err)
	}
	details, err := adm.ListTopics(ctx, topic)
	if err != nil || len(details[topic].Partitions) != 3 {
		t.Fatalf("after adding two partitions: %v %+v", err, details[topic])
	}

	p := franzClient(t, kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for i := 0; i < 10; i++ {
		recs = append(recs, &kgo.Record{Key: []byte{byte(i)}, Value: []byte{byte(i)}})
	}
	if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	to := kadm.Offsets{}
	to.Add(kadm.Offset{Topic: topic, Partition: 0, At: 4})
	deleted, err := adm.DeleteRecords(ctx, to)
	if err != nil || deleted.Error() != nil {
		t.Fatalf("delete records: %v %v", err, deleted.Error())
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("start offsets: %v", err)
	}
	if o, _ := starts.Lookup(topic, 0); o.Offset != 4 {
		t.Fatalf("log start %d after deleting records below 4", o.Offset)
	}

	dr, err := adm.DeleteTopics(ctx, topic)
	if err != nil || dr[topic].Err != nil {
		t.Fatalf("delete topic: %v %v", err, dr[topic].Err)
	}
	details, err = adm.ListTopics(ctx)
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	if details.Has(topic) {
		t.Fatalf("%s still listed after its deletion", topic)
	}
}

// Two members share a group by franz-go's default cooperative-sticky
// balancer: the second takes half the partitions, and when the first
// leaves the second has them all; between them they read every record.
func TestFranzGroupRebalance(t *testing.T) {
	topic := uniqueName("go-franz-rebalance")
	createTopic(t, topic, 4, nil)
	p := franzClient(t, kgo.DefaultProduceTopic(topic))
	var recs []*kgo.Record
	for i := 0; i < 2000; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))})
	}
	ctx := timeout(t, 90*time.Second)
	if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	group := uniqueName("go-franz-rebalance")
	member := func() *kgo.Client {
		return franzClient(t, kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	}
	seen := map[string]bool{}
	poll := func(c *kgo.Client) {
		pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		fs := c.PollFetches(pctx)
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, kgo.ErrClientClosed) {
				t.Errorf("fetch %s/%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	// Polls the members until the group has want of them, each holding
	// each partitions.
	settle := func(want, each int, members ...*kgo.Client) {
		adm := kadm.NewClient(franzClient(t))
		for {
			for _, m := range members {
				poll(m)
			}
			described, err := adm.DescribeGroups(ctx, group)
			if err != nil {
				t.Fatalf("describe %s: %v", group, err)
			}
			g := described[group]
			ok := g.State == "Stable" && len(g.Members) == want
			for _, m := range g.Members {
				a, _ := m.Assigned.AsConsumer()
				if a == nil || len(a.Topics) != 1 || len(a.Topics[0].Partitions) != each {
					ok = false
				}
			}
			if ok {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("group %s never had %d members of %d partitions: %+v", group, want, each, g)
			}
		}
	}

	a := member()
	for len(seen) == 0 {
		poll(a)
	}
	b := member()
	settle(2, 2, a, b)
	a.Close()
	settle(1, 4, b)
	for len(seen) < len(recs) && ctx.Err() == nil {
		poll(b)
	}
	if len(seen) != len(recs) {
		t.Fatalf("read %d of %d records", len(seen), len(recs))
	}
}

// Consume-transform-produce exactly once with franz-go's
// GroupTransactSession: the first transaction aborts (its input is read
// again), the rest commit with the group's offsets; read_committed sees
// every input record transformed once, and the group's offsets are at the
// end of the input.
func TestFranzExactlyOnce(t *testing.T) {
	in, out := uniqueName("go-franz-eos-in"), uniqueName("go-franz-eos-out")
	createTopic(t, in, 2, nil)
	createTopic(t, out, 1, nil)
	ctx := timeout(t, 90*time.Second)
	p := franzClient(t, kgo.DefaultProduceTopic(in))
	const n = 500
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	inEnds := endOffsets(t, in)

	group := uniqueName("go-franz-eos")
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(bootstrap(t)),
		kgo.DefaultProduceTopic(out), kgo.TransactionalID(uniqueName("go-franz-eos-txid")),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RequireStableFetchOffsets())
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	defer sess.Close()
	aborted := 0
	for {
		committed := committedOffsets(t, group, in)
		done := len(committed) == len(inEnds)
		for p, e := range inEnds {
			done = done && committed[p] == e
		}
		if done {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("group offsets %v never reached %v", committed, inEnds)
		}
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := sess.PollFetches(pctx)
		cancel()
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("fetch %s/%d: %v", topic, p, err)
			}
		})
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Key: r.Key, Value: append([]byte("t-"), r.Value...)}, nil)
		})
		end := kgo.TryCommit
		if aborted == 0 {
			// Delivered before the abort, which would otherwise drop
			// them unsent: the aborted records are in the log.
			if err := sess.Client().Flush(ctx); err != nil {
				t.Fatalf("flush: %v", err)
			}
			end = kgo.TryAbort
			aborted = fs.NumRecords()
		}
		if _, err := sess.End(ctx, end); err != nil {
			t.Fatalf("end: %v", err)
		}
	}

	read := func(level kgo.IsolationLevel) map[string]int {
		c := franzClient(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			out: {0: kgo.NewOffset().AtStart()}}), kgo.FetchIsolationLevel(level))
		end := endOffsets(t, out)[0]
		got := map[string]int{}
		for {
			pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			fs := c.PollFetches(pctx)
			cancel()
			last := int64(-1)
			fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)]++; last = r.Offset })
			if last < 0 && pctx.Err() != nil {
				return got // nothing more before the end
			}
			if ctx.Err() != nil || last >= end {
				return got
			}
		}
	}
	committed := read(kgo.ReadCommitted())
	if len(committed) != n {
		t.Fatalf("read_committed: %d distinct records, want %d", len(committed), n)
	}
	for v, k := range committed {
		if k != 1 {
			t.Fatalf("read_committed: %q %d times", v, k)
		}
	}
	total := 0
	for _, k := range read(kgo.ReadUncommitted()) {
		total += k
	}
	if total != n+aborted {
		t.Fatalf("read_uncommitted: %d records, want %d (%d aborted)", total, n+aborted, aborted)
	}
}

// The admin APIs about groups, producers, transactions and the cluster, as
// kadm calls them: what they list matches what the test did.
func TestFranzAdminGroupsProducersTransactions(t *testing.T) {
	topic := uniqueName("go-franz-describe")
	createTopic(t, topic, 1, nil)
	ctx := timeout(t, 60*time.Second)
	adm := kadm.NewClient(franzClient(t))

	meta, err := adm.BrokerMetadata(ctx)
	if err != nil || meta.Cluster == "" || len(meta.Brokers) == 0 || meta.Controller < 0 {
		t.Fatalf("metadata: %v %+v", err, meta)
	}

	// Records stamped an hour apart: ListOffsets by time finds each.
	p := franzClient(t, kgo.DefaultProduceTopic(topic))
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Millisecond)
	for i := 0; i < 3; i++ {
		r := &kgo.Record{Value: []byte{byte(i)}, Timestamp: base.Add(time.Duration(i) * time.Hour)}
		if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	at, err := adm.ListOffsetsAfterMilli(ctx, base.Add(90*time.Minute).UnixMilli(), topic)
	if err != nil {
		t.Fatalf("offsets by time: %v", err)
	}
	if o, _ := at.Lookup(topic, 0); o.Err != nil || o.Offset != 2 ||
		o.Timestamp != base.Add(2*time.Hour).UnixMilli() {
		t.Fatalf("first record at or after base+90min: %+v, want offset 2", o)
	}

	// The log directory (samsa's table of batches) lists the partition
	// with the bytes stored for it: three small batches.
	dirs, err := adm.DescribeAllLogDirs(ctx, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatalf("describe log dirs: %v", err)
	}
	var sizes []int64
	dirs.Each(func(d kadm.DescribedLogDir) {
		if d.Err != nil {
			t.Fatalf("log dir %s: %v", d.Dir, d.Err)
		}
		if lp, ok := dirs[d.Broker].LookupPartition(topic, 0); ok {
			sizes = append(sizes, lp.Size)
		}
	})
	if len(sizes) != 1 || sizes[0] < 3*61 || sizes[0] > 3*200 {
		t.Fatalf("log dir sizes of %s/0: %v, want one of three batches", topic, sizes)
	}

	// The idempotent producer is described with its last sequence.
	prods, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatalf("describe producers: %v", err)
	}
	ps := prods.SortedProducers()
	if len(ps) != 1 || ps[0].LastSequence != 2 || ps[0].ProducerID < 0 {
		t.Fatalf("producers of %s: %+v", topic, ps)
	}

	// A committed transaction is listed and described.
	txid := uniqueName("go-franz-describe-txid")
	tp := franzClient(t, kgo.DefaultProduceTopic(topic), kgo.TransactionalID(txid))
	if err := tp.BeginTransaction(); err != nil {
		t.Fatalf("begin: %v", err)
	}
	if err := tp.ProduceSync(ctx, &kgo.Record{Value: []byte("t")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if err := tp.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit: %v", err)
	}
	listed, err := adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		t.Fatalf("list transactions: %v", err)
	}
	if l, ok := listed[txid]; !ok || l.State != "CompleteCommit" {
		t.Fatalf("transaction %s listed as %+v (found %v)", txid, l, ok)
	}
	described, err := adm.DescribeTransactions(ctx, txid)
	if err != nil || described[txid].Err != nil || described[txid].State != "CompleteCommit" ||
		described[txid].ProducerID != listed[txid].ProducerID {
		t.Fatalf("describe transaction %s: %v %+v", txid, err, described[txid])
	}

	// A group with committed offsets and no members: listed, its offset of
	// the topic deleted, then the group itself.
	group := uniqueName("go-franz-describe-group")
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 2, LeaderEpoch: -1})
	committed, err := adm.CommitOffsets(ctx, group, offs)
	if err != nil || committed.Error() != nil {
		t.Fatalf("commit offsets: %v %v", err, committed.Error())
	}
	sameOffsets(t, "committed", committedOffsets(t, group, topic), map[int32]int64{0: 2})
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	if g, ok := groups[group]; !ok || g.State != "Empty" {
		t.Fatalf("group %s listed as %+v (found %v)", group, g, ok)
	}
	dels, err := adm.DeleteOffsets(ctx, group, kadm.TopicsSet{topic: {0: {}}})
	if err != nil || dels.Error() != nil {
		t.Fatalf("delete offsets: %v %v", err, dels.Error())
	}
	sameOffsets(t, "after OffsetDelete", committedOffsets(t, group, topic), map[int32]int64{})
	deleted, err := adm.DeleteGroups(ctx, group)
	if err != nil || deleted[group].Err != nil {
		t.Fatalf("delete group: %v %v", err, deleted[group].Err)
	}
	groups, err = adm.ListGroups(ctx)
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	if _, ok := groups[group]; ok {
		t.Fatalf("group %s still listed after its deletion", group)
	}
}

// The consumer group protocol (KIP-848, kgo.ServerSideBalancer): two
// members subscribed by a pattern, which franz-go sends as Java's
// "(?:...)", read every record between them and end up sharing the four
// partitions, none held by both.
func TestFranzConsumerProtocolGroup(t *testing.T) {
	topic := uniqueName("go-franz-848")
	createTopic(t, topic, 4, nil)
	p := franzClient(t, kgo.DefaultProduceTopic(topic))
	var recs []*kgo.Record
	for i := 0; i < 400; i++ {
		recs = append(recs, &kgo.Record{Partition: int32(i % 4), Value: []byte(fmt.Sprint(i))})
	}
	if err := p.ProduceSync(timeout(t, callTimeout), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	group := uniqueName("go-franz-848-group")
	var mu sync.Mutex
	owned := []map[int32]bool{{}, {}}
	// Member i's partitions now owned (true) or given up (false).
	track := func(i int, own bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, q := range m[topic] {
				if own {
					owned[i][q] = true
				} else {
					delete(owned[i], q)
				}
			}
		}
	}
	member := func(i int) *kgo.Client {
		return franzClient(t, kgo.ConsumeRegex(), kgo.ConsumeTopics(topic),
			kgo.ConsumerGroup(group), kgo.ServerSideBalancer(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.OnPartitionsAssigned(track(i, true)),
			kgo.OnPartitionsRevoked(track(i, false)),
			kgo.OnPartitionsLost(track(i, false)))
	}
	members := []*kgo.Client{member(0), member(1)}
	seen := map[string]bool{}
	shared := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for q := range owned[0] {
			if owned[1][q] {
				t.Fatalf("partition %d owned by both members", q)
			}
		}
		return len(owned[0]) > 0 && len(owned[1]) > 0 && len(owned[0])+len(owned[1]) == 4
	}
	deadline := time.Now().Add(90 * time.Second)
	for len(seen) < 400 || !shared() {
		if time.Now().After(deadline) {
			t.Fatalf("read %d of 400 records; owned %v", len(seen), owned)
		}
		for _, c := range members {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			fs := c.PollFetches(ctx)
			cancel()
			fs.EachError(func(tp string, q int32, err error) {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("fetch %s/%d: %v", tp, q, err)
				}
			})
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
		}
	}
}
