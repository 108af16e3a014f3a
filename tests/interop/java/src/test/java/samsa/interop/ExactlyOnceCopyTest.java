package samsa.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/*
 * Transactions (issue 4), acceptance 2: a consume-transform-produce loop
 * (CopyApp, in a subprocess) with sendOffsetsToTransaction is killed
 * (SIGKILL) in the middle of its run and started again with the same
 * transactional id and group; in the end every input record appears exactly
 * once in the output topic as seen by a read_committed consumer, and the
 * group's committed offsets are the ends of the input partitions.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class ExactlyOnceCopyTest {
    private static final int PARTITIONS = 3;

    @TempDir
    Path tmp;

    @Test
    void copyKilledAndRestartedIsExactlyOnce() throws Exception {
        int n = Integer.parseInt(System.getProperty("samsa.eos.records", "20000"));
        String input = Env.topic("eos-in"), output = Env.topic("eos-out");
        String group = Env.topic("eos-group"), txnId = Env.topic("eos-txn");
        try (Admin a = Admin.create(Env.adminProps())) {
            a.createTopics(List.of(new NewTopic(input, PARTITIONS, (short) 1),
                new NewTopic(output, PARTITIONS, (short) 1)))
                .all().get(30, TimeUnit.SECONDS);
        }
        produceInput(input, n);

        /* First run: slowed down (a pause inside every transaction, after
         * its records are flushed), killed inside an open transaction once
         * a quarter is copied. */
        Path out1 = tmp.resolve("copy1.out"), err1 = tmp.resolve("copy1.err");
        Process first = copyApp(input, output, group, txnId, 60000, 150, out1, err1);
        long t0 = System.currentTimeMillis();
        long before;
        while (true) {
            before = lastCount(out1);
            if (before >= n / 4 && lastLine(out1).startsWith("open "))
                break;
            if (!first.isAlive())
                fail("CopyApp exited (" + first.exitValue() + ") before it was killed; stderr:\n"
                    + Files.readString(err1) + "\nstdout tail: " + tail(out1));
            if (System.currentTimeMillis() - t0 > 60000) {
                first.destroyForcibly();
                fail("CopyApp copied only " + before + " of " + n
                    + " records in 60 s; stderr:\n" + Files.readString(err1));
            }
            Thread.sleep(5);
        }
        first.destroyForcibly();
        assertTrue(first.waitFor(30, TimeUnit.SECONDS), "killed CopyApp did not go");
        before = lastCount(out1);
        String last = lastLine(out1);
        assertTrue(before < n, "CopyApp finished before the kill (" + before + ")");
        System.err.println("ExactlyOnceCopyTest: first run killed after "
            + before + " committed records (last line: " + last + "), "
            + (System.currentTimeMillis() - t0) + " ms");

        /* Second run: same transactional id and group, to the end; it exits
         * after 5 s without input. */
        Path out2 = tmp.resolve("copy2.out"), err2 = tmp.resolve("copy2.err");
        long t1 = System.currentTimeMillis();
        Process second = copyApp(input, output, group, txnId, 5000, 0, out2, err2);
        if (!second.waitFor(120, TimeUnit.SECONDS)) {
            second.destroyForcibly();
            fail("restarted CopyApp did not finish in 120 s; copied "
                + lastCount(out2) + "; stderr:\n" + Files.readString(err2));
        }
        assertEquals(0, second.exitValue(), "restarted CopyApp failed; stderr:\n"
            + Files.readString(err2));
        long after = lastCount(out2);
        System.err.println("ExactlyOnceCopyTest: second run copied " + after
            + " records, " + (System.currentTimeMillis() - t1) + " ms");
        /* It resumed from the committed offsets, not from the beginning. */
        assertTrue(after < n && before + after <= n,
            "second run copied " + after + " after " + before + " of " + n);
        /* Killed in the pause of a transaction not yet committed: the
         * second run copied exactly the rest. */
        if (last.startsWith("open "))
            assertEquals(n, before + after, "records copied by the two runs");

        /* Every input exactly once, in its input's partition. */
        Map<String, Integer> seen = new HashMap<>();
        List<String> wrong = new ArrayList<>();
        for (ConsumerRecord<String, String> r : readCommitted(output, n)) {
            seen.merge(r.value(), 1, Integer::sum);
            int i = Integer.parseInt(r.value().substring("copy:in-".length()));
            if (r.partition() != i % PARTITIONS || !("k" + i).equals(r.key()))
                wrong.add(r.partition() + "/" + r.key() + "/" + r.value());
        }
        List<String> missing = new ArrayList<>(), dup = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Integer c = seen.get("copy:in-" + i);
            if (c == null)
                missing.add("in-" + i);
            else if (c > 1)
                dup.add("in-" + i + " x" + c);
        }
        assertTrue(missing.isEmpty(), missing.size() + " inputs missing from the output, e.g. "
            + missing.subList(0, Math.min(10, missing.size())));
        assertTrue(dup.isEmpty(), dup.size() + " inputs more than once in the output, e.g. "
            + dup.subList(0, Math.min(10, dup.size())));
        assertEquals(n, seen.size(), "distinct output values");
        /* The killed transaction's records were in the log and aborted:
         * read_uncommitted sees them as well. */
        int uncommitted = readAll(output, "read_uncommitted").size();
        System.err.println("ExactlyOnceCopyTest: " + uncommitted
            + " records in the output under read_uncommitted");
        assertTrue(uncommitted > n, "no aborted records in the output ("
            + uncommitted + "): the kill did not land in an open transaction");
        assertTrue(wrong.isEmpty(), "records in the wrong partition or with the wrong key: "
            + wrong.subList(0, Math.min(10, wrong.size())));

        /* The group's committed offsets (from its transactions) are the
         * ends of the input partitions. */
        try (Admin a = Admin.create(Env.adminProps())) {
            Map<TopicPartition, OffsetAndMetadata> committed = a
                .listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()
                .get(30, TimeUnit.SECONDS);
            Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
            for (TopicPartition tp : partitions(input))
                latest.put(tp, OffsetSpec.latest());
            var end = a.listOffsets(latest).all().get(30, TimeUnit.SECONDS);
            for (TopicPartition tp : latest.keySet()) {
                OffsetAndMetadata o = committed.get(tp);
                assertTrue(o != null, "no committed offset for " + tp + ": " + committed);
                assertEquals(end.get(tp).offset(), o.offset(), "committed offset of " + tp);
            }
        }
    }

    private static void produceInput(String topic, int n) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<String, String> pr = new KafkaProducer<>(p,
                 new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < n; i++)
                pr.send(new ProducerRecord<>(topic, i % PARTITIONS, "k" + i, "in-" + i));
            pr.flush();
        }
    }

    private Process copyApp(String input, String output, String group, String txnId,
                            long idleMs, long pauseMs, Path out, Path err) throws Exception {
        List<String> cmd = List.of(Env.javaBin(), "-cp", Env.toolClasspath(),
            "samsa.interop.CopyApp", Env.bootstrap(), input, output, group, txnId,
            Long.toString(idleMs), Long.toString(pauseMs));
        return new ProcessBuilder(cmd).redirectOutput(out.toFile())
            .redirectError(err.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .start();
    }

    /* The last "committed N" / "idle N" count CopyApp printed (0: none). */
    private static long lastCount(Path out) throws Exception {
        long last = 0;
        for (String line : Files.readAllLines(out)) {
            String[] w = line.trim().split(" ");
            if (w.length == 2 && (w[0].equals("committed") || w[0].equals("idle")))
                last = Long.parseLong(w[1]);
        }
        return last;
    }

    private static String lastLine(Path out) throws Exception {
        List<String> l = Files.readAllLines(out);
        return l.isEmpty() ? "" : l.get(l.size() - 1);
    }

    private static String tail(Path out) throws Exception {
        List<String> l = Files.readAllLines(out);
        return String.join("\n", l.subList(Math.max(0, l.size() - 5), l.size()));
    }

    private static List<TopicPartition> partitions(String topic) {
        List<TopicPartition> tps = new ArrayList<>();
        for (int i = 0; i < PARTITIONS; i++)
            tps.add(new TopicPartition(topic, i));
        return tps;
    }

    private static KafkaConsumer<String, String> consumer(String isolation) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 2000);
        return new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer());
    }

    /* Every record of the topic up to its end (the LSO under
     * read_committed), from the beginning; at least `expect` of them unless
     * 60 s pass first. */
    private static List<ConsumerRecord<String, String>> readCommitted(String topic, int expect) {
        return read(topic, "read_committed", expect);
    }

    private static List<ConsumerRecord<String, String>> readAll(String topic, String isolation) {
        return read(topic, isolation, 0);
    }

    private static List<ConsumerRecord<String, String>> read(String topic, String isolation,
                                                             int expect) {
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer(isolation)) {
            List<TopicPartition> tps = partitions(topic);
            c.assign(tps);
            c.seekToBeginning(tps);
            long deadline = System.currentTimeMillis() + 60000;
            while (System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200)))
                    out.add(r);
                Map<TopicPartition, Long> end = c.endOffsets(tps);
                boolean done = out.size() >= expect;
                for (TopicPartition tp : tps)
                    done &= c.position(tp) >= end.get(tp);
                if (done)
                    break;
            }
        }
        return out;
    }
}
