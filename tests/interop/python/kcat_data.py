"""Data for tests/interop/kcat.sh: the records to produce and the check of
what kcat consumed.

    python kcat_data.py gen N FILE
        N lines "KEY<TAB>VALUE"; VALUE starts with the six-digit sequence
        number and holds varied bytes (UTF-8, punctuation), never a TAB or
        a newline.
    python kcat_data.py check N FILE HEADERS PARTITIONS
        FILE is kcat -C output in the format '%p\\t%o\\t%k\\t%h\\t%s\\n'.
        Every record 0..N-1 must be there exactly once, byte-identical (key,
        value, headers == HEADERS as kcat prints them), offsets in each
        partition 0, 1, 2, ... and sequence numbers rising in each
        partition; each of the PARTITIONS partitions must hold some.
"""

import sys

ALPHABET = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
            " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ äöüßéèçñ€ΩЖ日本語🙂").encode()


def key_of(i):
    return b"key-%d" % (i % 997)


def value_of(i):
    n = (i * 31) % 200
    start = (i * 7) % len(ALPHABET)
    body = (ALPHABET[start:] + ALPHABET)[:n]
    # a cut multi-byte character is fine: the broker keeps bytes, not text
    return b"%06d|" % i + body


def gen(n, path):
    with open(path, "wb") as f:
        for i in range(n):
            f.write(key_of(i) + b"\t" + value_of(i) + b"\n")
    return 0


def check(n, path, headers, partitions):
    headers = headers.encode()
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    seen = bytearray(n)
    last_seq = {}
    next_off = {}
    problems = []

    def bad(msg):
        problems.append(msg)
        return len(problems) >= 20

    for ln, line in enumerate(lines):
        parts = line.split(b"\t", 4)
        if len(parts) != 5:
            if bad("line %d: not 5 fields: %r" % (ln, line[:120])):
                break
            continue
        p, o, k, h, v = parts
        p, o = int(p), int(o)
        try:
            seq = int(v[:6])
        except ValueError:
            seq = -1
        if not 0 <= seq < n:
            if bad("line %d: no sequence number in value %r" % (ln, v[:40])):
                break
            continue
        if seen[seq]:
            if bad("record %d consumed twice (partition %d offset %d)" % (seq, p, o)):
                break
        seen[seq] = 1
        if v != value_of(seq):
            if bad("record %d: value differs: %r != %r" % (seq, v[:60], value_of(seq)[:60])):
                break
        if k != key_of(seq):
            if bad("record %d: key %r != %r" % (seq, k, key_of(seq))):
                break
        if h != headers:
            if bad("record %d: headers %r != %r" % (seq, h, headers)):
                break
        if o != next_off.get(p, 0):
            if bad("partition %d: offset %d where %d was expected" % (p, o, next_off.get(p, 0))):
                break
        next_off[p] = o + 1
        if seq <= last_seq.get(p, -1):
            if bad("partition %d: record %d after record %d (out of order)" % (p, seq, last_seq[p])):
                break
        last_seq[p] = seq

    missing = n - sum(seen)
    if missing:
        first = [i for i in range(n) if not seen[i]][:10]
        problems.append("%d of %d records missing, first %s" % (missing, n, first))
    if sorted(next_off) != list(range(partitions)):
        problems.append("records in partitions %s, expected all of 0..%d"
                        % (sorted(next_off), partitions - 1))
    if problems:
        for msg in problems:
            print("kcat check: " + msg, file=sys.stderr)
        return 1
    print("kcat check: %d records, per partition %s"
          % (n, [next_off[p] for p in sorted(next_off)]))
    return 0


def main(argv):
    if len(argv) == 3 and argv[0] == "gen":
        return gen(int(argv[1]), argv[2])
    if len(argv) == 5 and argv[0] == "check":
        return check(int(argv[1]), argv[2], argv[3], int(argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
