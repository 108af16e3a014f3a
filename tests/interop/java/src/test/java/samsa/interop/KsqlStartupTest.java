package samsa.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.NoOffsetForPartitionException;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/*
 * Kafka Streams and ksqlDB (issue 5), acceptance 3: the admin calls ksqlDB's
 * server makes before it serves (reference/notes/kafka-protocol.md section
 * 3), in its order, each answer checked as ksqlDB reads it; then its command
 * topic written as ksqlDB writes statements (one transaction each,
 * transactional.id = the service id, acks=all) and read as its command
 * runner reads it (read_committed, auto.offset.reset=none, from offset 0).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class KsqlStartupTest {
    private static final long WAIT_S = 30;

    /* ksqlDB's KsqlInternalTopicUtils: what the command topic must have. */
    private static final Map<String, String> COMMAND_TOPIC_CONFIG = new LinkedHashMap<>();

    static {
        COMMAND_TOPIC_CONFIG.put("retention.ms", "-1");
        COMMAND_TOPIC_CONFIG.put("cleanup.policy", "delete");
        COMMAND_TOPIC_CONFIG.put("unclean.leader.election.enable", "false");
        COMMAND_TOPIC_CONFIG.put("min.insync.replicas", "1");
    }

    private static <T> T get(KafkaFuture<T> f) throws Exception {
        return f.get(WAIT_S, TimeUnit.SECONDS);
    }

    @Test
    void startupSequence() throws Exception {
        String serviceId = "samsa_" + Long.toHexString(System.nanoTime()) + "_";
        String commandTopic = "_confluent-ksql-" + serviceId + "_command_topic";
        try (Admin a = Admin.create(Env.adminProps())) {
            /* KsqlRestApplication: KafkaClusterUtil.getKafkaClusterId. */
            DescribeClusterResult dc = a.describeCluster();
            String clusterId = get(dc.clusterId());
            assertNotNull(clusterId, "cluster id");
            assertFalse(clusterId.isBlank(), "cluster id");
            Collection<Node> nodes = get(dc.nodes());
            assertFalse(nodes.isEmpty(), "no brokers");
            Node controller = get(dc.controller());
            assertNotNull(controller, "no controller");

            /* KsqlAuthorizationValidatorFactory: the BROKER resource of a
             * node, its authorizer.class.name (empty: no authorizer). */
            String node = nodes.iterator().next().idString();
            ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, node);
            Config bc = get(a.describeConfigs(List.of(broker)).all()).get(broker);
            assertNotNull(bc, "no configs for broker " + node);
            ConfigEntry authorizer = bc.get("authorizer.class.name");
            assertNotNull(authorizer, "authorizer.class.name missing from broker " + node);
            String auth = authorizer.value() == null ? "" : authorizer.value();
            assertEquals("", auth, "samsa has no authorizer");
            /* ksqlDB asks for the authorized operations only with an
             * authorizer; the call must work either way. */
            get(a.describeCluster(new DescribeClusterOptions().includeAuthorizedOperations(true))
                .clusterId());

            /* KafkaTopicClientImpl: replicas from default.replication.factor,
             * read as a short. */
            ConfigEntry drf = bc.get("default.replication.factor");
            assertNotNull(drf, "default.replication.factor missing");
            short replicas = Short.parseShort(drf.value());
            assertTrue(replicas >= 1, "default.replication.factor " + replicas);
            for (String name : List.of("num.partitions", "min.insync.replicas"))
                assertNotNull(bc.get(name), name + " missing from the broker configs");

            /* KsqlInternalTopicUtils.ensureTopic: is it there?  (no) then
             * create it; the sandbox validates first (validateOnly). */
            assertFalse(get(a.listTopics().names()).contains(commandTopic));
            NewTopic nt = new NewTopic(commandTopic, 1, replicas).configs(COMMAND_TOPIC_CONFIG);
            get(a.createTopics(List.of(nt), new CreateTopicsOptions().validateOnly(true)).all());
            assertFalse(get(a.listTopics().names()).contains(commandTopic),
                "validateOnly created " + commandTopic);
            var created = a.createTopics(List.of(nt));
            get(created.all());
            assertEquals(1, get(created.numPartitions(commandTopic)));
            assertEquals((int) replicas, get(created.replicationFactor(commandTopic)).intValue());
            Config createdCfg = get(created.config(commandTopic));
            for (var e : COMMAND_TOPIC_CONFIG.entrySet())
                assertEquals(e.getValue(), createdCfg.get(e.getKey()).value(),
                    e.getKey() + " in the CreateTopics answer");

            /* Restart: the topic exists; partitions and replicas checked,
             * then the configs that are not defaults compared with what the
             * command topic needs. */
            revalidate(a, commandTopic, replicas, false);

            /* An operator changed retention: the next start puts it back
             * with IncrementalAlterConfigs. */
            ConfigResource tr = new ConfigResource(ConfigResource.Type.TOPIC, commandTopic);
            get(a.incrementalAlterConfigs(Map.of(tr, List.of(new AlterConfigOp(
                new ConfigEntry("retention.ms", "86400000"), AlterConfigOp.OpType.SET)))).all());
            revalidate(a, commandTopic, replicas, true);
            revalidate(a, commandTopic, replicas, false);

            /* getTopicCleanupPolicy reads cleanup.policy with defaults. */
            Config all = get(a.describeConfigs(List.of(tr)).all()).get(tr);
            assertEquals("delete", all.get("cleanup.policy").value());
            assertNotNull(all.get("segment.bytes"), "defaults missing from DescribeConfigs");
            assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG,
                all.get("segment.bytes").source(), "source of a default");
        }

        commandTopicTransactions(serviceId, commandTopic);
    }

    /* KafkaTopicClientImpl.addTopicConfig as ksqlDB runs it at start-up:
     * true when it had to alter. */
    private static void revalidate(Admin a, String topic, short replicas, boolean expectAlter)
        throws Exception {
        TopicDescription d = get(a.describeTopics(List.of(topic)).allTopicNames()).get(topic);
        assertEquals(1, d.partitions().size(), "partitions of " + topic);
        assertEquals(replicas, d.partitions().get(0).replicas().size(), "replicas of " + topic);
        assertNotNull(d.partitions().get(0).leader(), "leader of " + topic);

        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Map<String, String> existing = nonDefault(a, r);
        boolean changed = COMMAND_TOPIC_CONFIG.entrySet().stream()
            .anyMatch(e -> !Objects.equals(existing.get(e.getKey()), e.getValue()));
        assertEquals(expectAlter, changed, "configs of " + topic + " that are not defaults: "
            + existing);
        if (!changed)
            return;
        Collection<AlterConfigOp> ops = COMMAND_TOPIC_CONFIG.entrySet().stream()
            .map(e -> new AlterConfigOp(new ConfigEntry(e.getKey(), e.getValue()),
                AlterConfigOp.OpType.SET))
            .collect(Collectors.toList());
        get(a.incrementalAlterConfigs(Map.of(r, ops)).all());
        Map<String, String> after = nonDefault(a, r);
        for (var e : COMMAND_TOPIC_CONFIG.entrySet())
            assertEquals(e.getValue(), after.get(e.getKey()), e.getKey() + " after the alter");
    }

    /* topicConfig(topic, includeDefaults=false): the entries set on the
     * topic itself. */
    private static Map<String, String> nonDefault(Admin a, ConfigResource r) throws Exception {
        Config c = get(a.describeConfigs(List.of(r)).all()).get(r);
        Map<String, String> m = new LinkedHashMap<>();
        for (ConfigEntry e : c.entries()) {
            if (e.value() == null || e.source() == ConfigEntry.ConfigSource.DEFAULT_CONFIG)
                continue;
            assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, e.source(),
                "source of " + e.name() + " on " + r.name());
            assertFalse(e.isDefault(), e.name() + " set on the topic but isDefault");
            m.put(e.name(), e.value());
        }
        return m;
    }

    /* CommandStore / DistributingExecutor: every statement is one
     * transaction; the command runner reads read_committed from offset 0,
     * and with auto.offset.reset=none it has no other start. */
    private static void commandTopicTransactions(String serviceId, String topic) throws Exception {
        TopicPartition tp = new TopicPartition(topic, 0);
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, serviceId);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30000);
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        List<String> statements = List.of(
            "CREATE STREAM admission_src (student_id INTEGER) WITH (KAFKA_TOPIC='a');",
            "CREATE TABLE research_ave_boost AS SELECT research FROM b GROUP BY research;");
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp, new StringSerializer(),
                 new StringSerializer());
             KafkaConsumer<String, String> c = new KafkaConsumer<>(cp, new StringDeserializer(),
                 new StringDeserializer())) {
            c.assign(List.of(tp));
            /* No committed offset and reset "none": there is no position
             * until the runner seeks. */
            assertThrows(NoOffsetForPartitionException.class, () -> c.poll(Duration.ofMillis(500)));
            c.seek(tp, 0);
            assertEquals(0, c.endOffsets(List.of(tp)).get(tp), "end of an empty command topic");

            p.initTransactions();
            /* A statement whose execution failed: aborted, never read. */
            p.beginTransaction();
            p.send(new ProducerRecord<>(topic, "stream/`BAD`/create", command("DROP STREAM bad;")))
                .get(WAIT_S, TimeUnit.SECONDS);
            p.abortTransaction();
            int i = 0;
            for (String st : statements) {
                p.beginTransaction();
                p.send(new ProducerRecord<>(topic, "stream/`S" + i++ + "`/create", command(st)))
                    .get(WAIT_S, TimeUnit.SECONDS);
                p.commitTransaction();
            }

            List<ConsumerRecord<String, String>> got = new ArrayList<>();
            long deadline = System.currentTimeMillis() + 30000;
            while (got.size() < statements.size() && System.currentTimeMillis() < deadline)
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200)))
                    got.add(r);
            assertEquals(statements.size(), got.size(), "committed commands read: " + got);
            for (int k = 0; k < statements.size(); k++) {
                assertEquals("stream/`S" + k + "`/create", got.get(k).key());
                assertEquals(command(statements.get(k)), got.get(k).value());
            }
            /* The aborted record and three control records take offsets:
             * 0 aborted, 1 abort marker, 2 and 4 the commands, 3 and 5
             * commit markers; the end under read_committed is after the
             * last marker. */
            assertEquals(2, got.get(0).offset());
            assertEquals(4, got.get(1).offset());
            assertEquals(6, c.endOffsets(List.of(tp)).get(tp), "end of the command topic");
            assertEquals(6, c.position(tp), "position after the last marker");
            assertTrue(c.poll(Duration.ofMillis(300)).isEmpty(), "more records");
        }
    }

    private static String command(String statement) {
        return "{\"statement\":\"" + statement.replace("\"", "\\\"")
            + "\",\"streamsProperties\":{},\"originalProperties\":{},\"plan\":null}";
    }
}
