#!/usr/bin/env python3
"""Generate protocol/messages.{h,c} from Apache Kafka's message definitions.

Usage: tools/gen_messages.py NEW_DIR OLD_DIR [OUT_DIR]

NEW_DIR and OLD_DIR hold Apache Kafka's message JSON (JSON with // comments),
e.g. the 4.3 and 3.9 definitions.  For every API we serve, the two files are
merged so the descriptions cover the union of their versions: fields are
matched by name, each field's version ranges (clipped to the file's
validVersions) are united, and the field order is one that agrees with the
file that defines each version (NEW_DIR wins where both do).

Run by hand, not by the build: the generated files are committed.  The
script uses the standard library only and runs clang-format on its output
when clang-format is on the PATH (pass --no-format to skip that).
"""

import json
import os
import re
import shutil
import subprocess
import sys

VMAX = 32767  # KF_VMAX, "N+" in Kafka's notation

# (api key, API name): the request and response of each are generated.
APIS = [
    (0, "Produce"),
    (1, "Fetch"),
    (2, "ListOffsets"),
    (3, "Metadata"),
    (8, "OffsetCommit"),
    (9, "OffsetFetch"),
    (10, "FindCoordinator"),
    (11, "JoinGroup"),
    (12, "Heartbeat"),
    (13, "LeaveGroup"),
    (14, "SyncGroup"),
    (15, "DescribeGroups"),
    (16, "ListGroups"),
    (17, "SaslHandshake"),
    (18, "ApiVersions"),
    (19, "CreateTopics"),
    (20, "DeleteTopics"),
    (21, "DeleteRecords"),
    (22, "InitProducerId"),
    (23, "OffsetForLeaderEpoch"),
    (24, "AddPartitionsToTxn"),
    (25, "AddOffsetsToTxn"),
    (26, "EndTxn"),
    (27, "WriteTxnMarkers"),
    (28, "TxnOffsetCommit"),
    (29, "DescribeAcls"),
    (30, "CreateAcls"),
    (31, "DeleteAcls"),
    (32, "DescribeConfigs"),
    (33, "AlterConfigs"),
    (35, "DescribeLogDirs"),
    (36, "SaslAuthenticate"),
    (37, "CreatePartitions"),
    (42, "DeleteGroups"),
    (44, "IncrementalAlterConfigs"),
    (47, "OffsetDelete"),
    (60, "DescribeCluster"),
    (61, "DescribeProducers"),
    (65, "DescribeTransactions"),
    (66, "ListTransactions"),
    (68, "ConsumerGroupHeartbeat"),
    (69, "ConsumerGroupDescribe"),
]

# Data structs that are not API messages (no header, api key -1).
DATA = ["ConsumerProtocolSubscription", "ConsumerProtocolAssignment"]

# Kafka type -> (KF_ constant, C type of one value)
PRIM = {
    "bool": ("KF_BOOL", "bool"),
    "int8": ("KF_INT8", "int8_t"),
    "int16": ("KF_INT16", "int16_t"),
    "uint16": ("KF_UINT16", "uint16_t"),
    "int32": ("KF_INT32", "int32_t"),
    "int64": ("KF_INT64", "int64_t"),
    "float64": ("KF_FLOAT64", "double"),
    "uuid": ("KF_UUID", "struct kuuid"),
    "string": ("KF_STRING", "struct kstr"),
    "bytes": ("KF_BYTES", "struct kstr"),
    "records": ("KF_RECORDS", "struct kstr"),
}

INT_RANGE = {
    "int8": (-(1 << 7), (1 << 7) - 1),
    "int16": (-(1 << 15), (1 << 15) - 1),
    "uint16": (0, (1 << 16) - 1),
    "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
}


class GenError(Exception):
    pass


def strip_comments(text):
    """Removes // comments outside JSON strings."""
    out = []
    i, n = 0, len(text)
    in_str = False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_str = False
            i += 1
        elif c == '"':
            in_str = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.loads(strip_comments(f.read()))


def parse_versions(s):
    """'N+', 'N-M', 'N' or 'none' -> (lo, hi) or None."""
    s = str(s).strip()
    if s == "none" or s == "":
        return None
    m = re.fullmatch(r"(\d+)\+", s)
    if m:
        return (int(m.group(1)), VMAX)
    m = re.fullmatch(r"(\d+)-(\d+)", s)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        if lo > hi:
            raise GenError("bad version range %r" % s)
        return (lo, hi)
    m = re.fullmatch(r"\d+", s)
    if m:
        return (int(s), int(s))
    raise GenError("bad version spec %r" % s)


