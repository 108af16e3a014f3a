/*
 * The measuring consumer of bench/cdc.py's sustained-rate steps: reads
 * partition 0 of a topic from a given offset with librdkafka (its
 * defaults) and reports, on stdout, how many change records it has
 * received and, for one in SAMPLE, when it arrived and how old it was
 * (arrival minus the row's "t_us", microseconds since the epoch taken
 * by the load just before its COMMIT).
 *
 * It replaces a confluent-kafka-python consumer that cost ~4 us of CPU
 * per change (Message objects, the Python loop): at 90k changes/s a
 * third of a core taken from the 2 cores the capturer under test shares
 * with Postgres and the load.  This one costs what librdkafka costs.
 *
 *   ages BOOTSTRAP TOPIC OFFSET SAMPLE
 *
 * stdout, a line per received poll batch (flushed at most every 10 ms):
 *   C <records received so far>
 *   A <arrival, s since the epoch> <age, s>     (the sampled records)
 * Runs until SIGTERM or SIGINT.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* the value's "t_us" (a JSON integer), or -1 */
static long long t_us(const char *v, size_t len)
{
	static const char key[] = "\"t_us\"";
	const char *end = v + len, *p = memmem(v, len, key, sizeof(key) - 1);

	if (!p)
		return -1;
	for (p += sizeof(key) - 1; p < end && (*p == ' ' || *p == ':'); p++)
		;
	long long n = 0;
	int digits = 0;
	for (; p < end && *p >= '0' && *p <= '9'; p++, digits++)
		n = n * 10 + (*p - '0');
	return digits ? n : -1;
}

static void set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
	char err[256];

	if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) !=
	    RD_KAFKA_CONF_OK) {
		fprintf(stderr, "ages: %s=%s: %s\n", k, v, err);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: ages BOOTSTRAP TOPIC OFFSET SAMPLE\n");
		return 2;
	}
	long long offset = atoll(argv[3]);
	long sample = atol(argv[4]);
	if (sample < 1)
		sample = 1;

	char err[512], group[64];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	snprintf(group, sizeof(group), "bench-ages-%.6f", wall());
	set(conf, "bootstrap.servers", argv[1]);
	set(conf, "group.id", group);
	set(conf, "enable.auto.commit", "false");
	set(conf, "log_level", "0");
	rd_kafka_t *rk =
		rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "ages: %s\n", err);
		return 1;
	}
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_t *parts =
		rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(parts, argv[2], 0)->offset = offset;
	rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	if (e) {
		fprintf(stderr, "ages: assign: %s\n", rd_kafka_err2str(e));
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	long long count = 0, reported = 0, skip = 0;
	double last_flush = 0;
	while (!stop) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 10);
		double now = wall();
		if (m) {
			if (!m->err) {
				count++;
				if (skip-- == 0) {
					skip = sample - 1;
					long long t = t_us(m->payload, m->len);
					if (t >= 0)
						printf("A %.6f %.6f\n", now,
						       now - t / 1e6);
				}
			}
			rd_kafka_message_destroy(m);
		}
		if (count != reported && (!m || now - last_flush >= 0.01)) {
			printf("C %lld\n", count);
			fflush(stdout);
			reported = count;
			last_flush = now;
		}
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return 0;
}
