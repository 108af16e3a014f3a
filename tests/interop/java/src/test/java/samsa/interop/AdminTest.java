package samsa.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidReplicaAssignmentException;
import org.apache.kafka.common.errors.SecurityDisabledException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/*
 * Acceptance 2, the Admin half: create, describe (topic and broker
 * configs), alter configs, list, delete topics, delete records, with the
 * Java client 4.x.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class AdminTest {
    private static final long WAIT_S = 30;

    /* Sources that a value the user never set may carry. */
    private static final Set<ConfigEntry.ConfigSource> DEFAULT_SOURCES = EnumSet.of(
        ConfigEntry.ConfigSource.DEFAULT_CONFIG,
        ConfigEntry.ConfigSource.STATIC_BROKER_CONFIG,
        ConfigEntry.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG);

    private static <T> T get(org.apache.kafka.common.KafkaFuture<T> f) throws Exception {
        return f.get(WAIT_S, TimeUnit.SECONDS);
    }

    private static Config describe(Admin admin, ConfigResource r) throws Exception {
        Config c = get(admin.describeConfigs(List.of(r)).all()).get(r);
        assertNotNull(c, "no configs returned for " + r);
        return c;
    }

    private static ConfigEntry entry(Config c, String name) {
        ConfigEntry e = c.get(name);
        assertNotNull(e, "config " + name + " missing from DescribeConfigs; got "
            + c.entries().stream().map(ConfigEntry::name).sorted().toList());
        return e;
    }

    private static void assertDefault(ConfigEntry e, String value) {
        if (value != null)
            assertEquals(value, e.value(), e.name());
        assertTrue(DEFAULT_SOURCES.contains(e.source()),
            e.name() + " should come from a default, came from " + e.source());
    }

    private static void assertTopicSet(ConfigEntry e, String value) {
        assertEquals(value, e.value(), e.name());
        assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, e.source(), e.name());
        assertFalse(e.isDefault(), e.name() + " isDefault");
    }

    /*
     * Kafka applies config changes through its metadata log, so a describe
     * right after an alter may still show the old value: wait for it.
     */
    private static Config awaitConfig(Admin admin, ConfigResource r, String name,
            String value) throws Exception {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_S);
        for (;;) {
            Config c = describe(admin, r);
            ConfigEntry e = c.get(name);
            if ((e != null && value.equals(e.value())) || System.nanoTime() > until)
                return c;
            Thread.sleep(100);
        }
    }

    private static Set<String> names(Admin admin) throws Exception {
        return get(admin.listTopics().names());
    }

    @Test
    void clusterAndBrokerConfigs() throws Exception {
        try (Admin admin = Admin.create(Env.adminProps())) {
            DescribeClusterResult dc = admin.describeCluster();
            Collection<Node> nodes = get(dc.nodes());
            assertFalse(nodes.isEmpty(), "DescribeCluster returned no broker");
            String clusterId = get(dc.clusterId());
            assertNotNull(clusterId, "cluster id");
            assertFalse(clusterId.isEmpty(), "cluster id");
            /* Metadata must carry the advertised address (what we dialled). */
            String bootstrap = Env.bootstrap();
            assertTrue(nodes.stream().anyMatch(n -> (n.host() + ":" + n.port()).equals(bootstrap)),
                "no broker advertised as " + bootstrap + ": " + nodes);

            Node node = nodes.iterator().next();
            ConfigResource br = new ConfigResource(ConfigResource.Type.BROKER,
                String.valueOf(node.id()));
            Config c = describe(admin, br);
            /* ksqlDB and Kafka Streams read these. */
            assertDefault(entry(c, "num.partitions"), "1");
            assertDefault(entry(c, "default.replication.factor"), "1");
            assertDefault(entry(c, "auto.create.topics.enable"), "true");
            entry(c, "authorizer.class.name");
            entry(c, "message.max.bytes");
            entry(c, "log.retention.bytes");
            entry(c, "log.cleanup.policy");
            entry(c, "min.insync.replicas");
            assertTrue(c.entries().size() >= 20,
                "broker config looks incomplete: " + c.entries().size() + " entries");
        }
    }

    @Test
    void topicLifecycle() throws Exception {
        String t = Env.topic("admin");
        try (Admin admin = Admin.create(Env.adminProps())) {
            /* validate_only creates nothing. */
            get(admin.createTopics(List.of(new NewTopic(t, 3, (short) 1)),
                new CreateTopicsOptions().validateOnly(true)).all());
            assertFalse(names(admin).contains(t), "validateOnly created the topic");

            NewTopic nt = new NewTopic(t, 3, (short) 1).configs(Map.of(
                "retention.ms", "3600000",
                "cleanup.policy", "delete"));
            get(admin.createTopics(List.of(nt)).all());
            assertTrue(names(admin).contains(t), "listTopics lacks " + t);

            ExecutionException dup = assertThrows(ExecutionException.class,
                () -> get(admin.createTopics(List.of(new NewTopic(t, 1, (short) 1))).all()));
            assertInstanceOf(TopicExistsException.class, dup.getCause());

            TopicDescription d = get(admin.describeTopics(List.of(t)).allTopicNames()).get(t);
            assertEquals(t, d.name());
            assertFalse(d.isInternal());
            assertNotEquals(Uuid.ZERO_UUID, d.topicId(), "topic id");
            assertEquals(3, d.partitions().size());
            for (int i = 0; i < 3; i++) {
                TopicPartitionInfo p = d.partitions().get(i);
                assertEquals(i, p.partition());
                assertNotNull(p.leader(), "leader of partition " + i);
                assertEquals(1, p.replicas().size());
                assertEquals(1, p.isr().size());
            }

            ConfigResource tr = new ConfigResource(ConfigResource.Type.TOPIC, t);
            Config c = describe(admin, tr);
            assertTopicSet(entry(c, "retention.ms"), "3600000");
            assertTopicSet(entry(c, "cleanup.policy"), "delete");
            /* Kafka Streams validates these on its internal topics. */
            assertDefault(entry(c, "retention.bytes"), "-1");
            assertDefault(entry(c, "min.compaction.lag.ms"), "0");
            assertDefault(entry(c, "max.message.bytes"), null);
            assertDefault(entry(c, "message.timestamp.type"), "CreateTime");
            assertDefault(entry(c, "segment.bytes"), null);

            get(admin.incrementalAlterConfigs(Map.of(tr, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"),
                    AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("max.message.bytes", "2000000"),
                    AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("cleanup.policy", ""),
                    AlterConfigOp.OpType.DELETE)))).all());
            awaitConfig(admin, tr, "retention.ms", "7200000");
            c = awaitConfig(admin, tr, "max.message.bytes", "2000000");
            assertTopicSet(entry(c, "retention.ms"), "7200000");
            assertTopicSet(entry(c, "max.message.bytes"), "2000000");
            assertDefault(entry(c, "cleanup.policy"), "delete");

            /* Unknown names are refused, as Kafka does. */
            ExecutionException bad = assertThrows(ExecutionException.class,
                () -> get(admin.incrementalAlterConfigs(Map.of(tr, List.of(
                    new AlterConfigOp(new ConfigEntry("no.such.config", "1"),
                        AlterConfigOp.OpType.SET)))).all()));
            assertInstanceOf(InvalidConfigurationException.class, bad.getCause(),
                String.valueOf(bad.getCause()));

            get(admin.createPartitions(Map.of(t, NewPartitions.increaseTo(4))).all());
            d = get(admin.describeTopics(List.of(t)).allTopicNames()).get(t);
            assertEquals(4, d.partitions().size(), "partitions after CreatePartitions");

            get(admin.deleteTopics(List.of(t)).all());
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_S);
            while (names(admin).contains(t)) {
                if (System.nanoTime() > until)
                    fail("topic " + t + " still listed after deleteTopics");
                Thread.sleep(200);
            }
            ExecutionException gone = assertThrows(ExecutionException.class,
                () -> get(admin.describeTopics(List.of(t)).allTopicNames()));
            assertInstanceOf(UnknownTopicOrPartitionException.class, gone.getCause());
        }
    }

    @Test
    void unknownTopicConfigRejectedAtCreate() throws Exception {
        String t = Env.topic("badconf");
        try (Admin admin = Admin.create(Env.adminProps())) {
            NewTopic nt = new NewTopic(t, 1, (short) 1).configs(Map.of("no.such.config", "1"));
            ExecutionException e = assertThrows(ExecutionException.class,
                () -> get(admin.createTopics(List.of(nt)).all()));
            assertInstanceOf(InvalidConfigurationException.class, e.getCause(),
                String.valueOf(e.getCause()));
            assertFalse(names(admin).contains(t));
        }
    }

    /* Replicas named per partition (kafka-topics --replica-assignment):
     * this broker only, once, as many per partition; Kafka's errors
     * otherwise, for CreateTopics and CreatePartitions alike. */
    @Test
    void manualReplicaAssignments() throws Exception {
        String t = Env.topic("assign");
        try (Admin admin = Admin.create(Env.adminProps())) {
            int self = get(admin.describeCluster().nodes()).iterator().next().id();
            for (Map<Integer, List<Integer>> bad : List.of(
                     Map.of(0, List.of(self + 7)),               /* not a broker */
                     Map.of(0, List.of(self, self)),             /* twice */
                     Map.of(0, List.<Integer>of()),              /* none */
                     Map.of(0, List.of(self), 2, List.of(self))  /* a gap */)) {
                ExecutionException e = assertThrows(ExecutionException.class,
                    () -> get(admin.createTopics(List.of(new NewTopic(t, bad))).all()), "" + bad);
                assertInstanceOf(InvalidReplicaAssignmentException.class, e.getCause(),
                    bad + ": " + e.getCause());
                assertFalse(names(admin).contains(t), "created with " + bad);
            }
            var created = admin.createTopics(List.of(new NewTopic(t,
                Map.of(0, List.of(self), 1, List.of(self)))));
            get(created.all());
            assertEquals(2, get(created.numPartitions(t)));
            assertEquals(1, get(created.replicationFactor(t)));
            TopicDescription d = get(admin.describeTopics(List.of(t)).allTopicNames()).get(t);
            assertEquals(2, d.partitions().size());
            for (TopicPartitionInfo p : d.partitions())
                assertEquals(self, p.leader().id());

            ExecutionException e = assertThrows(ExecutionException.class,
                () -> get(admin.createPartitions(Map.of(t, NewPartitions.increaseTo(4,
                    List.of(List.of(self))))).all()));
            assertInstanceOf(InvalidReplicaAssignmentException.class, e.getCause(),
                String.valueOf(e.getCause()));
            e = assertThrows(ExecutionException.class,
                () -> get(admin.createPartitions(Map.of(t, NewPartitions.increaseTo(3,
                    List.of(List.of(self + 7))))).all()));
            assertInstanceOf(InvalidReplicaAssignmentException.class, e.getCause(),
                String.valueOf(e.getCause()));
            get(admin.createPartitions(Map.of(t, NewPartitions.increaseTo(4,
                List.of(List.of(self), List.of(self))))).all());
            assertEquals(4, get(admin.describeTopics(List.of(t)).allTopicNames()).get(t)
                .partitions().size());
        }
    }

    /* kafka-log-dirs' call: one directory, the partition's stored bytes,
     * which shrink when records are deleted. */
    @Test
    void logDirsShowStoredBytes() throws Exception {
        String t = Env.topic("logdirs");
        TopicPartition tp = new TopicPartition(t, 0);
        try (Admin admin = Admin.create(Env.adminProps())) {
            get(admin.createTopics(List.of(new NewTopic(t, 1, (short) 1))).all());
            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
            try (KafkaProducer<String, String> p = new KafkaProducer<>(pp,
                    new StringSerializer(), new StringSerializer())) {
                for (int i = 0; i < 3; i++) /* one batch each */
                    p.send(new ProducerRecord<>(t, 0, "k" + i, "v" + i)).get(WAIT_S, TimeUnit.SECONDS);
            }
            int broker = get(admin.describeCluster().nodes()).iterator().next().id();
            long before = logDirSize(admin, broker, tp);
            assertTrue(before > 3 * 61, "three batches stored: " + before);
            get(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(2))).all());
            long after = logDirSize(admin, broker, tp);
            assertTrue(after > 0 && after < before, before + " bytes, then " + after);
        }
    }

    /* No authorizer: the ACL calls fail as against a Kafka broker without
     * one (kafka-acls prints "No Authorizer is configured"). */
    @Test
    void aclCallsSaySecurityIsDisabled() throws Exception {
        AclBinding acl = new AclBinding(
            new ResourcePattern(ResourceType.TOPIC, "t", PatternType.LITERAL),
            new AccessControlEntry("User:alice", "*", AclOperation.READ,
                AclPermissionType.ALLOW));
        try (Admin admin = Admin.create(Env.adminProps())) {
            for (KafkaFuture<?> f : List.of(
                    admin.describeAcls(AclBindingFilter.ANY).values(),
                    admin.createAcls(List.of(acl)).all(),
                    admin.deleteAcls(List.of(AclBindingFilter.ANY)).all())) {
                ExecutionException e = assertThrows(ExecutionException.class,
                    () -> f.get(WAIT_S, TimeUnit.SECONDS));
                assertInstanceOf(SecurityDisabledException.class, e.getCause());
                assertTrue(e.getCause().getMessage().contains("No Authorizer"),
                    e.getCause().getMessage());
            }
        }
    }

    private static long logDirSize(Admin admin, int broker, TopicPartition tp) throws Exception {
        Map<String, LogDirDescription> dirs =
            get(admin.describeLogDirs(List.of(broker)).allDescriptions()).get(broker);
        assertEquals(1, dirs.size(), "log dirs: " + dirs.keySet());
        LogDirDescription d = dirs.values().iterator().next();
        assertNotNull(d.replicaInfos().get(tp), tp + " not in " + d.replicaInfos().keySet());
        return d.replicaInfos().get(tp).size();
    }

    @Test
    void deleteRecordsMovesLogStart() throws Exception {
        String t = Env.topic("delrec");
        TopicPartition tp = new TopicPartition(t, 0);
        int n = 100;
        try (Admin admin = Admin.create(Env.adminProps())) {
            get(admin.createTopics(List.of(new NewTopic(t, 1, (short) 1))).all());

            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
            pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
            pp.put(ProducerConfig.ACKS_CONFIG, "all");
            pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
            try (KafkaProducer<String, String> p = new KafkaProducer<>(pp,
                    new StringSerializer(), new StringSerializer())) {
                List<java.util.concurrent.Future<RecordMetadata>> acks = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    ProducerRecord<String, String> r = new ProducerRecord<>(t, 0, "k" + i, "v" + i);
                    r.headers().add("i", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                    acks.add(p.send(r));
                }
                p.flush();
                for (int i = 0; i < n; i++)
                    assertEquals(i, acks.get(i).get(WAIT_S, TimeUnit.SECONDS).offset());
            }

            Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> latest =
                get(admin.listOffsets(Map.of(tp, OffsetSpec.latest())).all());
            assertEquals(n, latest.get(tp).offset(), "latest offset");

            long low = get(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(40)))
                .lowWatermarks().get(tp)).lowWatermark();
            assertEquals(40, low, "low watermark after deleteRecords");
            assertEquals(40, get(admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).all())
                .get(tp).offset(), "earliest offset after deleteRecords");
            assertEquals(n, get(admin.listOffsets(Map.of(tp, OffsetSpec.latest())).all())
                .get(tp).offset(), "latest offset after deleteRecords");

            /* A group-less consumer starts at the new log start. */
            Properties cp = new Properties();
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
            cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp,
                    new StringDeserializer(), new StringDeserializer())) {
                c.assign(List.of(tp));
                c.seekToBeginning(List.of(tp));
                List<ConsumerRecord<String, String>> got = new ArrayList<>();
                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_S);
                while (got.size() < n - 40 && System.nanoTime() < until) {
                    ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(500));
                    rs.forEach(got::add);
                }
                assertEquals(n - 40, got.size(), "records after deleteRecords");
                for (int i = 0; i < got.size(); i++) {
                    ConsumerRecord<String, String> r = got.get(i);
                    assertEquals(40 + i, r.offset());
                    assertEquals("k" + (40 + i), r.key());
                    assertEquals("v" + (40 + i), r.value());
                    Header h = r.headers().lastHeader("i");
                    assertNotNull(h);
                    assertEquals(Integer.toString(40 + i), new String(h.value(), StandardCharsets.UTF_8));
                }
            }
            get(admin.deleteTopics(List.of(t)).all());
        }
    }
}