def clip(rng, valid):
    if rng is None or valid is None:
        return None
    lo, hi = max(rng[0], valid[0]), min(rng[1], valid[1])
    return (lo, hi) if lo <= hi else None


def union(ranges, what):
    rs = sorted(r for r in ranges if r is not None)
    if not rs:
        return None
    lo, hi = rs[0]
    for a, b in rs[1:]:
        if a > hi + 1:
            raise GenError("%s: versions %r are not contiguous" % (what, rs))
        hi = max(hi, b)
    return (lo, hi)


class Source:
    """One definition file of a message: its JSON and valid versions."""

    def __init__(self, path, prio):
        self.path = path
        self.prio = prio  # 0 = newest definitions
        self.json = load_json(path)
        self.valid = parse_versions(self.json["validVersions"])
        self.common = {c["name"]: c for c in self.json.get("commonStructs", [])}


class Field:
    pass


class Struct:
    def __init__(self, name, cname):
        self.name = name  # Kafka's type name
        self.cname = cname  # C struct tag
        self.fields = []


def base_type(t):
    return t[2:] if t.startswith("[]") else t


def norm_default(f, t, what):
    """A field's default as the int64 kept in struct kf_field.def."""
    d = f.get("default")
    if t == "bool":
        if d is None:
            return 0
        if isinstance(d, bool):
            return int(d)
        if d in ("true", "false"):
            return int(d == "true")
        raise GenError("%s: bad bool default %r" % (what, d))
    if t in INT_RANGE:
        if d is None or d == "":
            return 0
        if isinstance(d, bool):
            raise GenError("%s: bad int default %r" % (what, d))
        if isinstance(d, int):
            v = d
        else:
            s = str(d).strip()
            if re.fullmatch(r"-?0[0-7]+", s):
                v = int(s, 8)
            else:
                v = int(s, 0)
        lo, hi = INT_RANGE[t]
        if not lo <= v <= hi:
            raise GenError("%s: default %r out of range" % (what, d))
        return v
    if t == "float64":
        if d is None:
            return 0
        v = float(d)
        if v != int(v):
            raise GenError("%s: non-integral float default" % what)
        return int(v)
    if t == "uuid":
        if d not in (None, "", "AAAAAAAAAAAAAAAAAAAAAA"):
            raise GenError("%s: uuid default %r unsupported" % (what, d))
        return 0
    if t in ("string", "bytes"):
        if d is None or d == "":
            return 0
        if d == "null":
            return 1
        raise GenError("%s: string default %r unsupported" % (what, d))
    if t == "records":
        return 1  # records default to null in Kafka
    if t.startswith("[]"):
        if d is None or d == "":
            return 0
        if d == "null":
            return 1
        raise GenError("%s: array default %r unsupported" % (what, d))
    if d == "null":
        return 1  # a nullable struct (kmsg.h: null when its arrays are)
    if d is not None:
        raise GenError("%s: struct default unsupported" % what)
    return 0


