// Package interop runs Go's two Kafka clients, franz-go and Sarama, against
// samsa.  The broker comes from SAMSA_BOOTSTRAP (tests/run.sh interop go
// sets it); without it every test fails, none skips.
package interop

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A test's budget for one client call that waits on the broker.
const callTimeout = 30 * time.Second

func bootstrap(t *testing.T) string {
	t.Helper()
	b := strings.TrimSpace(os.Getenv("SAMSA_BOOTSTRAP"))
	if b == "" {
		t.Fatal("SAMSA_BOOTSTRAP is not set: run through tests/run.sh interop go")
	}
	return b
}

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%08x", prefix, time.Now().Unix(), rand.Uint32())
}

func timeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// franzClient is a franz-go client on samsa with opts, closed with the test.
func franzClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(bootstrap(t))}, opts...)
	c, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("franz-go client: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// createTopic makes topic with partitions and configs through franz-go's
// admin client and fails the test unless samsa created it.
func createTopic(t *testing.T, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	adm := kadm.NewClient(franzClient(t))
	res, err := adm.CreateTopics(timeout(t, callTimeout), partitions, 1, configs, topic)
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	if r := res[topic]; r.Err != nil {
		t.Fatalf("create %s: %v (%s)", topic, r.Err, r.ErrMessage)
	}
}

// endOffsets returns the high watermark of every partition of topic.
func endOffsets(t *testing.T, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(franzClient(t))
	ends, err := adm.ListEndOffsets(timeout(t, callTimeout), topic)
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

// committedOffsets returns group's committed offsets on topic.
func committedOffsets(t *testing.T, group, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(franzClient(t))
	offs, err := adm.FetchOffsets(timeout(t, callTimeout), group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil {
			t.Fatalf("offset of %s on %s/%d: %v", group, o.Topic, o.Partition, o.Err)
		}
		if o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out
}

// sameOffsets fails the test unless got and want hold the same partitions
// at the same offsets.
func sameOffsets(t *testing.T, what string, got, want map[int32]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
	for p, o := range want {
		if got[p] != o {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}
}
