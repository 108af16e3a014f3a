"""Shared helpers for the Python interop tests and the shell suites.

Everything here talks to a real broker through confluent-kafka (librdkafka);
nothing is mocked.  The broker address comes from SAMSA_BOOTSTRAP.

As a command (used by tests/interop/*.sh, run with the venv's python):

    python samsa_client.py create-topic TOPIC PARTITIONS [NAME=VALUE ...]
    python samsa_client.py wait-broker [SECONDS]
"""

import os
import subprocess
import sys
import time
import uuid

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

TIMEOUT_S = 30


def bootstrap():
    """The broker under test; an unset SAMSA_BOOTSTRAP is an error, not a skip."""
    b = os.environ.get("SAMSA_BOOTSTRAP", "").strip()
    if not b:
        raise RuntimeError(
            "SAMSA_BOOTSTRAP is not set: run through tests/run.sh interop")
    return b


def unique(prefix):
    return "%s-%d-%s" % (prefix, int(time.time()), uuid.uuid4().hex[:8])


def admin_client(**extra):
    conf = {"bootstrap.servers": bootstrap(), "socket.timeout.ms": 15000}
    conf.update(extra)
    return AdminClient(conf)


def wait_broker(admin, timeout=TIMEOUT_S):
    """Metadata from the broker, or an exception naming the address."""
    try:
        return admin.list_topics(timeout=timeout)
    except KafkaException as e:
        raise RuntimeError("broker %s did not answer Metadata within %ss: %s"
                           % (bootstrap(), timeout, e)) from e


def create_topic(admin, name, partitions, config=None, timeout=TIMEOUT_S):
    """CreateTopics and wait until Metadata shows every partition led."""
    futs = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1,
                  config=config or {})],
        operation_timeout=timeout, request_timeout=timeout)
    futs[name].result(timeout)
    deadline = time.monotonic() + timeout
    while True:
        md = admin.list_topics(topic=name, timeout=timeout)
        t = md.topics.get(name)
        if (t is not None and t.error is None and len(t.partitions) == partitions
                and all(p.leader >= 0 for p in t.partitions.values())):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("topic %s not ready in metadata: %r" % (name, t))
        time.sleep(0.1)


# ---- Postgres under samsa (SAMSA_PG_CONNINFO): what a test reads or breaks


def psql(sql):
    return subprocess.run(
        ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d",
         os.environ["SAMSA_PG_CONNINFO"], "-c", sql],
        check=True, capture_output=True, text=True).stdout.strip()


def fail_once(table, when):
    """Makes Postgres refuse the next write to samsa.<table> whose row
    satisfies `when` (an SQL condition on NEW), once (a sequence counts:
    it outlives the rollback); returns the name to give to failed() and
    drop_failure()."""
    name = unique("fail_once").replace("-", "_")
    psql(f"""CREATE SEQUENCE {name};
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF ({when}) AND nextval('{name}') = 1 THEN
    RAISE EXCEPTION 'failing once, as asked';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER {name} BEFORE INSERT OR UPDATE ON samsa.{table}
  FOR EACH ROW EXECUTE FUNCTION {name}();""")
    return name


def failed(name):
    return psql(f"SELECT is_called FROM {name}") == "t"


def drop_failure(name, table):
    psql(f"DROP TRIGGER IF EXISTS {name} ON samsa.{table}; DROP FUNCTION IF EXISTS {name}(); "
         f"DROP SEQUENCE IF EXISTS {name}")


def main(argv):
    if len(argv) >= 3 and argv[0] == "create-topic":
        config = dict(kv.split("=", 1) for kv in argv[3:])
        admin = admin_client()
        wait_broker(admin)
        create_topic(admin, argv[1], int(argv[2]), config)
        return 0
    if len(argv) in (1, 2) and argv[0] == "wait-broker":
        wait_broker(admin_client(), float(argv[1]) if len(argv) == 2 else TIMEOUT_S)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