class Message:
    """The merged description of one message (a request, response or data)."""

    def __init__(self, name, sources, api_key):
        self.name = name
        self.api_key = api_key
        self.sources = sources  # newest first
        ranges = [s.valid for s in sources]
        self.vmin = min(r[0] for r in ranges)
        self.vmax = max(r[1] for r in ranges)
        flex = set(s.json.get("flexibleVersions", "none") for s in sources)
        flex = set(parse_versions(x) for x in flex)
        if len(flex) != 1:
            raise GenError("%s: flexibleVersions differ" % name)
        fv = flex.pop()
        self.flex_min = VMAX if fv is None else fv[0]
        self.structs = {}  # cname -> Struct
        self.common_done = {}  # common struct name -> Struct
        self.body = self.merge_struct(
            name, name, [(s, s.json["fields"]) for s in sources], top=True)

    def vrange(self, src, spec):
        return clip(parse_versions(spec), src.valid)

    def register(self, st):
        if st.cname in self.structs:
            raise GenError("%s: struct %s defined twice" % (self.name,
                                                           st.cname))
        self.structs[st.cname] = st

    def common_struct(self, tname, srcs):
        if tname in self.common_done:
            return self.common_done[tname]
        parts = []
        for s in srcs:
            c = s.common.get(tname)
            if c is not None:
                parts.append((s, c["fields"]))
        if not parts:
            raise GenError("%s: unknown struct type %s" % (self.name, tname))
        st = self.merge_struct(tname, self.name + "_" + tname, parts)
        self.common_done[tname] = st
        return st

    def merge_struct(self, tname, cname, parts, top=False):
        st = Struct(tname, cname)
        by_name = {}
        for src, fl in parts:
            for f in fl:
                by_name.setdefault(f["name"], []).append((src, f))
        merged = {}
        for fname, occ in by_name.items():
            mf = self.merge_field(cname, fname, occ)
            if mf is not None:
                merged[fname] = mf
        st.fields = [merged[n] for n in self.order(cname, parts, merged)]
        self.register(st)
        return st

    def merge_field(self, where, fname, occ):
        what = "%s.%s" % (where, fname)
        types = set(f["type"] for _, f in occ)
        if len(types) != 1:
            raise GenError("%s: type differs %r" % (what, types))
        t = types.pop()
        mf = Field()
        mf.name = fname
        mf.jtype = t
        mf.versions = union([self.vrange(s, f["versions"]) for s, f in occ],
                            what)
        if mf.versions is None:
            return None
        mf.nullable = union([self.vrange(s, f["nullableVersions"])
                             for s, f in occ if "nullableVersions" in f],
                            what + " nullable")
        mf.tagged = union([self.vrange(s, f["taggedVersions"])
                           for s, f in occ if "taggedVersions" in f],
                          what + " tagged")
        tags = set(f.get("tag") for _, f in occ if "taggedVersions" in f)
        if len(tags) > 1:
            raise GenError("%s: tag differs" % what)
        mf.tag = tags.pop() if tags else None
        if mf.tagged is not None and mf.tag is None:
            raise GenError("%s: tagged without a tag" % what)
        defs = set(norm_default(f, t, what) for _, f in occ)
        if len(defs) != 1:
            raise GenError("%s: default differs %r" % (what, defs))
        mf.default = defs.pop()
        bt = base_type(t)
        mf.is_array = t.startswith("[]")
        mf.sub = None
        if bt not in PRIM:
            with_fields = [(s, f["fields"]) for s, f in occ if "fields" in f]
            if with_fields and len(with_fields) != len(occ):
                raise GenError("%s: struct both inline and common" % what)
            if with_fields:
                mf.sub = self.merge_struct(bt, self.name + "_" + bt,
                                           with_fields)
            else:
                mf.sub = self.common_struct(bt, [s for s, _ in occ])
        elif "fields" in occ[0][1]:
            raise GenError("%s: primitive with fields" % what)
        if bt == "records" and mf.is_array:
            raise GenError("%s: array of records" % what)
        return mf

    def order(self, where, parts, merged):
        """A field order that agrees with each version's defining file."""
        edges = {n: set() for n in merged}
        indeg = {n: 0 for n in merged}
        for v in range(self.vmin, self.vmax + 1):
            cands = [(s, fl) for s, fl in parts
                     if s.valid[0] <= v <= s.valid[1]]
            if not cands:
                continue
            src, fl = min(cands, key=lambda p: p[0].prio)
            seq = []
            for f in fl:
                r = self.vrange(src, f["versions"])
                if f["name"] in merged and r and r[0] <= v <= r[1]:
                    seq.append(f["name"])
            for a, b in zip(seq, seq[1:]):
                if b not in edges[a]:
                    edges[a].add(b)
                    indeg[b] += 1
        rank = {}
        for s, fl in sorted(parts, key=lambda p: p[0].prio):
            for i, f in enumerate(fl):
                rank.setdefault(f["name"], (s.prio, i))
        out = []
        ready = [n for n in merged if indeg[n] == 0]
        while ready:
            ready.sort(key=lambda n: rank[n])
            n = ready.pop(0)
            out.append(n)
            for m in edges[n]:
                indeg[m] -= 1
                if indeg[m] == 0:
                    ready.append(m)
        if len(out) != len(merged):
            raise GenError("%s: field orders of the files conflict" % where)
        return out

    def post_order(self):
        """Structs with every struct they embed or point to first."""
        seen, out = set(), []

        def visit(st):
            if st.cname in seen:
                return
            seen.add(st.cname)
            for f in st.fields:
                if f.sub is not None:
                    visit(f.sub)
            out.append(st)

        visit(self.body)
        return out


def vbound(v, m):
    """A version bound as C: KF_VMAX when open-ended in the merged range."""
    return "KF_VMAX" if v >= m.vmax else str(v)


def c_default(v):
    if v == -(1 << 63):
        return "INT64_MIN"
    if v == (1 << 63) - 1:
        return "INT64_MAX"
    if v > (1 << 31) - 1 or v < -(1 << 31):
        return "INT64_C(%d)" % v
    return str(v)


def elem_ctype(f):
    bt = base_type(f.jtype)
    if f.sub is not None:
        return "struct " + f.sub.cname
    return PRIM[bt][1]


