package samsa.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.connect.cli.ConnectDistributed;
import org.apache.kafka.connect.runtime.Connect;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/*
 * Apache Kafka Connect in distributed mode with samsa as its Kafka: the
 * worker keeps its configs, offsets and statuses in compacted topics it
 * creates itself, joins its group with Connect's own protocol, and with
 * exactly.once.source.support=enabled writes each source batch and its
 * offsets in one transaction (fencing the task's earlier producers when it
 * starts).  A FileStreamSource (Kafka's connect-file) reads a file into a
 * topic; the worker is stopped, the file grows, and a new worker of the same
 * group picks up the connector from the config topic and the position from
 * the offsets topic: a read_committed consumer sees every line once, in
 * order.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class ConnectDistributedTest {
    @TempDir
    Path tmp;

    @Test
    void sourceConnectorResumesExactlyOnceAcrossWorkers() throws Exception {
        String cluster = Env.topic("connect");
        String topic = Env.topic("connect-lines");
        Path file = tmp.resolve("lines.txt");
        append(file, 0, 500);

        Connect<?> first = startWorker(cluster);
        try {
            Map<String, String> config = Map.of(
                "connector.class",
                "org.apache.kafka.connect.file.FileStreamSourceConnector",
                "tasks.max", "1",
                "topic", topic,
                "file", file.toString());
            String body = "{\"name\":\"lines\",\"config\":" + json(config) + "}";
            HttpResponse<String> created = http(first, "POST", "/connectors", body);
            assertEquals(201, created.statusCode(), created.body());
            waitRunning(first, "lines");
            assertLines(topic, 500);
        } finally {
            first.stop();
            first.awaitStop();
        }

        append(file, 500, 800);
        Connect<?> second = startWorker(cluster);
        try {
            waitRunning(second, "lines");
            assertLines(topic, 800);
        } finally {
            second.stop();
            second.awaitStop();
        }
    }

    private static Connect<?> startWorker(String cluster) {
        Map<String, String> w = new HashMap<>();
        w.put("bootstrap.servers", Env.bootstrap());
        w.put("group.id", cluster);
        w.put("config.storage.topic", cluster + "-configs");
        w.put("offset.storage.topic", cluster + "-offsets");
        w.put("status.storage.topic", cluster + "-status");
        w.put("config.storage.replication.factor", "1");
        w.put("offset.storage.replication.factor", "1");
        w.put("status.storage.replication.factor", "1");
        w.put("key.converter", "org.apache.kafka.connect.storage.StringConverter");
        w.put("value.converter", "org.apache.kafka.connect.storage.StringConverter");
        w.put("exactly.once.source.support", "enabled");
        w.put("offset.flush.interval.ms", "500");
        w.put("listeners", "http://127.0.0.1:0");
        return new ConnectDistributed().startConnect(w);
    }

    private static void append(Path file, int from, int to) throws Exception {
        StringBuilder b = new StringBuilder();
        for (int i = from; i < to; i++)
            b.append("line ").append(i).append('\n');
        Files.writeString(file, b, StandardCharsets.UTF_8,
            StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    private static String json(Map<String, String> m) {
        List<String> kv = new ArrayList<>();
        m.forEach((k, v) -> kv.add("\"" + k + "\":\"" + v + "\""));
        return "{" + String.join(",", kv) + "}";
    }

    private static HttpResponse<String> http(Connect<?> worker, String method,
                                             String path, String body)
        throws Exception {
        URI base = worker.rest().serverUrl();
        HttpRequest.Builder r = HttpRequest.newBuilder(base.resolve(path))
            .timeout(Duration.ofSeconds(30))
            .header("Content-Type", "application/json");
        r.method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                                      : HttpRequest.BodyPublishers.ofString(body));
        return HttpClient.newHttpClient().send(r.build(),
            HttpResponse.BodyHandlers.ofString());
    }

    /* The connector and its one task RUNNING, as the REST API says. */
    private static void waitRunning(Connect<?> worker, String name) throws Exception {
        long end = System.currentTimeMillis() + 60000;
        String last = "";
        while (System.currentTimeMillis() < end) {
            HttpResponse<String> s = http(worker, "GET",
                "/connectors/" + name + "/status", null);
            last = s.statusCode() + " " + s.body();
            if (s.statusCode() == 200
                && s.body().replaceAll("\\s", "").split("\"state\":\"RUNNING\"", -1).length == 3)
                return;
            Thread.sleep(200);
        }
        throw new AssertionError("not running after 60 s: " + last);
    }

    /* Reads the topic from the start until n lines (or 60 s): "line 0" ..
     * "line n-1", each once, in order. */
    private static void assertLines(String topic, int n) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, Env.bootstrap());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p,
                new StringDeserializer(), new StringDeserializer())) {
            List<TopicPartition> parts = new ArrayList<>();
            c.partitionsFor(topic, Duration.ofSeconds(30))
                .forEach(i -> parts.add(new TopicPartition(topic, i.partition())));
            assertEquals(1, parts.size(), "Connect creates its topic with one partition here");
            c.assign(parts);
            c.seekToBeginning(parts);
            List<String> got = new ArrayList<>();
            long end = System.currentTimeMillis() + 60000;
            while (got.size() < n && System.currentTimeMillis() < end)
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200)))
                    got.add(r.value());
            /* Anything more would be a duplicate: look once more. */
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofSeconds(2)))
                got.add(r.value());
            assertEquals(n, got.size(), "lines in " + topic + ": " + tail(got));
            for (int i = 0; i < n; i++)
                assertEquals("line " + i, got.get(i));
        }
    }

    private static String tail(List<String> l) {
        return l.subList(Math.max(0, l.size() - 5), l.size()).toString();
    }
}
