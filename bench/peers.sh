#!/usr/bin/env bash
# What `make bench` needs besides samsa, fetched once and checked in about a
# second afterwards: the Python venv bench/.venv (requirements.txt:
# confluent-kafka for the CDC and sink clients, matplotlib for the charts),
# and from Maven Central (bench/java/settings.xml: Central only) Apache
# Kafka 4.3.1 with its tools and Connect runtime (bench/java/pom.xml ->
# target/classpath.txt) and the Debezium plugins (bench/java/debezium-*/
# -> target/plugins/).  Nothing here comes from anywhere else.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import confluent_kafka, matplotlib' 2>/dev/null; then
	python3 -m venv .venv
	.venv/bin/pip install -q -r requirements.txt
fi
mvn_package() {
	mvn -q -B -s java/settings.xml -f "$1" package
}
[ -s java/target/classpath.txt ] || mvn_package java/pom.xml
[ -d java/debezium-postgres/target/plugins/debezium-postgres ] || mvn_package java/debezium-postgres/pom.xml
[ -d java/debezium-jdbc/target/plugins/debezium-jdbc ] || mvn_package java/debezium-jdbc/pom.xml
command -v pg_recvlogical >/dev/null || { echo "peers.sh: no pg_recvlogical (postgresql-client)" >&2; exit 1; }
command -v java >/dev/null || { echo "peers.sh: no java" >&2; exit 1; }
