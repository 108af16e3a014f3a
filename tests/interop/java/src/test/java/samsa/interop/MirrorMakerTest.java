package samsa.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.connect.mirror.MirrorMaker;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/*
 * MirrorMaker 2 (dedicated mode, Kafka's connect-mirror), the tool that
 * moves topics and consumer groups from one Kafka to another, with samsa
 * on both sides (one samsa as clusters A and B: A's topic T is copied to
 * "A.T").  It runs three connectors on Connect's distributed runtime: the
 * source copies the records and writes offset syncs, the checkpoint
 * connector translates a consumer group's committed offsets through them
 * and sets them on the copy, the heartbeat connector beats.  Checked: the
 * copy holds every record, key and value, per partition in order; the
 * group's offset on the copy is set, never past where it stands on T.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class MirrorMakerTest {
    private static final int PARTITIONS = 2, RECORDS = 1000, READ = 600;

    @Test
    void topicAndGroupOffsetsAreMirrored() throws Exception {
        String topic = Env.topic("mm2"), group = Env.topic("mm2-group");
        String copy = "A." + topic;
        try (Admin a = Admin.create(Env.adminProps())) {
            a.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1)))
                .all().get(30, TimeUnit.SECONDS);
        }
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp,
                new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < RECORDS; i++)
                p.send(new ProducerRecord<>(topic, i % PARTITIONS, "k" + i, "v" + i));
        }
        Map<TopicPartition, Long> committed = consumeAndCommit(topic, group);

        MirrorMaker mm = new MirrorMaker(mm2Props(topic, group), List.of("B"));
        mm.start();
        try {
            Map<Integer, List<String>> want = new HashMap<>(), got;
            for (int i = 0; i < RECORDS; i++)
                want.computeIfAbsent(i % PARTITIONS, k -> new ArrayList<>())
                    .add("k" + i + "=v" + i);
            got = readAll(copy, RECORDS);
            assertEquals(want, got, "records of " + copy);

            Map<TopicPartition, OffsetAndMetadata> synced = Map.of();
            long end = System.currentTimeMillis() + 90000;
            try (Admin a = Admin.create(Env.adminProps())) {
                while (System.currentTimeMillis() < end) {
                    synced = a.listConsumerGroupOffsets(group)
                        .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
                    if (synced.keySet().stream().filter(tp -> tp.topic().equals(copy)).count()
                            == PARTITIONS)
                        break;
                    Thread.sleep(500);
                }
            }
            for (int i = 0; i < PARTITIONS; i++) {
                OffsetAndMetadata o = synced.get(new TopicPartition(copy, i));
                long source = committed.get(new TopicPartition(topic, i));
                assertTrue(o != null && o.offset() > 0 && o.offset() <= source,
                    "group offset on " + copy + "-" + i + ": " + o + ", on the source "
                    + source + "; all: " + synced);
            }
        } finally {
            mm.stop();
            mm.awaitStop();
        }
    }

    private static Map<String, String> mm2Props(String topic, String group) {
        Map<String, String> m = new HashMap<>();
        m.put("clusters", "A, B");
        m.put("A.bootstrap.servers", Env.bootstrap());
        m.put("B.bootstrap.servers", Env.bootstrap());
        m.put("A->B.enabled", "true");
        m.put("B->A.enabled", "false");
        m.put("A->B.topics", topic);
        m.put("A->B.groups", group);
        m.put("replication.factor", "1");
        for (String t : List.of("checkpoints", "heartbeats", "offset-syncs"))
            m.put(t + ".topic.replication.factor", "1");
        for (String t : List.of("offset", "status", "config"))
            m.put(t + ".storage.replication.factor", "1");
        m.put("sync.group.offsets.enabled", "true");
        m.put("sync.group.offsets.interval.seconds", "1");
        m.put("emit.checkpoints.interval.seconds", "1");
        m.put("refresh.groups.interval.seconds", "2");
        m.put("refresh.topics.interval.seconds", "2");
        return m;
    }

    /* Reads READ records of topic in group and commits them: the offsets
     * committed per partition. */
    private static Map<TopicPartition, Long> consumeAndCommit(String topic, String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "50");
        Map<TopicPartition, Long> next = new HashMap<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p,
                new StringDeserializer(), new StringDeserializer())) {
            c.subscribe(List.of(topic));
            int n = 0;
            long end = System.currentTimeMillis() + 60000;
            while (n < READ && System.currentTimeMillis() < end)
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    next.put(new TopicPartition(topic, r.partition()), r.offset() + 1);
                    n++;
                }
            assertTrue(n >= READ, "read " + n + " of " + topic);
            Map<TopicPartition, OffsetAndMetadata> commit = new HashMap<>();
            next.forEach((tp, o) -> commit.put(tp, new OffsetAndMetadata(o)));
            c.commitSync(commit);
        }
        assertEquals(PARTITIONS, next.size(), "the group read every partition");
        return next;
    }

    /* Every partition of topic as "key=value" lists, once n records came
     * (or 90 s passed: the copy's topic appears once MirrorMaker runs). */
    private static Map<Integer, List<String>> readAll(String topic, int n) throws Exception {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        Map<Integer, List<String>> got = new HashMap<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p,
                new StringDeserializer(), new StringDeserializer())) {
            long end = System.currentTimeMillis() + 90000;
            List<TopicPartition> parts = new ArrayList<>();
            while (parts.size() < PARTITIONS && System.currentTimeMillis() < end) {
                parts.clear();
                c.listTopics(Duration.ofSeconds(10)).getOrDefault(topic, List.of())
                    .forEach(i -> parts.add(new TopicPartition(topic, i.partition())));
                if (parts.size() < PARTITIONS)
                    Thread.sleep(500);
            }
            assertEquals(PARTITIONS, parts.size(), "partitions of " + topic);
            c.assign(parts);
            c.seekToBeginning(parts);
            int count = 0;
            while (count < n && System.currentTimeMillis() < end)
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    got.computeIfAbsent(r.partition(), k -> new ArrayList<>())
                        .add(r.key() + "=" + r.value());
                    count++;
                }
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofSeconds(1)))
                got.computeIfAbsent(r.partition(), k -> new ArrayList<>())
                    .add(r.key() + "=" + r.value());
        }
        return got;
    }
}
