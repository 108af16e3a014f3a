package samsa.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.MemberToRemove;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupOptions;
import org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupResult;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.UnknownMemberIdException;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.tools.StreamsResetter;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.ThreadMetadata;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.state.Stores;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/*
 * Kafka Streams and ksqlDB (issue 5): what Streams 4.x asks of a broker
 * beyond the seed pipeline.  One application with a windowed count (its
 * changelog "compact,delete" with a computed retention.ms), a versioned
 * table (its changelog with min.compaction.lag.ms) and a repartition topic,
 * all created by Streams with replication factor -1; then Admin
 * removeMembersFromConsumerGroup: an unknown group.instance.id is answered
 * UNKNOWN_MEMBER_ID for that member, and removing every member makes the
 * application rejoin and go on counting; at the end
 * kafka-streams-application-reset and the group's deletion.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class StreamsInternalsTest {
    @TempDir
    Path tmp;

    @Test
    void internalTopicsAndMemberRemoval() throws Exception {
        String appId = Env.topic("internals-app");
        String input = Env.topic("internals-in"), table = Env.topic("internals-table");
        String output = Env.topic("internals-out");
        try (Admin a = Admin.create(Env.adminProps())) {
            a.createTopics(List.of(new NewTopic(input, 2, (short) 1),
                new NewTopic(table, 2, (short) 1), new NewTopic(output, 2, (short) 1)))
                .all().get(30, TimeUnit.SECONDS);
        }
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        p.put(StreamsConfig.STATE_DIR_CONFIG, tmp.toString());
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 6000);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 1000);

        StreamsBuilder sb = new StreamsBuilder();
        /* Re-keyed (a repartition topic), then counted per minute. */
        sb.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
            .selectKey((k, v) -> v)
            .groupByKey()
            .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMinutes(1), Duration.ofMinutes(1)))
            .count(Materialized.as("per-minute"))
            .toStream()
            .map((w, n) -> KeyValue.pair(w.key(), n))
            .to(output, Produced.with(Serdes.String(), Serdes.Long()));
        sb.table(table, Consumed.with(Serdes.String(), Serdes.String()),
            Materialized.as(Stores.persistentVersionedKeyValueStore("versioned",
                Duration.ofMinutes(5))));
        List<Throwable> errors = new ArrayList<>();
        KafkaStreams ks = new KafkaStreams(sb.build(), p);
        ks.setUncaughtExceptionHandler(e -> {
            synchronized (errors) {
                errors.add(e);
            }
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        try (KafkaProducer<String, String> pr = producer();
             KafkaConsumer<String, Long> c = consumer(output);
             Admin a = Admin.create(Env.adminProps())) {
            ks.start();
            pr.send(new ProducerRecord<>(input, "k", "apple")).get(30, TimeUnit.SECONDS);
            pr.send(new ProducerRecord<>(table, "t", "v1")).get(30, TimeUnit.SECONDS);
            awaitCount(c, "apple", 1, ks, errors);

            String rekey = appId + "-per-minute-repartition";
            String windowed = appId + "-per-minute-changelog";
            String versioned = appId + "-versioned-changelog";
            Map<String, TopicDescription> d = a.describeTopics(List.of(rekey, windowed, versioned))
                .allTopicNames().get(30, TimeUnit.SECONDS);
            for (TopicDescription t : d.values()) {
                assertEquals(2, t.partitions().size(), "partitions of " + t.name());
                /* Created with replication factor -1: the broker's default. */
                assertEquals(1, t.partitions().get(0).replicas().size(), "replicas of " + t.name());
            }
            Map<String, Config> cfg = configs(a, rekey, windowed, versioned);
            assertEquals("delete", value(cfg, rekey, "cleanup.policy"));
            assertEquals("-1", value(cfg, rekey, "retention.ms"));
            assertEquals("52428800", value(cfg, rekey, "segment.bytes"));
            assertEquals(Set.of("compact", "delete"),
                Set.of(value(cfg, windowed, "cleanup.policy").split(",")),
                "cleanup.policy of the windowed changelog");
            /* Window size + grace, plus a day of extra retention. */
            assertEquals(2 * 60000L + 86400000L, Long.parseLong(value(cfg, windowed, "retention.ms")));
            assertEquals("compact", value(cfg, versioned, "cleanup.policy"));
            /* The history retention plus a day. */
            assertEquals(5 * 60000L + 86400000L,
                Long.parseLong(value(cfg, versioned, "min.compaction.lag.ms")));
            /* Explicitly set: not reported as defaults. */
            for (String t : List.of(rekey, windowed, versioned)) {
                ConfigEntry e = cfg.get(t).get("cleanup.policy");
                assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, e.source(), t);
            }

            /* LeaveGroup v3+ for a static member that is not there. */
            MemberToRemove ghost = new MemberToRemove("no-such-instance");
            RemoveMembersFromConsumerGroupResult r = a.removeMembersFromConsumerGroup(appId,
                new RemoveMembersFromConsumerGroupOptions(Set.of(ghost)));
            ExecutionException ee = assertThrows(ExecutionException.class,
                () -> r.memberResult(ghost).get(30, TimeUnit.SECONDS));
            assertInstanceOf(UnknownMemberIdException.class, ee.getCause());

            /* Every member removed (by member id): the application notices,
             * rejoins and goes on. */
            ConsumerGroupDescription before = a.describeConsumerGroups(List.of(appId))
                .describedGroups().get(appId).get(30, TimeUnit.SECONDS);
            assertEquals(1, before.members().size(), "members: " + before.members());
            a.removeMembersFromConsumerGroup(appId, new RemoveMembersFromConsumerGroupOptions())
                .all().get(30, TimeUnit.SECONDS);
            ConsumerGroupDescription after = a.describeConsumerGroups(List.of(appId))
                .describedGroups().get(appId).get(30, TimeUnit.SECONDS);
            assertTrue(after.members().stream().noneMatch(m ->
                m.consumerId().equals(before.members().iterator().next().consumerId())),
                "removed member still there: " + after.members());
            pr.send(new ProducerRecord<>(input, "k", "apple")).get(30, TimeUnit.SECONDS);
            awaitCount(c, "apple", 2, ks, errors);
            /* Back in the group as a new member, running its tasks. */
            String removed = before.members().iterator().next().consumerId();
            long deadline = System.currentTimeMillis() + 30000;
            ConsumerGroupDescription again;
            while (true) {
                again = a.describeConsumerGroups(List.of(appId)).describedGroups().get(appId)
                    .get(30, TimeUnit.SECONDS);
                boolean back = again.members().size() == 1
                    && !again.members().iterator().next().consumerId().equals(removed)
                    && ks.state() == KafkaStreams.State.RUNNING && activeTasks(ks) > 0;
                if (back)
                    break;
                assertTrue(System.currentTimeMillis() < deadline, "not back in the group after "
                    + "30 s: " + again.members() + ", streams " + ks.state());
                Thread.sleep(200);
            }
        } finally {
            ks.close(CloseOptions.groupMembershipOperation(
                CloseOptions.GroupMembershipOperation.LEAVE_GROUP).withTimeout(Duration.ofSeconds(30)));
        }
        synchronized (errors) {
            assertTrue(errors.isEmpty(), "stream threads failed: " + errors);
        }

        /* kafka-streams-application-reset: input offsets back to the start,
         * internal topics deleted; then the group deleted, as ksqlDB's
         * query clean-up does. */
        int rc = new StreamsResetter().execute(new String[] {"--bootstrap-server", Env.bootstrap(),
            "--application-id", appId, "--input-topics", input + "," + table});
        assertEquals(0, rc, "kafka-streams-application-reset exit status");
        try (Admin a = Admin.create(Env.adminProps())) {
            Set<String> left = new java.util.TreeSet<>();
            for (String t : a.listTopics().names().get(30, TimeUnit.SECONDS))
                if (t.startsWith(appId + "-"))
                    left.add(t);
            assertTrue(left.isEmpty(), "internal topics left after the reset: " + left);
            Map<TopicPartition, OffsetAndMetadata> offs = a.listConsumerGroupOffsets(appId)
                .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            for (int i = 0; i < 2; i++) {
                OffsetAndMetadata o = offs.get(new TopicPartition(input, i));
                assertTrue(o != null && o.offset() == 0, "offset of " + input + "-" + i
                    + " after the reset: " + offs);
            }
            a.deleteConsumerGroups(List.of(appId)).all().get(30, TimeUnit.SECONDS);
            assertTrue(a.listGroups().all().get(30, TimeUnit.SECONDS).stream()
                .noneMatch(g -> g.groupId().equals(appId)), "group still listed");
        }
    }

    private static int activeTasks(KafkaStreams ks) {
        int n = 0;
        for (ThreadMetadata m : ks.metadataForLocalThreads())
            n += m.activeTasks().size();
        return n;
    }

    private static Map<String, Config> configs(Admin a, String... topics) throws Exception {
        List<ConfigResource> rs = new ArrayList<>();
        for (String t : topics)
            rs.add(new ConfigResource(ConfigResource.Type.TOPIC, t));
        Map<ConfigResource, Config> m = a.describeConfigs(rs).all().get(30, TimeUnit.SECONDS);
        Map<String, Config> out = new java.util.HashMap<>();
        m.forEach((k, v) -> out.put(k.name(), v));
        return out;
    }

    private static String value(Map<String, Config> cfg, String topic, String name) {
        ConfigEntry e = cfg.get(topic).get(name);
        assertNotNull(e, name + " missing from " + topic);
        return e.value();
    }

    private static void awaitCount(KafkaConsumer<String, Long> c, String key, long want,
                                   KafkaStreams ks, List<Throwable> errors) {
        long deadline = System.currentTimeMillis() + 60000;
        while (System.currentTimeMillis() < deadline) {
            for (ConsumerRecord<String, Long> r : c.poll(Duration.ofMillis(200)))
                if (r.key().equals(key) && r.value() == want)
                    return;
            synchronized (errors) {
                if (!errors.isEmpty())
                    fail("stream thread failed: " + errors);
            }
        }
        fail("no count " + want + " for " + key + " in 60 s; streams " + ks.state());
    }

    private static KafkaProducer<String, String> producer() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        return new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
    }

    private static KafkaConsumer<String, Long> consumer(String topic) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        KafkaConsumer<String, Long> c = new KafkaConsumer<>(p, new StringDeserializer(),
            new LongDeserializer());
        List<TopicPartition> tps = List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1));
        c.assign(tps);
        c.seekToBeginning(tps);
        return c;
    }
}
