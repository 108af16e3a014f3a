package interop

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Sarama speaks the versions of the Kafka release its config names: its
// default (2.1) asks for older versions of every API than franz-go does,
// and the newest it knows for newer ones.
var saramaVersions = map[string]sarama.KafkaVersion{
	"default": sarama.DefaultVersion,
	"newest":  sarama.MaxVersion,
}

// eachVersion runs test once at each of saramaVersions, as a subtest.
func eachVersion(t *testing.T, test func(*testing.T, sarama.KafkaVersion)) {
	for name, version := range saramaVersions {
		t.Run(name, func(t *testing.T) { test(t, version) })
	}
}

func saramaConfig(version sarama.KafkaVersion) *sarama.Config {
	c := sarama.NewConfig()
	c.Version = version
	c.ClientID = "samsa-interop-sarama"
	c.Net.DialTimeout = 10 * time.Second
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = false
	c.Metadata.AllowAutoTopicCreation = false
	return c
}

// Produce in every codec (idempotent where the version allows), then a
// consumer group reads every record once and commits; both versions.
func TestSaramaProduceConsumeGroup(t *testing.T) {
	eachVersion(t, saramaRoundTrip)
}

func saramaRoundTrip(t *testing.T, version sarama.KafkaVersion) {
	topic := uniqueName("go-sarama")
	brokers := []string{bootstrap(t)}
	admin, err := sarama.NewClusterAdmin(brokers, saramaConfig(version))
	if err != nil {
		t.Fatalf("cluster admin: %v", err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}

	want := map[string]bool{}
	codecs := []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP,
		sarama.CompressionSnappy, sarama.CompressionLZ4, sarama.CompressionZSTD}
	for _, codec := range codecs {
		cfg := saramaConfig(version)
		cfg.Producer.Compression = codec
		cfg.Producer.Idempotent = true
		cfg.Net.MaxOpenRequests = 1
		p, err := sarama.NewSyncProducer(brokers, cfg)
		if err != nil {
			t.Fatalf("producer (%v): %v", codec, err)
		}
		var msgs []*sarama.ProducerMessage
		for i := 0; i < 300; i++ {
			v := fmt.Sprintf("%v-%d", codec, i)
			want[v] = true
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic,
				Key: sarama.StringEncoder(fmt.Sprint(i % 13)), Value: sarama.StringEncoder(v)})
		}
		if err := p.SendMessages(msgs); err != nil {
			t.Fatalf("produce (%v): %v", codec, err)
		}
		for _, m := range msgs {
			if m.Offset < 0 {
				t.Fatalf("no offset for %v", m.Value)
			}
		}
		p.Close()
	}
	ends := endOffsets(t, topic)

	group := uniqueName("go-sarama-group")
	cg, err := sarama.NewConsumerGroup(brokers, group, saramaConfig(version))
	if err != nil {
		t.Fatalf("consumer group: %v", err)
	}
	h := &collector{want: want, seen: map[string]bool{}, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	consumed := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				consumed <- err
				return
			}
		}
		consumed <- nil
	}()
	select {
	case <-h.done:
	case <-ctx.Done():
		t.Fatalf("consumed %d of %d records in 60 s", h.count(), len(want))
	}
	cancel()
	if err := <-consumed; err != nil {
		t.Fatalf("consume: %v", err)
	}
	if h.err != nil {
		t.Fatal(h.err)
	}
	if err := cg.Close(); err != nil {
		t.Fatalf("close group: %v", err)
	}
	sameOffsets(t, "committed", committedOffsets(t, group, topic), ends)

	groups, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil || len(groups) != 1 || groups[0].GroupId != group {
		t.Fatalf("describe %s: %v %+v", group, err, groups)
	}
	if err := admin.DeleteTopic(topic); err != nil {
		t.Fatalf("delete %s: %v", topic, err)
	}
}

// collector is a sarama.ConsumerGroupHandler, shared by the members of a
// group, that marks and commits every record and closes done when it has
// seen all of want.  A record seen twice is an error unless redelivery is
// allowed (a partition that moves is read again from its last commit).
type collector struct {
	mu         sync.Mutex
	want       map[string]bool
	seen       map[string]bool
	redelivery bool
	err        error
	done       chan struct{}
	once       sync.Once
	// sessions holding claims now, and the most at once
	active, maxActive int
}

func (c *collector) Setup(s sarama.ConsumerGroupSession) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(s.Claims()) > 0 {
		c.active++
		c.maxActive = max(c.maxActive, c.active)
	}
	return nil
}

