#!/usr/bin/env bash
# TLS on the Kafka listener (--kafka-tls-cert, --kafka-tls-key), with a
# Postgres and a samsa of this test's own (tests/lib.sh) and a certificate
# authority made here with openssl.  Clients trust that authority and check
# the server's name: librdkafka (kcat), the Java client (Kafka's
# kafka-topics, PEM truststore) and kafkajs.
#
#  1. bad settings stop samsa at start with one line naming the flag: a
#     certificate without its key, a key that is not the certificate's;
#  2. SSL: kcat produces 20,000 records (uncompressed, so that requests
#     span many TLS records) and reads them back byte-identical;
#     kafka-topics and kafkajs list the topic;
#  3. a client that does not speak TLS, and one that sends garbage, get
#     their connections closed, samsa logs why and serves on;
#  4. SASL_SSL: with --kafka-auth postgres as well, a role logs in over
#     TLS and a wrong password is refused.
#  5. --kafka-tls-client-ca: a client with a certificate the CA signed is
#     served (kcat, kafka-topics with a PEM keystore); one without a
#     certificate, or with one signed by another CA, is refused and samsa
#     logs why.
#  6. --rest-tls-cert/--rest-tls-key: the Schema Registry and Connect
#     speak HTTPS (confluent-kafka's registry client and curl, with Basic
#     logins from --rest-auth postgres); plain HTTP gets nothing; bad
#     settings stop samsa naming the flag.
#  7. connectors to a Postgres that speaks TLS: a CDC connector with
#     Debezium's database.sslmode=verify-full and database.sslrootcert,
#     and a JDBC sink whose URL says the same, copy a table; a root
#     certificate of another CA fails the task with libpq's reason.
#  8. samsa's own Postgres over TLS (sslmode=verify-full) and SASL/SCRAM-
#     SHA-256 logins relayed on TLS links: alice, whom pg_hba.conf takes
#     only over TLS, logs in with confluent-kafka; with a stranger's root
#     certificate the relay refuses to talk and says why.
#
# Environment: SAMSA_BIN, SAMSA_PY, SAMSA_TEST_DIR (scratch space; default a
# temp dir).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"

test_begin tls
command -v kcat >/dev/null || fail "kcat is not installed (scripts/deps.sh)"
command -v node >/dev/null || fail "node is not installed (scripts/deps.sh)"
command -v openssl >/dev/null || fail "openssl is not installed (scripts/deps.sh)"
cpfile=$SAMSA_ROOT/tests/interop/java/target/test-classpath.txt
[ -s "$cpfile" ] || fail "no $cpfile: the Java client's classpath (scripts/deps.sh writes it)"
data=$here/python/kcat_data.py

# A certificate authority, and a server certificate it signed for the
# names clients use: localhost and 127.0.0.1 (what samsa advertises).
certs=$work/certs
mkdir -p "$certs"
(
	cd "$certs" &&
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=samsa test CA" \
			-keyout ca.key -out ca.pem &&
		openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
			-keyout server.key -out server.csr &&
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.cnf &&
		openssl x509 -req -days 2 -in server.csr -CA ca.pem -CAkey ca.key \
			-CAcreateserial -extfile san.cnf -out server.pem &&
		openssl genrsa -out other.key 2048 &&
		openssl req -newkey rsa:2048 -nodes -subj "/CN=a client" \
			-keyout client.key -out client.csr &&
		openssl x509 -req -days 2 -in client.csr -CA ca.pem -CAkey ca.key \
			-CAcreateserial -out client.pem &&
		cat client.key client.pem >client-keystore.pem &&
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=a stranger" \
			-keyout stranger.key -out stranger.pem
) >"$work/openssl.log" 2>&1 || fail "openssl could not make the certificates: $(tail -n 3 "$work/openssl.log")"
tls=(--kafka-tls-cert "$certs/server.pem" --kafka-tls-key "$certs/server.key")

# 1. Bad settings: samsa loads the files before it looks for Postgres.
start_fails() { # WHAT EXPECTED-TEXT ARGS...
	local what=$1 expected=$2 out
	shift 2
	if out=$(timeout 20 "$SAMSA_BIN" --pg "host=127.0.0.1 port=1" --kafka 127.0.0.1:1 "$@" 2>&1); then
		fail "samsa started with $what"
	fi
	grep -qF -- "$expected" <<<"$out" || fail "$what: no '$expected' in: $out"
}
start_fails "a certificate without its key" "--kafka-tls-key is missing" \
	--kafka-tls-cert "$certs/server.pem"
