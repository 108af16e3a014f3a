package samsa.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/*
 * Acceptance 2, the tools half: the real kafka-console-producer and
 * kafka-console-consumer of kafka-tools 4.x (the classes behind the
 * kafka-console-*.sh scripts), each in its own JVM, round-trip keyed lines
 * with headers.  The producer runs with idempotence on (the Java default,
 * also set explicitly so a broker without InitProducerId fails the test).
 * The consumer names a partition and an offset, which makes it assign the
 * partition instead of joining a group: groups are a later issue.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class ConsoleToolsTest {
    private static final int N = 2000;

    @TempDir
    Path tmp;

    private Process start(List<String> args, Path stdin, Path stdout, Path stderr)
            throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Env.javaBin());
        cmd.add("-cp");
        cmd.add(Env.toolClasspath());
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd)
            .redirectOutput(stdout.toFile())
            .redirectError(stderr.toFile());
        if (stdin != null)
            pb.redirectInput(stdin.toFile());
        else
            pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        return pb.start();
    }

    private static int finish(Process p, String what, Path stderr) throws Exception {
        if (!p.waitFor(150, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail(what + " did not finish; stderr:\n" + Files.readString(stderr));
        }
        return p.exitValue();
    }

    @ParameterizedTest
    @ValueSource(strings = {"none", "zstd"})
    void consoleProducerAndConsumerRoundTrip(String codec) throws Exception {
        String t = Env.topic("console-" + codec);
        try (Admin admin = Admin.create(Env.adminProps())) {
            admin.createTopics(List.of(new NewTopic(t, 1, (short) 1))).all()
                .get(30, TimeUnit.SECONDS);
        }

        /* headers TAB key TAB value: the reader's and formatter's default layout. */
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < N; i++)
            lines.add("seq:" + i + ",codec:" + codec + "\tkey-" + (i % 17) + "\tvalue "
                + i + " " + "x".repeat(i % 50) + " ünïcødé");
        Path in = tmp.resolve("in.txt");
        Files.write(in, lines, StandardCharsets.UTF_8);

        Path pOut = tmp.resolve("producer.out");
        Path pErr = tmp.resolve("producer.err");
        Process producer = start(List.of(
            "org.apache.kafka.tools.ConsoleProducer",
            "--bootstrap-server", Env.bootstrap(),
            "--topic", t,
            "--compression-codec", codec,
            "--reader-property", "parse.key=true",
            "--reader-property", "parse.headers=true",
            "--command-property", "enable.idempotence=true",
            "--command-property", "acks=all",
            "--command-property", "delivery.timeout.ms=60000"),
            in, pOut, pErr);
        int prc = finish(producer, "console producer", pErr);
        String perr = Files.readString(pErr);
        assertEquals(0, prc, "console producer exit status; stderr:\n" + perr);
        assertTrue(!perr.contains("ERROR"), "console producer reported errors:\n" + perr);

        Path cOut = tmp.resolve("consumer.out");
        Path cErr = tmp.resolve("consumer.err");
        Process consumer = start(List.of(
            "org.apache.kafka.tools.consumer.ConsoleConsumer",
            "--bootstrap-server", Env.bootstrap(),
            "--topic", t,
            "--partition", "0",
            "--offset", "earliest",
            "--max-messages", Integer.toString(N),
            "--timeout-ms", "60000",
            "--formatter-property", "print.key=true",
            "--formatter-property", "print.headers=true"),
            null, cOut, cErr);
        int crc = finish(consumer, "console consumer", cErr);
        String cerr = Files.readString(cErr);
        assertEquals(0, crc, "console consumer exit status; stderr:\n" + cerr);

        List<String> got = Files.readAllLines(cOut, StandardCharsets.UTF_8);
        assertEquals(N, got.size(), "lines consumed; stderr:\n" + cerr);
        for (int i = 0; i < N; i++)
            assertEquals(lines.get(i), got.get(i), "line " + i);
        assertTrue(cerr.contains("Processed a total of " + N + " messages"), cerr);
    }
}