func (c *collector) Cleanup(s sarama.ConsumerGroupSession) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(s.Claims()) > 0 {
		c.active--
	}
	return nil
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func (c *collector) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		c.mu.Lock()
		v := string(m.Value)
		if (!c.want[v] || (c.seen[v] && !c.redelivery)) && c.err == nil {
			c.err = fmt.Errorf("record %q at %d/%d: unknown or seen twice", v, m.Partition, m.Offset)
		}
		c.seen[v] = true
		all := len(c.seen) == len(c.want)
		c.mu.Unlock()
		s.MarkMessage(m, "")
		if all {
			s.Commit()
			c.once.Do(func() { close(c.done) })
			return nil
		}
	}
	return nil
}

// Sarama's transactional producer: an aborted transaction, then one that
// commits with a group's offsets (AddOffsetsToTxn, TxnOffsetCommit); both
// versions.
func TestSaramaTransactions(t *testing.T) {
	eachVersion(t, saramaTransactions)
}

func saramaTransactions(t *testing.T, version sarama.KafkaVersion) {
	topic := uniqueName("go-sarama-txn")
	createTopic(t, topic, 1, nil)
	cfg := saramaConfig(version)
	cfg.Producer.Idempotent = true
	cfg.Producer.Transaction.ID = uniqueName("go-sarama-txid")
	cfg.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer([]string{bootstrap(t)}, cfg)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	defer p.Close()
	group := uniqueName("go-sarama-txn-group")
	for _, commit := range []bool{false, true} {
		if err := p.BeginTxn(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		var msgs []*sarama.ProducerMessage
		for i := 0; i < 50; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic,
				Value: sarama.StringEncoder(fmt.Sprintf("%v-%d", commit, i))})
		}
		if err := p.SendMessages(msgs); err != nil {
			t.Fatalf("produce: %v", err)
		}
		if !commit {
			if err := p.AbortTxn(); err != nil {
				t.Fatalf("abort: %v", err)
			}
			continue
		}
		offsets := map[string][]*sarama.PartitionOffsetMetadata{
			topic: {{Partition: 0, Offset: 42}}}
		if err := p.AddOffsetsToTxn(offsets, group); err != nil {
			t.Fatalf("add offsets: %v", err)
		}
		if err := p.CommitTxn(); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	if ends := endOffsets(t, topic); ends[0] != 102 {
		t.Fatalf("high watermark %d, want 102 (100 records, 2 markers)", ends[0])
	}
	sameOffsets(t, "committed in the transaction",
		committedOffsets(t, group, topic), map[int32]int64{0: 42})

	c := franzClient(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {0: kgo.NewOffset().AtStart()}}), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	ctx := timeout(t, callTimeout)
	var got []string
	for len(got) < 50 && ctx.Err() == nil {
		fs := c.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) != 50 || got[0] != "true-0" || got[49] != "true-49" {
		t.Fatalf("read_committed read %d records: %v", len(got), got)
	}
}

// Two Sarama members share a group with the sticky strategy (Sarama
// assigns on the client, in SyncGroup): both get partitions, and together
// they read every record; both versions.
func TestSaramaGroupOfTwo(t *testing.T) {
	eachVersion(t, saramaGroupOfTwo)
}

func saramaGroupOfTwo(t *testing.T, version sarama.KafkaVersion) {
	topic := uniqueName("go-sarama-two")
	createTopic(t, topic, 4, nil)
	brokers := []string{bootstrap(t)}
	p, err := sarama.NewSyncProducer(brokers, saramaConfig(version))
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	want := map[string]bool{}
	var msgs []*sarama.ProducerMessage
	for i := 0; i < 1000; i++ {
		v := fmt.Sprint(i)
		want[v] = true
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic,
			Key: sarama.StringEncoder(v), Value: sarama.StringEncoder(v)})
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("produce: %v", err)
	}
	p.Close()

	group := uniqueName("go-sarama-two")
	cfg := saramaConfig(version)
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	h := &collector{want: want, seen: map[string]bool{}, done: make(chan struct{}),
		redelivery: true}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for m := 0; m < 2; m++ {
		cg, err := sarama.NewConsumerGroup(brokers, group, cfg)
		if err != nil {
			t.Fatalf("member %d: %v", m, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cg.Close()
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, []string{topic}, h); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	select {
	case <-h.done:
	case <-ctx.Done():
		t.Fatalf("consumed %d of %d records in 60 s", h.count(), len(want))
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("consume: %v", err)
	}
	if h.err != nil {
		t.Fatal(h.err)
	}
	if h.maxActive < 2 {
		t.Fatalf("never two members with partitions at once (at most %d)", h.maxActive)
	}
}
