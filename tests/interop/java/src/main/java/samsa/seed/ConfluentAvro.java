package samsa.seed;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serializer;

/*
 * Avro records in Confluent's wire format: a zero magic byte, the writer
 * schema's registry id as a 4-byte big-endian int, then the Avro binary
 * encoding.  What io.confluent.kafka.serializers.KafkaAvroSerializer and
 * Connect's AvroConverter write, which are not on Maven Central.
 *
 * The serializer registers the record's schema under "<topic>-value" (or
 * "-key"), the default TopicNameStrategy; the deserializer reads with the
 * writer schema fetched by id.  null is null both ways (a tombstone).
 */
public final class ConfluentAvro implements Serde<GenericRecord> {
    private final RegistryClient registry;
    private final boolean isKey;

    public ConfluentAvro(RegistryClient registry, boolean isKey) {
        this.registry = registry;
        this.isKey = isKey;
    }

    public byte[] serialize(String topic, GenericRecord r) {
        if (r == null)
            return null;
        Schema schema = r.getSchema();
        int id = registry.register(topic + (isKey ? "-key" : "-value"), schema);
        ByteArrayOutputStream out = new ByteArrayOutputStream(64);
        out.write(0);
        out.write(id >>> 24);
        out.write(id >>> 16);
        out.write(id >>> 8);
        out.write(id);
        try {
            BinaryEncoder enc = EncoderFactory.get().binaryEncoder(out, null);
            new GenericDatumWriter<GenericRecord>(schema).write(r, enc);
            enc.flush();
        } catch (IOException | RuntimeException e) {
            throw new SerializationException("cannot encode " + schema.getFullName()
                + " for " + topic + ": " + e, e);
        }
        return out.toByteArray();
    }

    public GenericRecord deserialize(String topic, byte[] b) {
        if (b == null)
            return null;
        int id = schemaId(b);
        if (id < 0)
            throw new SerializationException("record of " + topic + " (" + b.length
                + " bytes) is not in the Confluent wire format");
        Schema writer = registry.schemaById(id);
        try {
            return new GenericDatumReader<GenericRecord>(writer)
                .read(null, DecoderFactory.get().binaryDecoder(b, 5, b.length - 5, null));
        } catch (IOException | RuntimeException e) {
            throw new SerializationException("cannot decode a record of " + topic
                + " with schema id " + id + ": " + e, e);
        }
    }

    /* The schema id of a record in the wire format, -1 for other bytes. */
    public static int schemaId(byte[] b) {
        if (b == null || b.length < 5 || b[0] != 0)
            return -1;
        return ByteBuffer.wrap(b, 1, 4).getInt();
    }

    @Override
    public Serializer<GenericRecord> serializer() {
        return this::serialize;
    }

    @Override
    public Deserializer<GenericRecord> deserializer() {
        return this::deserialize;
    }
}
