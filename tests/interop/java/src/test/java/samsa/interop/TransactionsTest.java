package samsa.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/*
 * Transactions (issue 4): acceptance 1 (committed/aborted transactions seen
 * by read_committed and read_uncommitted consumers), 3 (fencing), 4 (a
 * producer gone inside a transaction is aborted after its timeout) and 6
 * (kafka-transactions --list / --describe).
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class TransactionsTest {
    private static final int PARTITIONS = 3;

    @TempDir
    Path tmp;

    private static void createTopic(String topic, int partitions) throws Exception {
        try (Admin a = Admin.create(Env.adminProps())) {
            a.createTopics(List.of(new NewTopic(topic, partitions, (short) 1)))
                .all().get(30, TimeUnit.SECONDS);
        }
    }

    private static KafkaProducer<String, String> producer(String txnId, int timeoutMs) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, timeoutMs);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 0);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30000);
        return new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
    }

    private static KafkaConsumer<String, String> consumer(String isolation) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        return new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer());
    }

    /* Every value of topic[0..partitions) up to the consumer's end (the LSO
     * under read_committed), read from the beginning. */
    private static List<String> readAll(String topic, int partitions, String isolation) {
        List<String> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer(isolation)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < partitions; i++)
                tps.add(new TopicPartition(topic, i));
            c.assign(tps);
            c.seekToBeginning(tps);
            var end = c.endOffsets(tps);
            long deadline = System.currentTimeMillis() + 60000;
            while (System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200)))
                    out.add(r.value());
                boolean done = true;
                for (TopicPartition tp : tps)
                    done &= c.position(tp) >= end.get(tp);
                if (done)
                    break;
            }
        }
        return out;
    }

    /* Acceptance 1. */
    @Test
    void committedAndAbortedTransactions() throws Exception {
        int txns = Integer.parseInt(System.getProperty("samsa.txns", "1000"));
        String topic = Env.topic("txn");
        createTopic(topic, PARTITIONS);
        Set<String> committed = new HashSet<>(), all = new HashSet<>();
        try (KafkaProducer<String, String> p = producer(Env.topic("txn-id"), 60000)) {
            p.initTransactions();
            for (int t = 0; t < txns; t++) {
                p.beginTransaction();
                List<String> vals = new ArrayList<>();
                for (int part = 0; part < PARTITIONS; part++) {
                    String v = "t" + t + "-p" + part;
                    vals.add(v);
                    p.send(new ProducerRecord<>(topic, part, null, v));
                }
                all.addAll(vals);
                if (t % 2 == 0) {
                    p.commitTransaction();
                    committed.addAll(vals);
                } else {
                    /* Sent first, so the aborted records are in the log. */
                    p.flush();
                    p.abortTransaction();
                }
            }
        }
        List<String> rc = readAll(topic, PARTITIONS, "read_committed");
        assertEquals(committed.size(), rc.size(), "read_committed count");
        assertEquals(committed, new HashSet<>(rc));
        List<String> ru = readAll(topic, PARTITIONS, "read_uncommitted");
        /* Every data record once, nothing else (control records never
         * reach the application). */
        assertEquals(all.size(), ru.size(), "read_uncommitted count");
        assertEquals(all, new HashSet<>(ru));
    }

    /* Acceptance 3. */
    @Test
    void olderProducerIsFenced() throws Exception {
        String topic = Env.topic("txn-fence");
        createTopic(topic, 2);
        String id = Env.topic("fence-id");
        try (KafkaProducer<String, String> older = producer(id, 60000)) {
            older.initTransactions();
            older.beginTransaction();
            older.send(new ProducerRecord<>(topic, 0, null, "zombie")).get();
            try (KafkaProducer<String, String> newer = producer(id, 60000)) {
                newer.initTransactions();
                /* A partition new to its transaction: AddPartitionsToTxn
                 * answers PRODUCER_FENCED (its open transaction on
                 * partition 0 was aborted by the newer one's init). */
                KafkaException e = assertThrows(KafkaException.class, () -> {
                    older.send(new ProducerRecord<>(topic, 1, null, "late"));
                    older.commitTransaction();
                });
                Throwable cause = e;
                boolean fenced = false;
                while (cause != null) {
                    fenced |= cause instanceof ProducerFencedException;
                    cause = cause.getCause();
                }
                assertTrue(fenced, "expected ProducerFencedException, got " + e);
                newer.beginTransaction();
                newer.send(new ProducerRecord<>(topic, 0, null, "fresh"));
                newer.commitTransaction();
            }
        }
        assertEquals(List.of("fresh"), readAll(topic, 2, "read_committed"));
    }

    /* Acceptance 4: a producer that goes silent inside its transaction
     * (as if killed) is aborted after transaction.timeout.ms, and
     * read_committed consumers then read what was committed after it. */
    @Test
    void timedOutTransactionIsAborted() throws Exception {
        String topic = Env.topic("txn-timeout");
        createTopic(topic, 1);
        KafkaProducer<String, String> hung = producer(Env.topic("hung-id"), 3000);
        hung.initTransactions();
        hung.beginTransaction();
        hung.send(new ProducerRecord<>(topic, 0, null, "never")).get();
        try (KafkaProducer<String, String> p = producer(Env.topic("live-id"), 60000)) {
            p.initTransactions();
            p.beginTransaction();
            p.send(new ProducerRecord<>(topic, 0, null, "after"));
            p.commitTransaction();
        }
        long start = System.currentTimeMillis();
        List<String> got = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer("read_committed")) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            while (got.isEmpty() && System.currentTimeMillis() - start < 60000)
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200)))
                    got.add(r.value());
        }
        hung.close(Duration.ofSeconds(1));
        assertEquals(List.of("after"), got);
    }

    /* Acceptance 6: kafka-transactions list and describe. */
    @Test
    void transactionsTool() throws Exception {
        String topic = Env.topic("txn-tool");
        createTopic(topic, 2);
        String id = Env.topic("tool-id");
        try (KafkaProducer<String, String> p = producer(id, 60000)) {
            p.initTransactions();
            p.beginTransaction();
            p.send(new ProducerRecord<>(topic, 1, null, "open")).get();
            String list = tool("list");
            assertTrue(list.contains(id) && list.contains("Ongoing"), list);
            String describe = tool("describe", "--transactional-id", id);
            assertTrue(describe.contains(id) && describe.contains("Ongoing")
                && describe.contains(topic + "-1"), describe);
            // DescribeProducers: the partition's producer, its open
            // transaction and the time of its last write.
            TopicPartition tp = new TopicPartition(topic, 1);
            try (Admin a = Admin.create(Env.adminProps())) {
                List<ProducerState> ps = a.describeProducers(List.of(tp))
                    .partitionResult(tp).get().activeProducers();
                assertEquals(1, ps.size(), ps.toString());
                ProducerState s = ps.get(0);
                assertEquals(0, s.lastSequence(), s.toString());
                assertEquals(0L, s.currentTransactionStartOffset().getAsLong(),
                    s.toString());
                long age = System.currentTimeMillis() - s.lastTimestamp();
                assertTrue(age >= 0 && age < 60000, s.toString());
            }
            p.commitTransaction();
            describe = tool("describe", "--transactional-id", id);
            assertTrue(describe.contains("CompleteCommit"), describe);
        }
    }

    private String tool(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Env.javaBin(), "-cp",
            Env.toolClasspath(), "org.apache.kafka.tools.TransactionsCommand",
            "--bootstrap-server", Env.bootstrap()));
        cmd.addAll(List.of(args));
        Path out = tmp.resolve("out-" + System.nanoTime());
        Path err = tmp.resolve("err-" + System.nanoTime());
        Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile())
            .redirectError(err.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .start();
        assertTrue(p.waitFor(90, TimeUnit.SECONDS), "kafka-transactions hung");
        String o = Files.readString(out);
        assertEquals(0, p.exitValue(), o + Files.readString(err));
        return o;
    }
}