def kf_type(f):
    if f.is_array:
        return "KF_ARRAY"
    if f.sub is not None:
        return "KF_STRUCT"
    return PRIM[f.jtype][0]


def kf_elem(f):
    if not f.is_array:
        return "0"
    if f.sub is not None:
        return "KF_STRUCT"
    return PRIM[base_type(f.jtype)][0]


def vers_comment(f, m):
    def fmt(r):
        if r is None:
            return "none"
        lo, hi = r
        if hi >= m.vmax:
            return "%d+" % lo
        return "%d" % lo if lo == hi else "%d-%d" % (lo, hi)

    s = "v" + fmt(f.versions)
    if f.nullable:
        s += ", nullable " + fmt(f.nullable)
    if f.tagged:
        s += ", tag %d in %s" % (f.tag, fmt(f.tagged))
    return s


HEADER = """\
/*
 * Generated by tools/gen_messages.py from Apache Kafka's message definitions
 * (Apache License 2.0, see NOTICE).  Do not edit: change the generator and
 * run it again.
"""


def gen_header(msgs):
    o = [HEADER]
    o.append(""" *
 * One C struct per message and per nested Kafka struct type, named
 * <Message>_<Type>, with fields named as Kafka names them.  Field types
 * follow kmsg.h: strings, bytes and records are struct kstr, arrays are
 * { int32_t count; T *items; } (the layout of struct karr).
 */
#ifndef SAMSA_MESSAGES_H
#define SAMSA_MESSAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kbuf.h"
#include "kmsg.h"
""")
    for m in msgs:
        o.append("\n/* %s: versions %d-%d, flexible %s */\n" % (
            m.name, m.vmin, m.vmax,
            "none" if m.flex_min >= VMAX else "%d+" % m.flex_min))
        for st in m.post_order():
            o.append("\nstruct %s {\n" % st.cname)
            if not st.fields:
                o.append("\tchar unused_; /* no fields in any version */\n")
            for f in st.fields:
                c = "/* %s */" % vers_comment(f, m)
                if f.is_array:
                    o.append("\tstruct {\n\t\tint32_t count;\n"
                             "\t\t%s *items;\n\t} %s; %s\n" % (
                                 elem_ctype(f), f.name, c))
                else:
                    o.append("\t%s %s; %s\n" % (elem_ctype(f), f.name, c))
            o.append("};\n")
            if st is not m.body:
                o.append("extern const struct kf_struct %s_struct;\n"
                         % st.cname)
        o.append("\nextern const struct kf_struct %s_struct;\n" % m.name)
        o.append("extern const struct kf_message kmsg_%s;\n" % m.name)
    o.append("""
/* One served API: its key, its name and the descriptions of both messages. */
struct kmsg_api {
	int16_t api_key;
	const char *name; /* "Produce" */
	const struct kf_message *request;
	const struct kf_message *response;
};

/* Every generated API, by ascending key. */
extern const struct kmsg_api kmsg_apis[];
extern const size_t kmsg_napis;

/* The request / response description of api_key, or NULL if unknown. */
const struct kf_message *kmsg_request(int16_t api_key);
const struct kf_message *kmsg_response(int16_t api_key);
/* The API's name ("Produce"), or NULL if unknown. */
const char *kmsg_api_name(int16_t api_key);

#endif
""")
    return "".join(o)


