package samsa.interop;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

/*
 * What every test needs from its surroundings.  The broker address comes
 * from SAMSA_BOOTSTRAP (tests/run.sh sets it); a test run without it fails
 * rather than skipping, as do tests whose broker does not answer.
 */
final class Env {
    private Env() {
    }

    static String bootstrap() {
        String b = System.getenv("SAMSA_BOOTSTRAP");
        if (b == null || b.isBlank())
            throw new IllegalStateException(
                "SAMSA_BOOTSTRAP is not set: run these tests "
                + "through tests/run.sh interop java");
        return b.trim();
    }

    /* The Schema Registry samsa serves (tests/run.sh sets it). */
    static String registryUrl() {
        String r = System.getenv("SAMSA_REGISTRY_URL");
        if (r == null || r.isBlank())
            throw new IllegalStateException(
                "SAMSA_REGISTRY_URL is not set: run these tests "
                + "through tests/run.sh interop java");
        return r.trim();
    }

    /* A topic name no earlier run has used. */
    static String topic(String what) {
        return "java-" + what + "-" + System.currentTimeMillis() + "-"
            + Integer.toHexString(ThreadLocalRandom.current().nextInt());
    }

    private static volatile String brokerDown;

    /*
     * Fails at once when an earlier test found the broker unreachable, so
     * that a run without a broker ends in seconds, not after every test's
     * own timeouts; otherwise checks the broker answers DescribeCluster.
     */
    static synchronized void requireBroker() {
        if (brokerDown != null)
            throw new IllegalStateException(brokerDown);
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
        try (Admin a = Admin.create(p)) {
            a.describeCluster().nodes().get(25, TimeUnit.SECONDS);
        } catch (Exception e) {
            brokerDown = "broker " + bootstrap() + " does not answer: " + e;
            throw new IllegalStateException(brokerDown, e);
        }
    }

    static Properties adminProps() {
        requireBroker();
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return p;
    }

    /*
     * The classpath of this Maven project's tests (written by
     * maven-dependency-plugin before the tests run) plus the compiled
     * test classes and resources (subprocesses see simplelogger.properties)
     * and main classes (samsa.seed.SeedPipeline).
     */
    static String toolClasspath() throws IOException {
        String file = System.getProperty("samsa.classpath.file");
        String classes = System.getProperty("samsa.test.classes");
        if (file == null || classes == null)
            throw new IllegalStateException(
                "samsa.classpath.file / samsa.test.classes unset: "
                + "run with mvn -f tests/interop/java/pom.xml test");
        String cp = Files.readString(Path.of(file)).trim();
        String main = System.getProperty("samsa.main.classes");
        if (main != null)
            classes += java.io.File.pathSeparator + main;
        return classes + java.io.File.pathSeparator + cp;
    }

    static String javaBin() {
        return Path.of(System.getProperty("java.home"), "bin", "java")
            .toString();
    }
}
