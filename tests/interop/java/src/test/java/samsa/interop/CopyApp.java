package samsa.interop;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/*
 * A consume-transform-produce application (issue 4, acceptance 2), started
 * as a subprocess by ExactlyOnceCopyTest:
 *
 *   CopyApp BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID IDLE_MS [PAUSE_MS]
 *
 * A consumer in GROUP (read_committed, no auto commit) reads INPUT; per poll
 * one transaction writes "copy:" + value of every record to the same
 * partition of OUTPUT and commits the consumed offsets with
 * sendOffsetsToTransaction.  After each commit it prints "committed N"
 * (records copied by this process) on stdout; it exits 0 after IDLE_MS
 * without a record, printing "idle N".  With PAUSE_MS > 0, every
 * transaction's records are flushed (so in the log), "open N COUNT" is
 * printed and PAUSE_MS slept before the offsets are sent and it commits: a
 * kill then can land inside an open transaction.
 */
public final class CopyApp {
    private CopyApp() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 6) {
            System.err.println("usage: CopyApp BOOTSTRAP INPUT OUTPUT GROUP "
                + "TRANSACTIONAL_ID IDLE_MS [PAUSE_MS]");
            System.exit(2);
        }
        String bootstrap = args[0], input = args[1], output = args[2];
        String group = args[3], txnId = args[4];
        long idleMs = Long.parseLong(args[5]);
        long pauseMs = args.length > 6 ? Long.parseLong(args[6]) : 0;

        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        pp.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 10000);
        pp.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30000);

        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 250);
        /* A killed predecessor's membership must expire quickly. */
        cp.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 6000);
        cp.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 1000);

        long copied = 0;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp,
                 new StringSerializer(), new StringSerializer());
             KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp,
                 new StringDeserializer(), new StringDeserializer())) {
            /* Fences a predecessor with this transactional id and aborts its
             * open transaction (and its pending offset commit) first. */
            producer.initTransactions();
            consumer.subscribe(List.of(input));
            long lastRecord = System.currentTimeMillis();
            while (true) {
                ConsumerRecords<String, String> recs = consumer.poll(Duration.ofMillis(200));
                if (recs.isEmpty()) {
                    if (System.currentTimeMillis() - lastRecord >= idleMs)
                        break;
                    continue;
                }
                lastRecord = System.currentTimeMillis();
                producer.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (ConsumerRecord<String, String> r : recs) {
                    producer.send(new ProducerRecord<>(output, r.partition(),
                        r.key(), "copy:" + r.value()));
                    offsets.put(new TopicPartition(r.topic(), r.partition()),
                        new OffsetAndMetadata(r.offset() + 1));
                }
                if (pauseMs > 0) {
                    producer.flush();
                    System.out.println("open " + copied + " " + recs.count());
                    System.out.flush();
                    Thread.sleep(pauseMs);
                }
                producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
                producer.commitTransaction();
                copied += recs.count();
                System.out.println("committed " + copied);
                System.out.flush();
            }
        }
        System.out.println("idle " + copied);
        System.out.flush();
    }
}
