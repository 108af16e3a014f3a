package samsa.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/*
 * Kafka Streams and ksqlDB (issue 5): the two group rules exactly_once_v2
 * rests on (KIP-447), asked directly.
 *
 * - TxnOffsetCommit v3+ carries the consumer's group metadata: offsets sent
 *   with a generation or member id the group no longer has are refused
 *   (ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID, CommitFailedException in the
 *   producer), so a zombie task cannot commit.
 * - OffsetFetch with require_stable (every 4.x consumer asks so) answers
 *   UNSTABLE_OFFSET_COMMIT while a transaction holds offsets for the group:
 *   a task's new owner waits for the old owner's transaction to end rather
 *   than start from an offset about to change.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class StreamsEosPrimitivesTest {
    @Test
    void groupMetadataFencesAndRequireStableWaits() throws Exception {
        String in = Env.topic("eosprim-in"), out = Env.topic("eosprim-out");
        String group = Env.topic("eosprim-group");
        try (Admin a = Admin.create(Env.adminProps())) {
            a.createTopics(List.of(new NewTopic(in, 1, (short) 1), new NewTopic(out, 1, (short) 1)))
                .all().get(30, TimeUnit.SECONDS);
        }
        TopicPartition tp = new TopicPartition(in, 0);
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, Env.topic("eosprim-txn"));
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30000);
        try (KafkaConsumer<String, String> member = consumer(group);
             KafkaConsumer<String, String> other = consumer(group);
             KafkaProducer<String, String> p = new KafkaProducer<>(pp, new StringSerializer(),
                 new StringSerializer())) {
            /* A member of the group, with its partition. */
            member.subscribe(List.of(in));
            long deadline = System.currentTimeMillis() + 30000;
            while (member.assignment().isEmpty() && System.currentTimeMillis() < deadline)
                member.poll(Duration.ofMillis(100));
            assertEquals(Set.of(tp), member.assignment(), "assignment");
            ConsumerGroupMetadata gm = member.groupMetadata();
            assertTrue(gm.generationId() > 0, "generation " + gm.generationId());

            p.initTransactions();
            p.beginTransaction();
            p.send(new ProducerRecord<>(out, "k", "v1")).get(30, TimeUnit.SECONDS);
            p.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(3)), gm);

            /* Offsets pending in an open transaction: unstable. */
            assertThrows(TimeoutException.class,
                () -> other.committed(Set.of(tp), Duration.ofSeconds(3)),
                "OffsetFetch with require_stable answered during the transaction");
            p.commitTransaction();
            OffsetAndMetadata c = other.committed(Set.of(tp), Duration.ofSeconds(15)).get(tp);
            assertEquals(3, c == null ? -1 : c.offset(), "committed offset after the commit");

            /* A stale generation, then an unknown member: refused. */
            for (ConsumerGroupMetadata stale : List.of(
                     new ConsumerGroupMetadata(group, gm.generationId() + 5, gm.memberId(),
                         Optional.empty()),
                     new ConsumerGroupMetadata(group, gm.generationId(), "no-such-member",
                         Optional.empty()))) {
                p.beginTransaction();
                p.send(new ProducerRecord<>(out, "k", "zombie")).get(30, TimeUnit.SECONDS);
                KafkaException e = assertThrows(KafkaException.class,
                    () -> p.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(7)), stale),
                    "offsets sent with " + stale);
                Throwable cause = e;
                while (cause != null && !(cause instanceof CommitFailedException))
                    cause = cause.getCause();
                assertTrue(cause != null, "not a CommitFailedException: " + e);
                p.abortTransaction();
            }
            c = other.committed(Set.of(tp), Duration.ofSeconds(15)).get(tp);
            assertEquals(3, c == null ? -1 : c.offset(), "committed offset after the refusals");
        }
    }

    private static KafkaConsumer<String, String> consumer(String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        return new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer());
    }
}
