package samsa.seed;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.avro.Schema;
import org.apache.avro.SchemaBuilder;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.state.KeyValueStore;

/*
 * The seed demo's KSQL (data/seed-demo/SEED-README.md) as a Kafka Streams
 * application:
 *
 *   CREATE STREAM admission_src_rekey AS SELECT * FROM admission_src
 *     PARTITION BY student_id;                    (and research_src_rekey)
 *   CREATE TABLE admission / research over the re-keyed topics;
 *   CREATE TABLE research_boost AS SELECT a.student_id, a.admit_chance,
 *     r.research FROM admission a LEFT JOIN research r ON student_id;
 *   CREATE TABLE research_ave_boost AS SELECT research,
 *     SUM(admit_chance)/COUNT(admit_chance) AS ave_chance
 *     FROM research_boost GROUP BY research;
 *
 * Input: what Debezium's Postgres connector writes with ExtractNewRecordState
 * and AvroConverter: Avro values in Confluent's wire format, schemas in the
 * registry.  Rows are re-keyed by the student_id in the value.  A null value
 * (a delete's tombstone) has no student_id of its own: it takes one from the
 * key when the key names it (StringConverter's "Struct{student_id=7}", a
 * bare number, JSON or Confluent Avro with a student_id field) and is
 * dropped otherwise, as ksqlDB drops null-valued stream rows.  Updates and
 * deletes retract: the aggregate has an adder and a subtractor.
 *
 * Output: key the research value as a string ("0", "1"; StringConverter
 * reads it), value an Avro record {RESEARCH, AVE_CHANCE} registered under
 * "<output>-value"; a group whose last row went away gets a tombstone.
 *
 *   java -cp CLASSPATH samsa.seed.SeedPipeline --bootstrap HOST:PORT
 *     --registry http://HOST:PORT --app-id ID
 *     --guarantee at_least_once|exactly_once_v2 --state-dir DIR
 *     [--admission-topic T] [--research-topic T] [--output-topic T]
 *     [--commit-interval-ms N] [--threads N] [--property name=value]...
 *
 * It creates the output topic when missing (as CREATE TABLE AS does), waits
 * for the input topics to appear, prints its state changes on stdout and
 * stops cleanly on SIGTERM/SIGINT (printing "closed" when it did).
 */
public final class SeedPipeline {
    public static final String DEFAULT_ADMISSION = "dbserver1.public.admission";
    public static final String DEFAULT_RESEARCH = "dbserver1.public.research";
    public static final String DEFAULT_OUTPUT = "RESEARCH_AVE_BOOST";

    /* ksqlDB's value schemas: every column optional. */
    static final Schema BOOST = SchemaBuilder.record("KsqlDataSourceSchema")
        .namespace("io.confluent.ksql.avro_schemas.research_boost").fields()
        .optionalInt("STUDENT_ID").optionalDouble("ADMIT_CHANCE").optionalInt("RESEARCH")
        .endRecord();
    static final Schema AGG = SchemaBuilder.record("Aggregate")
        .namespace("io.confluent.ksql.avro_schemas.research_ave_boost").fields()
        .requiredDouble("SUM").requiredLong("COUNT").endRecord();
    public static final Schema OUTPUT = SchemaBuilder.record("KsqlDataSourceSchema")
        .namespace("io.confluent.ksql.avro_schemas").fields()
        .optionalInt("RESEARCH").optionalDouble("AVE_CHANCE").endRecord();

    public static final class Options {
        public String bootstrap;
        public String registry;
        public String appId;
        public String guarantee = StreamsConfig.AT_LEAST_ONCE;
        public String stateDir;
        public String admissionTopic = DEFAULT_ADMISSION;
        public String researchTopic = DEFAULT_RESEARCH;
        public String outputTopic = DEFAULT_OUTPUT;
        public long commitIntervalMs = 2000; /* the seed's commit.interval.ms */
        public int threads = 1;
        public final Map<String, String> properties = new LinkedHashMap<>();

