#!/usr/bin/env bash
# Apache Kafka's command-line tools without a Kafka download: the same
# classes that bin/kafka-*.sh run, from the Maven artifacts that
# `make deps` fetched for tests/interop/java (kafka-tools 4.x).
#
#   tools/kafka.sh TOOL [ARGS...]
#
#   TOOL                 runs                          like bin/
#   console-consumer     tools.consumer.ConsoleConsumer kafka-console-consumer.sh
#   console-producer     tools.ConsoleProducer          kafka-console-producer.sh
#   topics               tools.TopicCommand             kafka-topics.sh
#   consumer-groups      tools.consumer.group.ConsumerGroupCommand
#                                                       kafka-consumer-groups.sh
#   transactions         tools.TransactionsCommand      kafka-transactions.sh
#   get-offsets          tools.GetOffsetShell           kafka-get-offsets.sh
#   delete-records       tools.DeleteRecordsCommand     kafka-delete-records.sh
#   log-dirs             tools.LogDirsCommand           kafka-log-dirs.sh
#   producer-perf-test   tools.ProducerPerformance      kafka-producer-perf-test.sh
#   consumer-perf-test   tools.ConsumerPerformance      kafka-consumer-perf-test.sh
#
# e.g. tools/kafka.sh topics --bootstrap-server 127.0.0.1:9092 --list
# The "kafka-" prefix and ".sh" suffix are accepted too.  Client logging is
# at WARN (KAFKA_LOG_LEVEL=info for more).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cpfile=$root/tests/interop/java/target/test-classpath.txt

usage() {
	sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

[ $# -ge 1 ] || usage
tool=${1#kafka-}
tool=${tool%.sh}
shift
case "$tool" in
console-consumer) class=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
console-producer) class=org.apache.kafka.tools.ConsoleProducer ;;
topics) class=org.apache.kafka.tools.TopicCommand ;;
consumer-groups) class=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
transactions) class=org.apache.kafka.tools.TransactionsCommand ;;
get-offsets) class=org.apache.kafka.tools.GetOffsetShell ;;
delete-records) class=org.apache.kafka.tools.DeleteRecordsCommand ;;
log-dirs) class=org.apache.kafka.tools.LogDirsCommand ;;
producer-perf-test) class=org.apache.kafka.tools.ProducerPerformance ;;
consumer-perf-test) class=org.apache.kafka.tools.ConsumerPerformance ;;
-h | --help | help) usage ;;
*)
	echo "kafka.sh: unknown tool '$tool'" >&2
	usage
	;;
esac

command -v java >/dev/null || {
	echo "kafka.sh: no java on PATH (make deps)" >&2
	exit 1
}
[ -s "$cpfile" ] || {
	echo "kafka.sh: no $cpfile: run make deps first" >&2
	exit 1
}
exec java -Dorg.slf4j.simpleLogger.defaultLogLevel="${KAFKA_LOG_LEVEL:-warn}" \
	-cp "$(cat "$cpfile")" "$class" "$@"
