"""The stacks bench/ measures, started and stopped by the benchmark itself,
and what it reads off their processes.

- PgStack: a private Postgres (scripts/pg.sh) and, optionally, samsa on it.
- KafkaStack: Apache Kafka 4.x as a single-node KRaft broker on loopback,
  from the Maven Central jars on bench/java/target/classpath.txt: storage
  formatted with kafka.tools.StorageTool, then kafka.Kafka with a
  server.properties written here.
- ConnectStack: Kafka Connect standalone (connect-runtime) with the Debezium
  plugins, writing to a KafkaStack.

CPU is read from /proc/<pid>/stat (utime+stime of a process and of its live
descendants, plus cutime+cstime of the root for the children it reaped);
memory from /proc/<pid>/status (VmRSS, VmHWM) and smaps_rollup (Pss, so
that Postgres's shared buffers count once across its processes).
"""

import os
import signal
import socket
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PGSH = os.path.join(ROOT, "scripts", "pg.sh")
JAVA_DIR = os.path.join(ROOT, "bench", "java")
TICK = os.sysconf("SC_CLK_TCK")
JVM_LOG = ["-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
           "-Dlog4j2.level=WARN"]


def freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, secs=60, host="127.0.0.1"):
    end = time.time() + secs
    while time.time() < end:
        try:
            socket.create_connection((host, port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {secs}s")


def http(url, body=None, method=None, retry_s=10):
    """(status, text) of a JSON request; a refused connection or a 5xx is
    tried again for retry_s (samsa's Connect port can answer 500 "not
    connected" in the moment after it starts listening)"""
    import json
    import urllib.error
    import urllib.request
    end = time.time() + retry_s
    while True:
        req = urllib.request.Request(
            url, data=json.dumps(body).encode() if body is not None else None,
            method=method or ("POST" if body is not None else "GET"),
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            st, text = e.code, e.read().decode()
            if st < 500 or time.time() > end:
                return st, text
        except OSError:
            if time.time() > end:
                raise
        time.sleep(0.5)


def classpath():
    p = os.path.join(JAVA_DIR, "target", "classpath.txt")
    if not os.path.exists(p):
        raise RuntimeError("no bench/java/target/classpath.txt (bench/peers.sh)")
    return open(p).read().strip()


# ---------------------------------------------------------------- /proc

def _stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    # fields from 3 on: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17)
    return int(rest[1]), int(rest[11]), int(rest[12]), int(rest[13]), int(rest[14])


def _children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _stat(int(d))
            if st:
                kids.setdefault(st[0], []).append(int(d))
    return kids


def tree(roots):
    """roots and their live descendants"""
    kids = _children_map()
    out, todo = [], [r for r in roots if r]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds(roots):
    """CPU seconds (user+system) of roots, their live descendants, and the
    descendants they reaped"""
    total = 0
    for p in tree(roots):
        st = _stat(p)
        if st:
            total += st[1] + st[2] + st[3] + st[4]
    return total / TICK


def machine_busy():
    """busy CPU seconds of the whole machine (/proc/stat), and its cores"""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
    return busy / TICK


def settle(max_s=30, idle=0.15):
    """Waits until the whole machine has used under `idle` of a core for
    one second, at most max_s; returns the seconds waited.  A run then
    measures its own system, not what the run before left behind (a JVM's
    collector, Postgres's autovacuum or checkpointer, the kernel writing
    back the page cache)."""
    t0 = time.time()
    while time.time() - t0 < max_s:
        b = machine_busy()
        time.sleep(1)
        if machine_busy() - b < idle:
            break
    return time.time() - t0


def status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(roots):
    total = 0
    for p in tree(roots):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def loadavg():
    return open("/proc/loadavg").read().split()[0]


def process_cpu():
    """{pid: (name, CPU ticks)} of every process now"""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = _stat(int(d))
        try:
            with open(f"/proc/{d}/comm") as f:
                name = f.read().strip()
        except OSError:
            continue
        if st:
            out[int(d)] = (name, st[1] + st[2])
    return out


def busiest(before, after, exclude, seconds, n=5):
    """the processes outside exclude that used the most CPU between two
    process_cpu() snapshots, as one line ("name 12%" is 12% of a core on
    average); a process started or ended in between is left out"""
    pct = sorted(((100 * (after[p][1] - before[p][1]) / TICK / seconds, after[p][0])
                  for p in after if p in before and p not in exclude), reverse=True)
    return ", ".join(f"{name} {v:.0f}%" for v, name in pct[:n] if v >= 0.5)


class Meter:
    """CPU and memory of a stack over one measured interval, with the
    machine's other load alongside: start(), then stop() -> dict."""

    def __init__(self, roots_fn):
        self.roots_fn = roots_fn
        self.peak_pss = 0
        self._stop = threading.Event()

    def _sample(self):
        while not self._stop.wait(0.5):
            self.peak_pss = max(self.peak_pss, pss_kb(self.roots_fn()))

    def start(self):
        self.t0 = time.time()
        self.cpu0 = cpu_seconds(self.roots_fn())
        self.busy0 = machine_busy()
        self.load0 = loadavg()
        self.procs0 = process_cpu()
        self.peak_pss = pss_kb(self.roots_fn())
        self.th = threading.Thread(target=self._sample, daemon=True)
        self.th.start()
        return self

    def stop(self, client_cpu=0.0):
        self._stop.set()
        self.th.join()
        dt = time.time() - self.t0
        cpu = cpu_seconds(self.roots_fn()) - self.cpu0
        busy = machine_busy() - self.busy0
        others = busiest(self.procs0, process_cpu(), set(tree(self.roots_fn())), dt)
        return {"seconds": dt, "stack_cpu_s": cpu, "client_cpu_s": client_cpu,
                "other_cpu_pct": max(0.0, 100 * (busy - cpu - client_cpu) / dt),
                "others": others,
                "peak_pss_mb": self.peak_pss / 1024,
                "load": f"{self.load0}->{loadavg()}"}


def build_c(work, name, libs):
    """compiles bench/<name>.c into work/<name> (-> its path)"""
    exe = os.path.join(work, name)
    inc = subprocess.run(["pg_config", "--includedir"], capture_output=True,
                         text=True, check=True).stdout.strip()
    os.makedirs(work, exist_ok=True)
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra",
                    "-Werror", f"-I{inc}", "-o", exe,
                    os.path.join(ROOT, "bench", name + ".c")] + libs, check=True)
    return exe


def run_java(cls, args, heap="-Xmx512m", timeout=900, env=None):
    """runs a Java main class to completion; returns (stdout, stderr, cpu s)"""
    cmd = ["java", heap] + JVM_LOG + ["-cp", classpath(), cls] + args
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    out, err = [], []
    t1 = threading.Thread(target=lambda: out.append(p.stdout.read()))
    t2 = threading.Thread(target=lambda: err.append(p.stderr.read()))
    t1.start(); t2.start()
    end = time.time() + timeout
    ru = None
    while ru is None:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            ru = usage
            p.returncode = os.waitstatus_to_exitcode(status)
            break
        if time.time() > end:
            p.kill()
            continue
        time.sleep(0.05)
    t1.join(); t2.join()
    if p.returncode != 0:
        raise RuntimeError(f"{cls} exited {p.returncode}: {err[0][-2000:]}")
    return out[0], err[0], ru.ru_utime + ru.ru_stime


# ---------------------------------------------------------------- stacks

class PgStack:
    """Postgres (scripts/pg.sh: fsync and synchronous_commit on) and samsa"""

    name = "samsa"

    def __init__(self, work, samsa_bin):
        self.work = work
        self.data = os.path.join(work, "pg")
        self.port = None
        self.samsa_bin = samsa_bin
        self.samsa = None
        os.makedirs(work, exist_ok=True)
        os.chmod(work, 0o755)

    def pg_start(self):
        if self.port is None:
            self.port = freeport()
        subprocess.run([PGSH, "start", self.data, str(self.port)], check=True)
        subprocess.run([PGSH, "createdb", self.data, str(self.port), "samsa"],
                       check=True)

    def pg_stop(self):
        subprocess.run([PGSH, "stop", self.data], check=True)

    def pg_pid(self):
        try:
            return int(open(os.path.join(self.data, "postmaster.pid")).readline())
        except (OSError, ValueError):
            return None

    def psql(self, sql, db="samsa"):
        return subprocess.run(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
             "-p", str(self.port), "-U", "postgres", "-d", db, "-c", sql],
            check=True, capture_output=True, text=True).stdout.strip()

    def conninfo(self, db="samsa"):
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={db}"

    def samsa_start(self):
        self.kport, self.rport, self.cport = freeport(), freeport(), freeport()
        self.bootstrap = f"127.0.0.1:{self.kport}"
        self.connect_url = f"http://127.0.0.1:{self.cport}"
        log = open(os.path.join(self.work, "samsa.log"), "a")
        self.samsa = subprocess.Popen(
            [self.samsa_bin, "--pg", self.conninfo(), "--kafka", self.bootstrap,
             "--advertise", self.bootstrap, "--registry", f"127.0.0.1:{self.rport}",
             "--connect", f"127.0.0.1:{self.cport}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        wait_port(self.kport, 60)
        wait_port(self.cport, 60)

    def samsa_stop(self):
        if self.samsa and self.samsa.poll() is None:
            self.samsa.send_signal(signal.SIGTERM)
            try:
                self.samsa.wait(30)
            except subprocess.TimeoutExpired:
                self.samsa.kill()
                self.samsa.wait()
        self.samsa = None

    def roots(self):
        return [self.pg_pid()] + ([self.samsa.pid] if self.samsa else [])

    def broker_pid(self):
        return self.samsa.pid if self.samsa else None

    def stop(self):
        self.samsa_stop()
        self.pg_stop()


class KafkaStack:
    """Apache Kafka 4.x, one KRaft node (broker and controller), loopback"""

    name = "kafka"

    def __init__(self, work, heap="1G"):
        self.work = work
        self.heap = heap
        self.proc = None
        os.makedirs(work, exist_ok=True)

    def format(self):
        self.kport, self.cport = freeport(), freeport()
        self.bootstrap = f"127.0.0.1:{self.kport}"
        self.props = os.path.join(self.work, "server.properties")
        with open(self.props, "w") as f:
            f.write(f"""# written by bench/stacks.py: one KRaft node on loopback
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{self.cport}
listeners=PLAINTEXT://127.0.0.1:{self.kport},CONTROLLER://127.0.0.1:{self.cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{self.kport}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={self.work}/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
""")
        out, _, _ = run_java("kafka.tools.StorageTool", ["random-uuid"])
        cid = out.strip().split()[-1]
        run_java("kafka.tools.StorageTool",
                 ["format", "-t", cid, "-c", self.props, "--standalone"])

    def start(self):
        """the JVM as kafka-server-start.sh runs it (its heap and GC flags)"""
        log = open(os.path.join(self.work, "kafka.log"), "a")
        self.proc = subprocess.Popen(
            ["java", f"-Xmx{self.heap}", f"-Xms{self.heap}", "-server",
             "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
             "-XX:InitiatingHeapOccupancyPercent=35",
             "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true"]
            + JVM_LOG + ["-cp", classpath(), "kafka.Kafka", self.props],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def wait(self):
        wait_port(self.kport, 120)

    def roots(self):
        return [self.proc.pid] if self.proc else []

    def broker_pid(self):
        return self.proc.pid if self.proc else None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class ConnectStack:
    """Kafka Connect standalone with the plugins under bench/java/*/target/
    plugins, writing to bootstrap; connector given as a properties dict"""

    def __init__(self, work, bootstrap, connector, worker_extra=None):
        self.work = work
        os.makedirs(work, exist_ok=True)
        self.rport = freeport()
        plugin_path = ",".join(
            os.path.join(JAVA_DIR, d, "target", "plugins")
            for d in ("debezium-postgres", "debezium-jdbc"))
        worker = {
            "bootstrap.servers": bootstrap,
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "offset.storage.file.filename": os.path.join(work, "offsets"),
            "plugin.path": plugin_path,
            "listeners": f"http://127.0.0.1:{self.rport}",
            "plugin.discovery": "service_load",
        }
        worker.update(worker_extra or {})
        self.wprops = os.path.join(work, "worker.properties")
        self.cprops = os.path.join(work, "connector.properties")
        with open(self.wprops, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in worker.items())
        with open(self.cprops, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in connector.items())
        self.proc = None

    def start(self):
        log = open(os.path.join(self.work, "connect.log"), "a")
        self.proc = subprocess.Popen(
            ["java", "-Xmx1G", "-Xms256M", "-server", "-XX:+UseG1GC",
             "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
             "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
             "-cp", classpath(), "org.apache.kafka.connect.cli.ConnectStandalone",
             self.wprops, self.cprops],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        wait_port(self.rport, 180)

    def roots(self):
        return [self.proc.pid] if self.proc else []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Perf:
    """perf record -e cpu-clock of the given processes (and nothing else)
    from start() to stop(path, header): the share of each process and
    library, then the hottest symbols, written to path.  A no-op without
    perf."""

    def __init__(self, data):
        import shutil
        self.data = data
        self.ok = bool(shutil.which("perf"))
        self.rec = None

    def start(self, pids):
        if not self.ok:
            return self
        self.rec = subprocess.Popen(
            ["perf", "record", "-e", "cpu-clock", "-F", "999", "-p",
             ",".join(str(p) for p in pids), "-o", self.data],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        return self

    def stop(self, path, header):
        if not self.rec:
            return
        self.rec.send_signal(signal.SIGINT)
        self.rec.wait()
        rep = lambda *a: subprocess.run(
            ["perf", "report", "-i", self.data, "--stdio", "--no-children"] + list(a),
            capture_output=True, text=True).stdout
        strip = lambda t, n: "\n".join([ln for ln in t.split("\n")
                                        if ln.strip() and not ln.startswith("#")][:n])
        with open(path, "w") as f:
            f.write(f"# {header}; load {loadavg()}\n")
            f.write("# share of the CPU samples by process and library "
                    "(only the processes profiled)\n")
            f.write(strip(rep("--sort", "comm,dso"), 14) + "\n")
            f.write("# hottest symbols\n")
            f.write(strip(rep("--sort", "comm,dso,sym"), 40) + "\n")
