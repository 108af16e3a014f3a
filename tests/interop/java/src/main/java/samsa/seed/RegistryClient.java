package samsa.seed;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.avro.Schema;

/*
 * The part of Confluent's Schema Registry REST API that a serializer needs:
 * a schema by its id (GET /schemas/ids/{id}) and registering a schema under
 * a subject (POST /subjects/{subject}/versions), both cached, so that each
 * id is fetched and each (subject, schema) registered once per process.
 * Thread-safe: stream threads share one client.
 */
public final class RegistryClient {
    private static final String CONTENT_TYPE = "application/vnd.schemaregistry.v1+json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String base;
    private final HttpClient http;
    private final Map<Integer, Schema> byId = new ConcurrentHashMap<>();
    private final Map<String, Map<Schema, Integer>> bySubject = new ConcurrentHashMap<>();

    /* url: the registry's base address, e.g. http://127.0.0.1:8081. */
    public RegistryClient(String url) {
        String u = url.trim();
        while (u.endsWith("/"))
            u = u.substring(0, u.length() - 1);
        if (!u.startsWith("http://") && !u.startsWith("https://"))
            u = "http://" + u;
        this.base = u;
        this.http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    }

    public String url() {
        return base;
    }

    /* The writer schema with this id; throws when the registry does not
     * know it or does not answer. */
    public Schema schemaById(int id) {
        Schema s = byId.get(id);
        if (s != null)
            return s;
        JsonNode body = call(HttpRequest.newBuilder(URI.create(base + "/schemas/ids/" + id)).GET(),
            "schema id " + id);
        JsonNode type = body.get("schemaType");
        if (type != null && !type.isNull() && !"AVRO".equals(type.asText()))
            throw new IllegalStateException("schema id " + id + " is " + type.asText() + ", not AVRO");
        JsonNode text = body.get("schema");
        if (text == null || !text.isTextual())
            throw new IllegalStateException("registry answer for schema id " + id
                + " has no schema: " + body);
        s = new Schema.Parser().parse(text.asText());
        byId.putIfAbsent(id, s);
        return byId.get(id);
    }

    /* The id of schema under subject, registering it when it is new (the
     * registry answers with the existing id for a schema it has). */
    public int register(String subject, Schema schema) {
        Map<Schema, Integer> m = bySubject.computeIfAbsent(subject, k -> new ConcurrentHashMap<>());
        Integer id = m.get(schema);
        if (id != null)
            return id;
        String req;
        try {
            req = JSON.writeValueAsString(Map.of("schema", schema.toString()));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        String path = "/subjects/" + URLEncoder.encode(subject, StandardCharsets.UTF_8)
            .replace("+", "%20") + "/versions";
        JsonNode body = call(HttpRequest.newBuilder(URI.create(base + path))
            .header("Content-Type", CONTENT_TYPE)
            .POST(HttpRequest.BodyPublishers.ofString(req)), "register under " + subject);
        JsonNode n = body.get("id");
        if (n == null || !n.canConvertToInt())
            throw new IllegalStateException("registry answer to registering under " + subject
                + " has no id: " + body);
        id = n.asInt();
        m.put(schema, id);
        byId.putIfAbsent(id, schema);
        return id;
    }

    private JsonNode call(HttpRequest.Builder b, String what) {
        HttpRequest req = b.header("Accept", CONTENT_TYPE + ", application/json")
            .timeout(Duration.ofSeconds(30)).build();
        HttpResponse<String> resp;
        try {
            resp = http.send(req, HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new IllegalStateException("schema registry " + base + " (" + what + "): " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted: schema registry " + what, e);
        }
        if (resp.statusCode() / 100 != 2)
            throw new IllegalStateException("schema registry " + base + " (" + what + "): HTTP "
                + resp.statusCode() + " " + resp.body());
        try {
            return JSON.readTree(resp.body());
        } catch (IOException e) {
            throw new IllegalStateException("schema registry " + what + ": not JSON: "
                + resp.body(), e);
        }
    }
}
