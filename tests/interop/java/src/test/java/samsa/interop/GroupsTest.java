package samsa.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/*
 * Issue 3 (consumer groups), acceptance 1, 2 and 5 with the Java client 4.x
 * and the kafka-tools classes behind kafka-console-consumer.sh and
 * kafka-consumer-groups.sh, each tool in its own JVM.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class GroupsTest {
    @TempDir
    Path tmp;

    private int runs;

    /* Runs a tool to its end; returns its stdout (fails on a non-zero exit). */
    private String tool(String... args) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(Env.javaBin());
        cmd.add("-cp");
        cmd.add(Env.toolClasspath());
        cmd.addAll(List.of(args));
        Path out = tmp.resolve("tool" + runs + ".out");
        Path err = tmp.resolve("tool" + runs++ + ".err");
        Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile())
            .redirectError(err.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail(args[0] + " did not finish; stderr:\n" + Files.readString(err));
        }
        String stdout = Files.readString(out);
        assertEquals(0, p.exitValue(), args[0] + " failed; stdout:\n" + stdout
            + "\nstderr:\n" + Files.readString(err));
        return stdout;
    }

    private static void createTopic(String t, int partitions) throws Exception {
        try (Admin admin = Admin.create(Env.adminProps())) {
            admin.createTopics(List.of(new NewTopic(t, partitions, (short) 1)))
                .all().get(30, TimeUnit.SECONDS);
        }
    }

    /* Records from..to-1, round robin over the partitions. */
    private static void produce(String t, int partitions, int from, int to)
            throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        try (KafkaProducer<String, String> prod = new KafkaProducer<>(p)) {
            for (int i = from; i < to; i++)
                prod.send(new ProducerRecord<>(t, i % partitions, "k" + i, "v" + i));
            prod.flush();
        }
    }

    private String consoleConsumer(String t, String group, int max) throws Exception {
        return tool("org.apache.kafka.tools.consumer.ConsoleConsumer",
            "--bootstrap-server", Env.bootstrap(), "--topic", t,
            "--group", group, "--from-beginning",
            "--max-messages", Integer.toString(max), "--timeout-ms", "30000");
    }

    private static Set<String> lines(String s) {
        return s.lines().filter(l -> !l.isBlank()).collect(Collectors.toSet());
    }

    private static Set<String> values(int from, int to) {
        Set<String> s = new HashSet<>();
        for (int i = from; i < to; i++)
            s.add("v" + i);
        return s;
    }

    /* Acceptance 1: a second console consumer of the group reads only what
     * came after the first one's commits. */
    @Test
    void consoleConsumerGroupResumesAfterCommits() throws Exception {
        String t = Env.topic("group-console");
        String g = "g-" + t;
        createTopic(t, 1);
        produce(t, 1, 0, 50);
        assertEquals(values(0, 50), lines(consoleConsumer(t, g, 50)));
        produce(t, 1, 50, 80);
        assertEquals(values(50, 80), lines(consoleConsumer(t, g, 30)));
    }

    /* Acceptance 2: kafka-consumer-groups --list, --describe (members and
     * lag), --reset-offsets --to-earliest --execute, --delete. */
    @Test
    void consumerGroupsTool() throws Exception {
        String t = Env.topic("group-tool");
        String g = "g-" + t;
        createTopic(t, 3);
        produce(t, 3, 0, 90);
        Properties c = consumerProps(g);
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        String cg = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";
        try (KafkaConsumer<String, String> cons = new KafkaConsumer<>(c)) {
            cons.subscribe(List.of(t));
            int n = 0;
            long deadline = System.currentTimeMillis() + 60000;
            while (n < 90 && System.currentTimeMillis() < deadline)
                n += cons.poll(Duration.ofMillis(200)).count();
            assertEquals(90, n);
            /* Commit two thirds of partition 0 only: lag shows. */
            cons.commitSync(Map.of(new TopicPartition(t, 0), new OffsetAndMetadata(20, "meta")));
            cons.commitSync(Map.of(new TopicPartition(t, 1), new OffsetAndMetadata(30),
                new TopicPartition(t, 2), new OffsetAndMetadata(30)));

            assertTrue(lines(tool(cg, "--bootstrap-server", Env.bootstrap(), "--list"))
                .contains(g));
            String members = tool(cg, "--bootstrap-server", Env.bootstrap(),
                "--describe", "--group", g, "--members");
            assertTrue(members.contains(g) && members.contains("consumer"),
                members);
            String desc = tool(cg, "--bootstrap-server", Env.bootstrap(),
                "--describe", "--group", g);
            /* GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ... */
            boolean lagged = desc.lines().anyMatch(l -> {
                String[] f = l.trim().split("\\s+");
                return f.length >= 6 && f[1].equals(t) && f[2].equals("0")
                    && f[3].equals("20") && f[4].equals("30") && f[5].equals("10");
            });
            assertTrue(lagged, desc);
        }
        /* The member left: the group is empty and can be reset. */
        waitState(g, GroupState.EMPTY);
        String reset = tool(cg, "--bootstrap-server", Env.bootstrap(), "--group", g,
            "--topic", t, "--reset-offsets", "--to-earliest", "--execute");
        assertTrue(reset.contains(t), reset);
        try (Admin admin = Admin.create(Env.adminProps())) {
            Map<TopicPartition, OffsetAndMetadata> offs = admin
                .listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata()
                .get(30, TimeUnit.SECONDS);
            assertEquals(3, offs.size(), offs.toString());
            for (OffsetAndMetadata o : offs.values())
                assertEquals(0, o.offset());
        }
        String del = tool(cg, "--bootstrap-server", Env.bootstrap(), "--delete",
            "--group", g);
        assertTrue(del.contains("successful"), del);
        assertTrue(!lines(tool(cg, "--bootstrap-server", Env.bootstrap(), "--list"))
            .contains(g));
    }

    private static Properties consumerProps(String group) {
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        c.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        return c;
    }

    private static ConsumerGroupDescription describe(String g) throws Exception {
        try (Admin admin = Admin.create(Env.adminProps())) {
            return admin.describeConsumerGroups(List.of(g)).describedGroups().get(g)
                .get(30, TimeUnit.SECONDS);
        }
    }

    private static void waitState(String g, GroupState want) throws Exception {
        long deadline = System.currentTimeMillis() + 60000;
        GroupState st = null;
        while (System.currentTimeMillis() < deadline) {
            st = describe(g).groupState();
            if (st == want)
                return;
            Thread.sleep(200);
        }
        fail("group " + g + " is " + st + ", not " + want);
    }

    /* Acceptance 5: a static member (group.instance.id) that restarts within
     * its session timeout keeps its partitions, without a rebalance. */
    @Test
    void staticMemberRestartsWithoutRebalance() throws Exception {
        String t = Env.topic("group-static");
        String g = "g-" + t;
        createTopic(t, 4);
        produce(t, 4, 0, 40);
        List<String> events = new ArrayList<>();
        ConsumerRebalanceListener listener = new ConsumerRebalanceListener() {
            @Override
            public void onPartitionsRevoked(Collection<TopicPartition> p) {
                if (!p.isEmpty())
                    events.add("revoked " + p);
            }

            @Override
            public void onPartitionsAssigned(Collection<TopicPartition> p) {
                events.add("assigned " + p);
            }
        };
        Properties a = consumerProps(g);
        a.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "static-a");
        a.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "30000");
        Properties b = consumerProps(g);
        b.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "static-b");
        b.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "30000");
        try (KafkaConsumer<String, String> cb = new KafkaConsumer<>(b)) {
            cb.subscribe(List.of(t), listener);
            Set<TopicPartition> aOwned;
            int generation;
            try (KafkaConsumer<String, String> ca = new KafkaConsumer<>(a)) {
                ca.subscribe(List.of(t));
                long deadline = System.currentTimeMillis() + 60000;
                while (System.currentTimeMillis() < deadline
                    && (ca.assignment().size() + cb.assignment().size() != 4
                        || ca.assignment().isEmpty() || cb.assignment().isEmpty())) {
                    ca.poll(Duration.ofMillis(100));
                    cb.poll(Duration.ofMillis(100));
                }
                aOwned = new HashSet<>(ca.assignment());
                assertEquals(4, aOwned.size() + cb.assignment().size());
                generation = ca.groupMetadata().generationId();
            } /* close: a static member sends no LeaveGroup */
            assertEquals(2, describe(g).members().size());
            events.clear();
            Set<TopicPartition> bOwned = new HashSet<>(cb.assignment());
            try (KafkaConsumer<String, String> ca = new KafkaConsumer<>(a)) {
                ca.subscribe(List.of(t));
                long deadline = System.currentTimeMillis() + 30000;
                while (System.currentTimeMillis() < deadline
                    && ca.assignment().isEmpty()) {
                    ConsumerRecords<String, String> r = ca.poll(Duration.ofMillis(100));
                    cb.poll(Duration.ofMillis(100));
                    assertTrue(r != null);
                }
                assertEquals(aOwned, ca.assignment());
                assertEquals(generation, ca.groupMetadata().generationId());
                for (int i = 0; i < 10; i++) {
                    ca.poll(Duration.ofMillis(100));
                    cb.poll(Duration.ofMillis(100));
                }
                assertEquals(bOwned, cb.assignment());
                assertTrue(events.isEmpty(), "the other member saw a rebalance: " + events);
                ConsumerGroupDescription d = describe(g);
                assertEquals(GroupState.STABLE, d.groupState());
                assertEquals(2, d.members().size());
            }
        }
    }

    /* The consumer group protocol (KIP-848, group.protocol=consumer): the
     * broker assigns.  Two members split four partitions with no partition
     * owned twice, read every record between them, commit at their member
     * epochs; the admin client and kafka-consumer-groups describe the group
     * as a consumer group; when one leaves the other owns all four. */
    @Test
    void consumerProtocolGroup() throws Exception {
        String t = Env.topic("group-kip848");
        String g = "g-" + t;
        createTopic(t, 4);
        produce(t, 4, 0, 400);
        Properties c = consumerProps(g);
        c.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        Set<String> seen = new HashSet<>();
        try (KafkaConsumer<String, String> cb = new KafkaConsumer<>(c)) {
            cb.subscribe(List.of(t));
            try (KafkaConsumer<String, String> ca = new KafkaConsumer<>(c)) {
                ca.subscribe(List.of(t));
                long deadline = System.currentTimeMillis() + 90000;
                while (System.currentTimeMillis() < deadline
                    && (seen.size() < 400 || ca.assignment().size() != 2
                        || cb.assignment().size() != 2)) {
                    for (KafkaConsumer<String, String> k : List.of(ca, cb)) {
                        ConsumerRecords<String, String> r = k.poll(Duration.ofMillis(100));
                        r.forEach(rec -> seen.add(rec.value()));
                        Set<TopicPartition> mine = k.assignment();
                        Set<TopicPartition> other = (k == ca ? cb : ca).assignment();
                        for (TopicPartition tp : mine)
                            assertTrue(!other.contains(tp), tp + " owned twice");
                        if (!r.isEmpty())
                            k.commitSync();
                    }
                }
                assertEquals(values(0, 400), seen);
                assertEquals(2, ca.assignment().size());
                assertEquals(2, cb.assignment().size());

                ConsumerGroupDescription d = describe(g);
                assertEquals(org.apache.kafka.common.GroupType.CONSUMER, d.type());
                assertEquals(GroupState.STABLE, d.groupState());
                assertEquals(2, d.members().size());
                for (var m : d.members())
                    assertEquals(2, m.assignment().topicPartitions().size(), d.toString());
                String cg = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";
                String members = tool(cg, "--bootstrap-server", Env.bootstrap(),
                    "--describe", "--group", g, "--members");
                assertTrue(members.contains(ca.groupMetadata().memberId())
                    && members.contains(cb.groupMetadata().memberId()), members);
            } /* ca leaves the group */
            long deadline = System.currentTimeMillis() + 60000;
            while (System.currentTimeMillis() < deadline && cb.assignment().size() != 4)
                cb.poll(Duration.ofMillis(100));
            assertEquals(4, cb.assignment().size());
            assertEquals(1, describe(g).members().size());
        }
        waitState(g, GroupState.EMPTY);
        try (Admin admin = Admin.create(Env.adminProps())) {
            Map<TopicPartition, OffsetAndMetadata> offs = admin
                .listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata()
                .get(30, TimeUnit.SECONDS);
            assertEquals(4, offs.size(), offs.toString());
            for (OffsetAndMetadata o : offs.values())
                assertEquals(100, o.offset(), offs.toString());
        }
    }
}
