package samsa.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.ThreadMetadata;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/*
 * Kafka Streams and ksqlDB (issue 5), acceptance 4: a word count
 * (exactly_once_v2, no record cache, so every input word gives one output
 * record) with two instances of one application, two stream threads each,
 * static membership and one standby replica, while a producer writes lines
 * without a pause:
 *
 *   1. A and B both running, each with tasks;
 *   2. A closed leaving the group: Streams removes its static members with
 *      Admin removeMembersFromConsumerGroup (LeaveGroup by
 *      group.instance.id); B takes every task, restoring A's stores from
 *      the changelogs;
 *   3. A back (its state directory kept) and given tasks again;
 *   4. B closed without leaving (a crash as far as the group knows) and
 *      started again at once with the same group.instance.ids: a static
 *      member's rejoin;
 *   5. the producer stops; the counts catch up.
 *
 * Under exactly_once_v2 the read_committed output for every word is exactly
 * 1, 2, ..., N: no count lost, repeated or skipped across the moves, and N
 * is the word's number in the input.  (at_least_once could only promise
 * counts that never go down and end at least at N: a task moved before its
 * commit counts again what it had counted since.  The exact check is the
 * honest one, so the test runs exactly_once_v2.)
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class WordCountFailoverTest {
    private static final int PARTITIONS = 4;
    private static final int WORDS = 40;
    private static final int LINES_PER_PAUSE = 20;

    @TempDir
    Path tmp;

    private String appId, input, output;
    private final List<String> errors = new ArrayList<>();

    @Test
    void countsStayExactWhileInstancesComeAndGo() throws Exception {
        long t0 = System.currentTimeMillis();
        appId = Env.topic("wordcount-app");
        input = Env.topic("wordcount-in");
        output = Env.topic("wordcount-out");
        try (Admin a = Admin.create(Env.adminProps())) {
            a.createTopics(List.of(new NewTopic(input, PARTITIONS, (short) 1),
                new NewTopic(output, PARTITIONS, (short) 1))).all().get(30, TimeUnit.SECONDS);
        }
        Map<String, List<Long>> seen = new HashMap<>();
        Input in = new Input();
        Thread producer = new Thread(in, "wordcount-producer");
        try (KafkaConsumer<String, Long> c = outputConsumer()) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < PARTITIONS; i++)
                tps.add(new TopicPartition(output, i));
            c.assign(tps);
            c.seekToBeginning(tps);

            KafkaStreams a = start("a"), b = start("b");
            producer.start();
            awaitTasks(a, 1, "A at the start", c, seen);
            awaitTasks(b, 1, "B at the start", c, seen);
            log(t0, "A and B running", a, b, in);

            close(a, true);
            assertNoMembersOf("a", "after A left");
            awaitTasks(b, 2 * PARTITIONS, "B alone", c, seen);
            log(t0, "A left the group, B has every task", null, b, in);

            a = start("a");
            awaitTasks(a, 1, "A back", c, seen);
            log(t0, "A back", a, b, in);

            close(b, false);
            b = start("b");
            awaitTasks(b, 1, "B restarted", c, seen);
            log(t0, "B restarted as the same static members", a, b, in);

            pollFor(c, seen, 1000);
            in.stop();
            producer.join(30000);
            assertTrue(in.error == null, "producer failed: " + in.error);
            Map<String, Long> expected = in.expected();
            await(c, seen, expected, "the end", a, b);
            log(t0, "every word counted", a, b, in);
            close(a, true);
            close(b, true);

            synchronized (errors) {
                assertTrue(errors.isEmpty(), "stream threads failed: " + errors);
            }
            /* Every word counted once per occurrence, in order, none
             * twice. */
            List<String> wrong = new ArrayList<>();
            for (var e : expected.entrySet()) {
                List<Long> s = seen.getOrDefault(e.getKey(), List.of());
                boolean ok = s.size() == e.getValue();
                for (int i = 0; ok && i < s.size(); i++)
                    ok = s.get(i) == i + 1;
                if (!ok)
                    wrong.add(e.getKey() + ": want 1.." + e.getValue() + ", got "
                        + (s.size() > 40 ? s.size() + " values ending " + s.subList(s.size() - 10,
                            s.size()) : s.toString()));
            }
            assertTrue(wrong.isEmpty(), wrong.size() + " words with wrong counts: "
                + wrong.subList(0, Math.min(5, wrong.size())));
            System.err.println("WordCountFailoverTest: " + in.words + " words in "
                + in.lines + " lines counted exactly, " + (System.currentTimeMillis() - t0) + " ms");
        } finally {
            in.stop();
        }
    }

    /* Lines of three words, produced without a pause between the steps of
     * the test; what was sent is what must be counted. */
    private final class Input implements Runnable {
        private volatile boolean stop;
        private final Map<String, Long> counts = new TreeMap<>();
        volatile long lines, words;
        volatile Exception error;

        void stop() {
            stop = true;
        }

        synchronized Map<String, Long> expected() {
            return new TreeMap<>(counts);
        }

        @Override
        public void run() {
            try (KafkaProducer<String, String> p = producer()) {
                for (long i = 0; !stop; i++) {
                    StringBuilder line = new StringBuilder();
                    List<String> ws = new ArrayList<>();
                    for (int j = 0; j < 3; j++) {
                        String w = "w" + ((i * 7 + j * 13 + i / 101) % WORDS);
                        ws.add(w);
                        line.append(j == 0 ? "" : " ").append(w);
                    }
                    p.send(new ProducerRecord<>(input, Long.toString(i), line.toString()))
                        .get(30, TimeUnit.SECONDS);
                    synchronized (this) {
                        for (String w : ws)
                            counts.merge(w, 1L, Long::sum);
                    }
                    lines++;
                    words += 3;
                    if (i % LINES_PER_PAUSE == 0)
                        Thread.sleep(50);
                }
            } catch (Exception e) {
                error = e;
            }
        }
    }

    private void awaitTasks(KafkaStreams ks, int atLeast, String what,
                            KafkaConsumer<String, Long> c, Map<String, List<Long>> seen) {
        long deadline = System.currentTimeMillis() + 60000;
        while (System.currentTimeMillis() < deadline) {
            if (ks.state() == KafkaStreams.State.RUNNING && activeTasks(ks) >= atLeast)
                return;
            pollFor(c, seen, 200);
            synchronized (errors) {
                if (!errors.isEmpty())
                    fail(what + ": stream threads failed: " + errors);
            }
        }
        fail(what + ": not RUNNING with " + atLeast + " active tasks after 60 s: " + tasks(ks));
    }

    private static int activeTasks(KafkaStreams ks) {
        int n = 0;
        for (ThreadMetadata m : ks.metadataForLocalThreads())
            n += m.activeTasks().size();
        return n;
    }

    private static void pollFor(KafkaConsumer<String, Long> c, Map<String, List<Long>> seen,
                                long ms) {
        long end = System.currentTimeMillis() + ms;
        do {
            for (ConsumerRecord<String, Long> r : c.poll(Duration.ofMillis(100)))
                seen.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.value());
        } while (System.currentTimeMillis() < end);
    }

    private KafkaStreams start(String instance) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        p.put(StreamsConfig.STATE_DIR_CONFIG, tmp.resolve(instance).toString());
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 2);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        p.put(StreamsConfig.REPARTITION_PURGE_INTERVAL_MS_CONFIG, 1000);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        /* Static membership; the broker's minimum session timeout. */
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG),
            appId + "-" + instance);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 6000);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 1000);
        /* Tasks move to an instance that comes back at once (restoring
         * from the changelog), not after a probing rebalance. */
        p.put(StreamsConfig.ACCEPTABLE_RECOVERY_LAG_CONFIG, 1_000_000L);
        /* Each instance also keeps the other's stores as standby tasks,
         * reading the changelogs read_committed as they grow. */
        p.put(StreamsConfig.NUM_STANDBY_REPLICAS_CONFIG, 1);

        StreamsBuilder sb = new StreamsBuilder();
        sb.<String, String>stream(input)
            .flatMapValues(line -> Arrays.asList(line.split(" ")))
            .groupBy((k, w) -> w, Grouped.with("words", Serdes.String(), Serdes.String()))
            .count(Materialized.as("counts"))
            .toStream()
            .to(output, Produced.with(Serdes.String(), Serdes.Long()));
        p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        KafkaStreams ks = new KafkaStreams(sb.build(), p);
        ks.setUncaughtExceptionHandler(e -> {
            synchronized (errors) {
                errors.add(instance + ": " + e);
            }
            e.printStackTrace();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        ks.start();
        return ks;
    }

    private static void close(KafkaStreams ks, boolean leave) {
        CloseOptions o = CloseOptions.groupMembershipOperation(leave
            ? CloseOptions.GroupMembershipOperation.LEAVE_GROUP
            : CloseOptions.GroupMembershipOperation.REMAIN_IN_GROUP)
            .withTimeout(Duration.ofSeconds(60));
        assertTrue(ks.close(o), "streams did not close in 60 s");
    }

    /* The static members of an instance that left are gone from the group
     * at once, not after their session timeout. */
    private void assertNoMembersOf(String instance, String when) throws Exception {
        try (Admin a = Admin.create(Env.adminProps())) {
            ConsumerGroupDescription d = a.describeConsumerGroups(List.of(appId))
                .describedGroups().get(appId).get(30, TimeUnit.SECONDS);
            long n = d.members().stream()
                .filter(m -> m.groupInstanceId().orElse("").startsWith(appId + "-" + instance))
                .count();
            assertEquals(0, n, "members of " + instance + " " + when + ": " + d.members());
        }
    }

    /* Reads the output until every word's last count is the expected total
     * (they only go up, so this is the end). */
    private void await(KafkaConsumer<String, Long> c, Map<String, List<Long>> seen,
                       Map<String, Long> expected, String what, KafkaStreams a,
                       KafkaStreams b) {
        long deadline = System.currentTimeMillis() + 60000;
        while (System.currentTimeMillis() < deadline) {
            for (ConsumerRecord<String, Long> r : c.poll(Duration.ofMillis(200)))
                seen.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.value());
            boolean done = true;
            for (var e : expected.entrySet()) {
                List<Long> s = seen.get(e.getKey());
                if (s == null || s.get(s.size() - 1) < e.getValue()) {
                    done = false;
                    break;
                }
            }
            if (done)
                return;
            synchronized (errors) {
                if (!errors.isEmpty())
                    fail(what + ": stream threads failed: " + errors);
            }
        }
        Map<String, String> behind = new TreeMap<>();
        for (var e : expected.entrySet()) {
            List<Long> s = seen.get(e.getKey());
            long last = s == null ? 0 : s.get(s.size() - 1);
            if (last < e.getValue())
                behind.put(e.getKey(), last + "/" + e.getValue());
        }
        fail(what + ": counts behind after 60 s: " + behind + "; A " + tasks(a) + ", B " + tasks(b));
    }

    private void log(long t0, String what, KafkaStreams a, KafkaStreams b, Input in) {
        System.err.println("WordCountFailoverTest: " + what + " after "
            + (System.currentTimeMillis() - t0) + " ms, " + in.lines + " lines sent; A "
            + tasks(a) + ", B " + tasks(b));
    }

    private static String tasks(KafkaStreams ks) {
        if (ks == null)
            return "closed";
        List<String> t = new ArrayList<>(), sb = new ArrayList<>();
        for (ThreadMetadata m : ks.metadataForLocalThreads()) {
            m.activeTasks().forEach(x -> t.add(x.taskId().toString()));
            m.standbyTasks().forEach(x -> sb.add(x.taskId().toString()));
        }
        return ks.state() + " active " + t + " standby " + sb;
    }

    private static KafkaProducer<String, String> producer() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        return new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
    }

    private static KafkaConsumer<String, Long> outputConsumer() {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        return new KafkaConsumer<>(p, new StringDeserializer(), new LongDeserializer());
    }
}