        public static Options parse(String[] args) {
            Options o = new Options();
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                if (a.equals("-h") || a.equals("--help"))
                    throw new IllegalArgumentException("");
                if (i + 1 >= args.length)
                    throw new IllegalArgumentException(a + " needs a value");
                String v = args[++i];
                switch (a) {
                case "--bootstrap" -> o.bootstrap = v;
                case "--registry" -> o.registry = v;
                case "--app-id" -> o.appId = v;
                case "--guarantee" -> o.guarantee = v;
                case "--state-dir" -> o.stateDir = v;
                case "--admission-topic" -> o.admissionTopic = v;
                case "--research-topic" -> o.researchTopic = v;
                case "--output-topic" -> o.outputTopic = v;
                case "--commit-interval-ms" -> o.commitIntervalMs = Long.parseLong(v);
                case "--threads" -> o.threads = Integer.parseInt(v);
                case "--property" -> {
                    int eq = v.indexOf('=');
                    if (eq <= 0)
                        throw new IllegalArgumentException("--property wants name=value, not " + v);
                    o.properties.put(v.substring(0, eq), v.substring(eq + 1));
                }
                default -> throw new IllegalArgumentException("unknown option " + a);
                }
            }
            for (String[] req : new String[][] {{"--bootstrap", o.bootstrap},
                     {"--registry", o.registry}, {"--app-id", o.appId},
                     {"--state-dir", o.stateDir}})
                if (req[1] == null || req[1].isBlank())
                    throw new IllegalArgumentException(req[0] + " is required");
            if (!o.guarantee.equals(StreamsConfig.AT_LEAST_ONCE)
                && !o.guarantee.equals(StreamsConfig.EXACTLY_ONCE_V2))
                throw new IllegalArgumentException("--guarantee is at_least_once or exactly_once_v2, not "
                    + o.guarantee);
            return o;
        }
    }

    private SeedPipeline() {
    }

    public static Properties streamsConfig(Options o) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, o.appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, o.bootstrap);
        p.put(StreamsConfig.STATE_DIR_CONFIG, o.stateDir);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, o.guarantee);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Long.toString(o.commitIntervalMs));
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.toString(o.threads));
        /* The seed's cache.max.bytes.buffering. */
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, "10000000");
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        p.putAll(o.properties);
        return p;
    }

    public static Topology topology(Options o, RegistryClient registry) {
        ConfluentAvro avro = new ConfluentAvro(registry, false);
        StreamsBuilder b = new StreamsBuilder();

        KTable<Integer, GenericRecord> admission =
            rekeyed(b, o.admissionTopic, "ADMISSION", avro);
        KTable<Integer, GenericRecord> research =
            rekeyed(b, o.researchTopic, "RESEARCH", avro);

        /* research_boost: admission LEFT JOIN research. */
        KTable<Integer, GenericRecord> boost = admission.leftJoin(research, (a, r) -> {
            GenericRecord row = new GenericData.Record(BOOST);
            row.put("STUDENT_ID", intColumn(a, "student_id"));
            row.put("ADMIT_CHANCE", doubleColumn(a, "admit_chance"));
            row.put("RESEARCH", r == null ? null : intColumn(r, "research"));
            return row;
        }, Named.as("RESEARCH_BOOST"));

        /* research_ave_boost: rows without a research value have a null group
         * key, which ksqlDB drops; the filter turns them into deletes so a row
         * that loses its research value is retracted from its old group. */
        KTable<Integer, GenericRecord> agg = boost
            .filter((k, v) -> v.get("RESEARCH") != null, Named.as("RESEARCH_AVE_BOOST-NONNULL"))
            .groupBy((k, v) -> KeyValue.pair((Integer) v.get("RESEARCH"), v),
                Grouped.with("RESEARCH_AVE_BOOST-GROUPBY", Serdes.Integer(), avro))
            .aggregate(() -> aggregate(0.0, 0),
                (k, v, acc) -> {
                    Double c = (Double) v.get("ADMIT_CHANCE");
                    return c == null ? acc : aggregate(sum(acc) + c, count(acc) + 1);
                },
                (k, v, acc) -> {
                    Double c = (Double) v.get("ADMIT_CHANCE");
                    return c == null ? acc : aggregate(sum(acc) - c, count(acc) - 1);
                },
                Named.as("RESEARCH_AVE_BOOST-AGGREGATE"),
                Materialized.<Integer, GenericRecord, KeyValueStore<Bytes, byte[]>>as(
                    "RESEARCH_AVE_BOOST-AGGREGATE-STORE")
                    .withKeySerde(Serdes.Integer()).withValueSerde(avro));

        agg.mapValues((k, acc) -> {
            if (count(acc) <= 0)
                return null;
            GenericRecord out = new GenericData.Record(OUTPUT);
            out.put("RESEARCH", k);
            out.put("AVE_CHANCE", sum(acc) / count(acc));
            return out;
        }, Named.as("RESEARCH_AVE_BOOST-PROJECT"))
            .toStream(Named.as("RESEARCH_AVE_BOOST-TOSTREAM"))
            .map((k, v) -> KeyValue.pair(String.valueOf(k), v), Named.as("RESEARCH_AVE_BOOST-KEY"))
            .to(o.outputTopic, Produced.with(Serdes.String(), avro).withName("RESEARCH_AVE_BOOST-SINK"));
        return b.build();
    }

    /* CREATE STREAM x_rekey AS SELECT * FROM x PARTITION BY student_id, and
     * CREATE TABLE x over it.  Not cached: a cached table forwards its
     * changes when the cache flushes, and the join then pairs a change of
     * one side with a later state of the other, so one join result can be
     * added to the aggregate twice (a student's admission and research rows
     * in one commit interval gave counts 30% too high). */
    private static KTable<Integer, GenericRecord> rekeyed(StreamsBuilder b, String topic,
                                                          String name, ConfluentAvro avro) {
        KStream<byte[], GenericRecord> src = b.stream(topic,
            Consumed.with(Serdes.ByteArray(), avro).withName(name + "_SRC"));
        return src.selectKey((k, v) -> studentId(k, v, avro, topic),
                Named.as(name + "_SRC-PARTITION-BY"))
            .filter((k, v) -> k != null, Named.as(name + "_SRC-KEYED"))
            .repartition(Repartitioned.with(Serdes.Integer(), avro)
                .withName(name + "_SRC_REKEY").withNumberOfPartitions(1))
            .toTable(Named.as(name),
                Materialized.<Integer, GenericRecord, KeyValueStore<Bytes, byte[]>>as(name)
                    .withKeySerde(Serdes.Integer()).withValueSerde(avro)
                    .withCachingDisabled());
    }

    private static final Pattern KEY_ID =
        Pattern.compile("student_id\"?\\s*[=:]\\s*(-?\\d+)");

    /* The student_id of a row: from the value, or for a tombstone from the
     * key; null when there is none. */
    static Integer studentId(byte[] key, GenericRecord value, ConfluentAvro avro, String topic) {
        if (value != null)
            return field(value);
        if (key == null)
            return null;
        if (ConfluentAvro.schemaId(key) >= 0) {
            try {
                return field(avro.deserialize(topic, key));
            } catch (RuntimeException e) {
                return null;
            }
        }
        String s = new String(key, StandardCharsets.UTF_8).trim();
        if (s.matches("-?\\d+"))
            return Integer.valueOf(s);
        Matcher m = KEY_ID.matcher(s);
        return m.find() ? Integer.valueOf(m.group(1)) : null;
    }

    private static Integer field(GenericRecord r) {
        return r == null ? null : intColumn(r, "student_id");
    }

    /* A column of an input row by name, as ksqlDB matches them (case
     * aside); null when absent or null. */
    private static Object column(GenericRecord r, String name) {
        Schema.Field f = r.getSchema().getField(name);
        if (f == null)
            for (Schema.Field g : r.getSchema().getFields())
                if (g.name().equalsIgnoreCase(name))
                    f = g;
        return f == null ? null : r.get(f.pos());
    }

    /* Numeric columns of whatever numeric Avro type the source chose
     * (int/long, float/double). */
    static Integer intColumn(GenericRecord r, String name) {
        return column(r, name) instanceof Number n ? n.intValue() : null;
    }

    static Double doubleColumn(GenericRecord r, String name) {
        return column(r, name) instanceof Number n ? n.doubleValue() : null;
    }

    private static GenericRecord aggregate(double sum, long count) {
        GenericRecord r = new GenericData.Record(AGG);
        r.put("SUM", sum);
        r.put("COUNT", count);
        return r;
    }

    private static double sum(GenericRecord acc) {
        return (Double) acc.get("SUM");
    }

    private static long count(GenericRecord acc) {
        return (Long) acc.get("COUNT");
    }

    /* Creates the output topic unless it exists (one partition, like the
     * re-keyed streams) and waits until the input topics exist. */
    public static void prepareTopics(Options o, Duration waitForInputs) throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, o.bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        try (Admin a = Admin.create(p)) {
            try {
                a.createTopics(List.of(new NewTopic(o.outputTopic, 1, (short) -1)))
                    .all().get(60, TimeUnit.SECONDS);
            } catch (java.util.concurrent.ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException))
                    throw e;
            }
            long deadline = System.nanoTime() + waitForInputs.toNanos();
            boolean told = false;
            while (true) {
                Set<String> have = a.listTopics().names().get(30, TimeUnit.SECONDS);
                List<String> missing = new ArrayList<>();
                for (String t : List.of(o.admissionTopic, o.researchTopic))
                    if (!have.contains(t))
                        missing.add(t);
                if (missing.isEmpty())
                    return;
                if (System.nanoTime() > deadline)
                    throw new IllegalStateException("input topics missing: " + missing);
                if (!told)
                    System.out.println("waiting for topics " + missing);
                told = true;
                Thread.sleep(1000);
            }
        }
    }

    /* The application, not started. */
    public static KafkaStreams create(Options o) {
        RegistryClient registry = new RegistryClient(o.registry);
        KafkaStreams ks = new KafkaStreams(topology(o, registry), streamsConfig(o));
        return ks;
    }

    public static void main(String[] args) throws Exception {
        Options o;
        try {
            o = Options.parse(args);
        } catch (IllegalArgumentException e) {
            if (!e.getMessage().isEmpty())
                System.err.println("SeedPipeline: " + e.getMessage());
            System.err.println("usage: SeedPipeline --bootstrap HOST:PORT --registry URL --app-id ID"
                + " --guarantee at_least_once|exactly_once_v2 --state-dir DIR"
                + " [--admission-topic T] [--research-topic T] [--output-topic T]"
                + " [--commit-interval-ms N] [--threads N] [--property name=value]...");
            System.exit(2);
            return;
        }
        Path.of(o.stateDir).toFile().mkdirs();
        prepareTopics(o, Duration.ofDays(365));
        KafkaStreams ks = create(o);
        CountDownLatch done = new CountDownLatch(1);
        AtomicBoolean failed = new AtomicBoolean();
        ks.setStateListener((now, before) -> {
            System.out.println("state " + now);
            if (now == KafkaStreams.State.ERROR)
                failed.set(true);
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING)
                done.countDown();
        });
        ks.setUncaughtExceptionHandler(e -> {
            System.err.println("SeedPipeline: stream thread failed: " + e);
            e.printStackTrace();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        /* Leaving the group on the way out lets a restart (or another
         * instance) take the tasks over at once, not after the session
         * timeout. */
        Thread hook = new Thread(() -> {
            boolean closed = ks.close(CloseOptions.groupMembershipOperation(
                CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
                .withTimeout(Duration.ofSeconds(60)));
            System.out.println(closed ? "closed" : "close timed out");
            done.countDown();
        }, "seed-pipeline-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        System.out.println("SeedPipeline " + o.appId + ": " + o.admissionTopic + " + "
            + o.researchTopic + " -> " + o.outputTopic + " (" + o.guarantee + ")");
        ks.start();
        done.await();
        if (failed.get()) {
            ks.close(Duration.ofSeconds(30));
            System.exit(1);
        }
    }
}