start_fails "a key that is not the certificate's" "--kafka-tls-key $certs/other.key" \
	--kafka-tls-cert "$certs/server.pem" --kafka-tls-key "$certs/other.key"
start_fails "a client CA without TLS" "--kafka-tls-client-ca needs --kafka-tls-cert" \
	--kafka-tls-client-ca "$certs/ca.pem"
start_fails "a certificate that is not there" "--kafka-tls-cert $certs/none.pem: No such file or directory" \
	--kafka-tls-cert "$certs/none.pem" --kafka-tls-key "$certs/server.key"
start_fails "a REST certificate without its key" "--rest-tls-key is missing" \
	--rest-tls-cert "$certs/server.pem"
start_fails "a REST key that is not the certificate's" "--rest-tls-key $certs/other.key" \
	--rest-tls-cert "$certs/server.pem" --rest-tls-key "$certs/other.key"
echo "tls: 1. bad certificate settings stop samsa with the flag named: ok"

# 2. SSL.
samsa_start "$work" "${tls[@]}" || fail "could not start Postgres and samsa with TLS"
host_port=localhost:${SAMSA_BOOTSTRAP##*:}
ssl=(-X security.protocol=SSL -X ssl.ca.location="$certs/ca.pem")
n=20000
"$SAMSA_PY" "$data" gen "$n" "$work/input.txt" || fail "could not write the input"
topic=tls-$(date +%s)-$RANDOM
timeout 300 kcat -P -b "$host_port" "${ssl[@]}" -t "$topic" -K '\t' -H "suite=tls" \
	-X acks=all <"$work/input.txt" || fail "kcat could not produce over TLS"
timeout 300 kcat -C -b "$host_port" "${ssl[@]}" -t "$topic" -o beginning -e -q \
	-f '%p\t%o\t%k\t%h\t%s\n' >"$work/out.txt" || fail "kcat could not consume over TLS"
"$SAMSA_PY" "$data" check "$n" "$work/out.txt" "suite=tls" 1 ||
	fail "records changed or lost over TLS"

java_topics() { # PROPERTIES...: kafka-topics --list; stdout and stderr
	printf '%s\n' ssl.truststore.type=PEM "ssl.truststore.location=$certs/ca.pem" "$@" \
		>"$work/client.properties"
	timeout 120 java -cp "$(cat "$cpfile")" org.apache.kafka.tools.TopicCommand \
		--bootstrap-server "$host_port" \
		--command-config "$work/client.properties" --list 2>&1
}
out=$(java_topics security.protocol=SSL) || fail "kafka-topics over TLS failed: $(tail -n 5 <<<"$out")"
grep -qx "$topic" <<<"$out" || fail "kafka-topics over TLS did not list $topic: $(tail -n 5 <<<"$out")"
out=$(cd "$here/node" && SAMSA_TLS_CA=$certs/ca.pem timeout 60 node list_topics.js "$host_port") ||
	fail "kafkajs over TLS failed: $out"
grep -qx "$topic" <<<"$out" || fail "kafkajs over TLS did not list $topic: $out"
echo "tls: 2. SSL: $n records through kcat byte-identical, kafka-topics and kafkajs listed the topic: ok"

# 3. Clients that do not speak TLS.
if timeout 60 kcat -b "$host_port" -m 3 -L >/dev/null 2>&1; then
	fail "a client without TLS got metadata from the TLS listener"
fi
grep -aq 'TLS: wrong version number' "$SAMSA_LOG" ||
	fail "samsa did not log why it closed the connection of a client without TLS"
head -c 5000 /dev/urandom | timeout 10 bash -c "cat >/dev/tcp/127.0.0.1/${SAMSA_BOOTSTRAP##*:}" 2>/dev/null
sleep 0.5
samsa_alive || fail "samsa died of garbage on its TLS listener"
out=$(timeout 60 kcat -L -b "$host_port" "${ssl[@]}" -t "$topic" 2>&1) ||
	fail "samsa did not serve TLS after the garbage: $out"
echo "tls: 3. a client without TLS and garbage closed, logged, samsa serves on: ok"

# 4. SASL_SSL.
samsa_stop || fail "samsa did not stop cleanly"
samsa_launch "${tls[@]}" --kafka-auth postgres || fail "could not start samsa with TLS and logins"
host_port=localhost:${SAMSA_BOOTSTRAP##*:}
psql -X -q -c "CREATE ROLE alice LOGIN PASSWORD 'wonderland'" "$SAMSA_PG_CONNINFO" ||
	fail "could not create the role"
sed -i '1i host all alice 127.0.0.1/32 scram-sha-256' "$SAMSA_PG_DATA/pg_hba.conf"
psql -X -q -At -c "SELECT pg_reload_conf()" "$SAMSA_PG_CONNINFO" >/dev/null ||
	fail "could not reload pg_hba.conf"
sasl_ssl=(-X security.protocol=SASL_SSL -X ssl.ca.location="$certs/ca.pem"
	-X sasl.mechanisms=PLAIN -X sasl.username=alice)
got=$(timeout 60 kcat -C -b "$host_port" "${sasl_ssl[@]}" -X sasl.password=wonderland \
	-t "$topic" -o beginning -c 1 -q) || fail "alice could not consume over SASL_SSL"
[ "$got" = "$(head -n 1 "$work/input.txt" | cut -f 2)" ] || fail "alice read '$got' over SASL_SSL"
out=$(java_topics security.protocol=SASL_SSL sasl.mechanism=PLAIN \
	'sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="wonderland";') ||
	fail "kafka-topics over SASL_SSL failed: $(tail -n 5 <<<"$out")"
grep -qx "$topic" <<<"$out" || fail "kafka-topics over SASL_SSL did not list $topic"
if out=$(timeout 60 kcat -L -m 3 -b "$host_port" "${sasl_ssl[@]}" -X sasl.password=nope 2>&1); then
	fail "a wrong password was let in over SASL_SSL"
fi
grep -qF 'password authentication failed for user "alice"' <<<"$out" ||
	fail "no refusal with Postgres's reason over SASL_SSL: $(tail -n 2 <<<"$out")"
echo "tls: 4. SASL_SSL: alice logged in and read, kafka-topics listed, a wrong password refused: ok"

# 5. Client certificates.
samsa_stop || fail "samsa did not stop cleanly"
samsa_launch "${tls[@]}" --kafka-tls-client-ca "$certs/ca.pem" ||
	fail "could not start samsa asking for client certificates"
host_port=localhost:${SAMSA_BOOTSTRAP##*:}
got=$(timeout 60 kcat -C -b "$host_port" "${ssl[@]}" -X ssl.certificate.location="$certs/client.pem" \
	-X ssl.key.location="$certs/client.key" -t "$topic" -o beginning -c 1 -q) ||
	fail "a client with a certificate the CA signed could not consume"
[ "$got" = "$(head -n 1 "$work/input.txt" | cut -f 2)" ] || fail "read '$got' with a client certificate"
out=$(java_topics security.protocol=SSL ssl.keystore.type=PEM "ssl.keystore.location=$certs/client-keystore.pem") ||
	fail "kafka-topics with a client certificate failed: $(tail -n 5 <<<"$out")"
grep -qx "$topic" <<<"$out" || fail "kafka-topics with a client certificate did not list $topic"
if timeout 60 kcat -L -m 3 -b "$host_port" "${ssl[@]}" >/dev/null 2>&1; then
	fail "a client without a certificate was served"
fi
grep -aq 'TLS: peer did not return a certificate' "$SAMSA_LOG" ||
	fail "samsa did not log the client without a certificate"
if timeout 60 kcat -L -m 3 -b "$host_port" "${ssl[@]}" -X ssl.certificate.location="$certs/stranger.pem" \
	-X ssl.key.location="$certs/stranger.key" >/dev/null 2>&1; then
	fail "a client with a certificate another CA signed was served"
fi
grep -aq 'TLS: certificate verify failed' "$SAMSA_LOG" ||
	fail "samsa did not log the client with a stranger's certificate"
echo "tls: 5. client certificates: the CA's served (kcat, kafka-topics), none or a stranger's refused: ok"

# 6. HTTPS on the REST listeners, with logins (alice from step 4).
samsa_stop || fail "samsa did not stop cleanly"
samsa_launch "${tls[@]}" --rest-tls-cert "$certs/server.pem" --rest-tls-key "$certs/server.key" \
	--rest-auth postgres || fail "could not start samsa with HTTPS"
registry=https://localhost:${SAMSA_REGISTRY_URL##*:}
connect=https://localhost:${SAMSA_CONNECT_URL##*:}
[ "$(curl -s --cacert "$certs/ca.pem" -u alice:wonderland "$connect/connectors")" = "[]" ] ||
	fail "Connect did not serve alice over HTTPS"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$certs/ca.pem" "$connect/connectors")
[ "$code" = 401 ] || fail "Connect over HTTPS without a login answered $code"
"$SAMSA_PY" - "$registry" "$certs/ca.pem" <<'PY' || fail "the registry client over HTTPS"
import sys
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
url, ca = sys.argv[1], sys.argv[2]
c = SchemaRegistryClient({"url": url, "ssl.ca.location": ca,
                          "basic.auth.user.info": "alice:wonderland"})
schema = Schema('{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}', "AVRO")
sid = c.register_schema("tls-value", schema)
assert c.get_schema(sid).schema_str.replace(" ", "") == schema.schema_str, sid
PY
if curl -s -m 10 -u alice:wonderland "http://127.0.0.1:${SAMSA_REGISTRY_URL##*:}/subjects" >/dev/null; then
	fail "the registry answered plain HTTP on its HTTPS port"
fi
samsa_alive || fail "samsa died of plain HTTP on an HTTPS port"
grep -q "Schema Registry on https://" "$SAMSA_LOG" || fail "samsa did not say the registry speaks HTTPS"
echo "tls: 6. HTTPS on the REST listeners: the registry client and curl with logins, plain HTTP refused: ok"

# 7. TLS from the connectors to Postgres (this test's own cluster, with
# the server certificate of step 1 and ssl turned on by a reload).
samsa_stop || fail "samsa did not stop cleanly"
cp "$certs/server.pem" "$certs/server.key" "$SAMSA_PG_DATA/" && chmod 600 "$SAMSA_PG_DATA/server.key" &&
	chown --reference="$SAMSA_PG_DATA" "$SAMSA_PG_DATA/server.pem" "$SAMSA_PG_DATA/server.key" ||
	fail "could not give Postgres its certificate"
psql -X -q -v ON_ERROR_STOP=1 "$SAMSA_PG_CONNINFO" -c "ALTER SYSTEM SET ssl_cert_file = 'server.pem'" \
	-c "ALTER SYSTEM SET ssl_key_file = 'server.key'" -c "ALTER SYSTEM SET ssl = on" \
	-c "SELECT pg_reload_conf()" -c "CREATE DATABASE tls_src" >/dev/null ||
	fail "could not turn on TLS in Postgres"
psql -X -q -v ON_ERROR_STOP=1 "${SAMSA_PG_CONNINFO/dbname=samsa/dbname=tls_src}" \
	-c "CREATE TABLE t (id int PRIMARY KEY, v text)" -c "INSERT INTO t VALUES (1, 'one'), (2, 'two')" \
	-c "CREATE TABLE t_copy (id int PRIMARY KEY, v text)" >/dev/null || fail "could not make the tables"
[ "$(psql -X -At "sslmode=require ${SAMSA_PG_CONNINFO/host=127.0.0.1/host=localhost}" -c 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')" = t ] ||
	fail "Postgres does not speak TLS"
samsa_launch || fail "could not start samsa for the connectors"
connector() { # NAME CONFIG-JSON: creates it, prints the HTTP status
	curl -s -o "$work/$1.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		--data "{\"name\": \"$1\", \"config\": $2}" "$SAMSA_CONNECT_URL/connectors"
}
source_cfg() { # SLOT ROOT-CERT
	printf '{"connector.class": "io.debezium.connector.postgresql.PostgresConnector",
	"database.hostname": "localhost", "database.port": "%s", "database.user": "postgres",
	"database.dbname": "tls_src", "topic.prefix": "%s", "slot.name": "%s", "plugin.name": "pgoutput",
	"publication.autocreate.mode": "filtered", "publication.name": "%s_pub",
	"table.include.list": "public.t", "database.sslmode": "verify-full", "database.sslrootcert": "%s",
	"key.converter": "org.apache.kafka.connect.json.JsonConverter", "key.converter.schemas.enable": "true",
	"value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "true",
	"transforms": "unwrap", "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState"}' \
		"$SAMSA_PG_PORT" "$1" "$1" "$1" "$2"
}
[ "$(connector tls-src "$(source_cfg tlssrc "$certs/ca.pem")")" = 201 ] ||
	fail "the CDC connector was refused: $(cat "$work/tls-src.out")"
[ "$(connector tls-sink '{"connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
	"topics": "tlssrc.public.t", "table.name.format": "t_copy", "insert.mode": "upsert",
	"pk.mode": "record_key", "pk.fields": "id",
	"key.converter": "org.apache.kafka.connect.json.JsonConverter",
	"value.converter": "org.apache.kafka.connect.json.JsonConverter",
	"connection.url": "jdbc:postgresql://localhost:'"$SAMSA_PG_PORT"'/tls_src?user=postgres&sslmode=verify-full&sslrootcert='"$certs/ca.pem"'"}')" = 201 ] ||
	fail "the sink connector was refused: $(cat "$work/tls-sink.out")"
copied=
for _ in $(seq 1 100); do
	copied=$(psql -X -At "${SAMSA_PG_CONNINFO/dbname=samsa/dbname=tls_src}" -c "SELECT string_agg(id || v, ',' ORDER BY id) FROM t_copy")
	[ "$copied" = "1one,2two" ] && break
	sleep 0.3
done
[ "$copied" = "1one,2two" ] || fail "the table was not copied over TLS: '$copied'; $(curl -s "$SAMSA_CONNECT_URL/connectors/tls-src/status") $(curl -s "$SAMSA_CONNECT_URL/connectors/tls-sink/status")"
n=$(psql -X -At "$SAMSA_PG_CONNINFO" -c "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE s.ssl AND a.datname = 'tls_src' AND a.application_name = 'samsa-cdc'")
[ "$n" -ge 1 ] || fail "the CDC connector's connections do not use TLS"
[ "$(connector tls-bad "$(source_cfg tlsbad "$certs/stranger.pem")")" = 201 ] || fail "tls-bad was refused"
status=
for _ in $(seq 1 100); do
	status=$(curl -s "$SAMSA_CONNECT_URL/connectors/tls-bad/status")
	grep -q FAILED <<<"$status" && break
	sleep 0.3
done
grep -q 'certificate verify failed' <<<"$status" || fail "a stranger's root certificate: $status"
for c in tls-src tls-sink tls-bad; do curl -s -X DELETE "$SAMSA_CONNECT_URL/connectors/$c" >/dev/null; done
echo "tls: 7. CDC and the JDBC sink copied a table over TLS with verify-full, a stranger's CA failed: ok"

# 8. SCRAM logins relayed to a Postgres that takes alice only over TLS.
samsa_stop || fail "samsa did not stop cleanly"
sed -i '1i hostssl all alice 127.0.0.1/32 scram-sha-256\nhostnossl all alice 127.0.0.1/32 reject' \
	"$SAMSA_PG_DATA/pg_hba.conf"
psql -X -q -At -c "SELECT pg_reload_conf()" "$SAMSA_PG_CONNINFO" >/dev/null ||
	fail "could not reload pg_hba.conf"
plain_conninfo=$SAMSA_PG_CONNINFO
scram_login() { # PASSWORD: a metadata request as alice with SCRAM-SHA-256
	timeout 60 "$SAMSA_PY" - "$SAMSA_BOOTSTRAP" "$1" <<'PY'
import sys
from confluent_kafka.admin import AdminClient
errors = []
a = AdminClient({"bootstrap.servers": sys.argv[1], "security.protocol": "SASL_PLAINTEXT",
                 "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "alice",
                 "sasl.password": sys.argv[2], "error_cb": errors.append})
try:
    print(len(a.list_topics(timeout=15).topics), "topics")
except Exception as e:
    print("; ".join(str(x) for x in errors) or e)
    sys.exit(1)
PY
}
SAMSA_PG_CONNINFO="sslmode=verify-full sslrootcert=$certs/ca.pem ${plain_conninfo/host=127.0.0.1/host=localhost}"
samsa_launch --kafka-auth postgres || fail "could not start samsa on Postgres over TLS"
out=$(scram_login wonderland) || fail "alice could not log in with SCRAM over a TLS relay: $out"
# Each login reads its root afresh: now a stranger's, not Postgres's CA.
cp "$certs/ca.pem" "$work/pg-root.pem" && cp "$certs/stranger.pem" "$certs/ca.pem" ||
	fail "could not swap the root certificate"
out=$(scram_login wonderland) && fail "a login was relayed to a Postgres whose certificate the root does not sign"
cp "$work/pg-root.pem" "$certs/ca.pem" || fail "could not put the root certificate back"
grep -aq 'login of alice from .* refused: TLS to Postgres: .*certificate verify failed' "$SAMSA_LOG" ||
	fail "samsa did not log why the relay refused: $(grep -a 'login of alice' "$SAMSA_LOG" | tail -n 2)"
SAMSA_PG_CONNINFO=$plain_conninfo
echo "tls: 8. samsa on Postgres over TLS; SCRAM relayed over TLS (hostssl only), a stranger's root refused: ok"

samsa_alive || fail "samsa died"
samsa_stop || fail "samsa did not stop cleanly at the end"
echo "tls: ok"