def gen_source(msgs, apis):
    o = [HEADER, " */\n"]
    o.append("""#include "messages.h"

#include <stddef.h>
#include <stdint.h>

/* Version ranges of a field: exists, nullable, tagged (with its tag). */
#define FV(lo, hi) .vmin = (lo), .vmax = (hi)
#define FN(lo, hi) .nmin = (lo), .nmax = (hi)
#define FT(lo, hi, t) .tmin = (lo), .tmax = (hi), .tag = (t)
#define NOT_NULL FN(KF_NEVER, KF_NEVER)
#define NOT_TAGGED FT(KF_NEVER, KF_NEVER, 0)
#define OFF(st, f) .offset = offsetof(struct st, f)
""")
    for m in msgs:
        o.append("\n/* %s */\n" % m.name)
        for st in m.post_order():
            if st.fields:
                o.append("\nstatic const struct kf_field %s_fields[] = {\n"
                         % st.cname)
                for f in st.fields:
                    parts = ['.name = "%s"' % f.name,
                             ".type = %s" % kf_type(f)]
                    if f.is_array:
                        parts.append(".elem = %s" % kf_elem(f))
                    parts.append("FV(%d, %s)" % (f.versions[0],
                                                  vbound(f.versions[1], m)))
                    if f.nullable:
                        parts.append("FN(%d, %s)" % (
                            f.nullable[0], vbound(f.nullable[1], m)))
                    else:
                        parts.append("NOT_NULL")
                    if f.tagged:
                        parts.append("FT(%d, %s, %d)" % (
                            f.tagged[0], vbound(f.tagged[1], m), f.tag))
                    else:
                        parts.append("NOT_TAGGED")
                    parts.append("OFF(%s, %s)" % (st.cname, f.name))
                    if f.default:
                        parts.append(".def = %s" % c_default(f.default))
                    if f.sub is not None:
                        parts.append(".sub = &%s_struct" % f.sub.cname)
                    o.append("\t{" + ", ".join(parts) + "},\n")
                o.append("};\n")
            o.append("\nconst struct kf_struct %s_struct = {\n" % (
                st.cname))
            o.append('\t.name = "%s",\n' % st.name)
            o.append("\t.size = sizeof(struct %s),\n" % st.cname)
            o.append("\t.nfields = %d,\n" % len(st.fields))
            o.append("\t.fields = %s,\n" % (
                st.cname + "_fields" if st.fields else "NULL"))
            o.append("};\n")
        o.append("\nconst struct kf_message kmsg_%s = {\n" % m.name)
        o.append('\t.name = "%s",\n' % m.name)
        o.append("\t.api_key = %d,\n" % m.api_key)
        o.append("\t.vmin = %d,\n\t.vmax = %d,\n" % (m.vmin, m.vmax))
        o.append("\t.flex_min = %s,\n" % (
            "KF_VMAX" if m.flex_min >= VMAX else str(m.flex_min)))
        o.append("\t.body = &%s_struct,\n" % m.name)
        o.append("};\n")
    o.append("\nconst struct kmsg_api kmsg_apis[] = {\n")
    for key, name in apis:
        o.append('\t{%d, "%s", &kmsg_%sRequest, &kmsg_%sResponse},\n' % (
            key, name, name, name))
    o.append("};\n\nconst size_t kmsg_napis = %d;\n" % len(apis))
    o.append("""
static const struct kmsg_api *find_api(int16_t api_key)
{
	size_t lo = 0, hi = kmsg_napis;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (kmsg_apis[mid].api_key == api_key)
			return &kmsg_apis[mid];
		if (kmsg_apis[mid].api_key < api_key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct kf_message *kmsg_request(int16_t api_key)
{
	const struct kmsg_api *a = find_api(api_key);
	return a != NULL ? a->request : NULL;
}

const struct kf_message *kmsg_response(int16_t api_key)
{
	const struct kmsg_api *a = find_api(api_key);
	return a != NULL ? a->response : NULL;
}

const char *kmsg_api_name(int16_t api_key)
{
	const struct kmsg_api *a = find_api(api_key);
	return a != NULL ? a->name : NULL;
}
""")
    return "".join(o)


def find_sources(dirs, name):
    srcs = []
    for prio, d in enumerate(dirs):
        p = os.path.join(d, name + ".json")
        if os.path.exists(p):
            srcs.append(Source(p, prio))
    if not srcs:
        raise GenError("%s.json found in none of %r" % (name, dirs))
    return srcs


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    fmt = "--no-format" not in argv
    if len(args) not in (2, 3):
        sys.stderr.write(__doc__)
        return 2
    dirs = args[:2]
    here = os.path.dirname(os.path.abspath(__file__))
    out = args[2] if len(args) == 3 else os.path.join(here, "..", "protocol")

    msgs = []
    apis = sorted(APIS)
    for key, api in apis:
        for kind in ("Request", "Response"):
            name = api + kind
            srcs = find_sources(dirs, name)
            for s in srcs:
                if s.json.get("apiKey") != key:
                    raise GenError("%s: apiKey %r, expected %d" % (
                        s.path, s.json.get("apiKey"), key))
                if s.json.get("name") != name:
                    raise GenError("%s: name %r" % (s.path,
                                                    s.json.get("name")))
            msgs.append(Message(name, srcs, key))
    for name in DATA:
        msgs.append(Message(name, find_sources(dirs, name), -1))

    files = {
        os.path.join(out, "messages.h"): gen_header(msgs),
        os.path.join(out, "messages.c"): gen_source(msgs, apis),
    }
    for path, text in files.items():
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    if fmt and shutil.which("clang-format"):
        subprocess.check_call(["clang-format", "-i"] + list(files))
    for path in files:
        print("wrote", os.path.normpath(path))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except GenError as e:
        sys.stderr.write("gen_messages: %s\n" % e)
        sys.exit(1)
