#!/usr/bin/env bash
# Issue 3, acceptance 6, with a Postgres and a samsa of this test's own
# (tests/lib.sh):
#
#  1. A group commits offsets (with metadata) and its consumer closes; samsa
#     is stopped and started: the committed offsets and metadata are served
#     unchanged and a new consumer of the group resumes right after them.
#  2. The same across a crash (SIGKILL) of samsa.
#  3. A member stays connected while samsa restarts: the group's state came
#     back from Postgres, so it carries on with the same member id and its
#     partitions are never revoked.
#  4. Two members of the consumer protocol (KIP-848, group.protocol=consumer)
#     across a restart: their state came back from Postgres, so they carry
#     on and no partition changes hands (no ownership span, by the wall
#     clock, begins or ends from the restart until they stop); no partition
#     is ever owned by both at once, and they share all of them.
#     samsa runs with group.consumer.session.timeout.ms=8000 and
#     group.consumer.heartbeat.interval.ms=1000 for this step and the next.
#  5. The same on the wire, where no client's timing can hide anything: a
#     member of before the restart carries on with its epoch and its
#     partitions; a new member of a group whose member of before does not
#     come back gets nothing until that member's session (8 s, started
#     again with samsa) ends; a group whose members had all left hands out
#     its partitions at once; a member saved unreadable is logged, deleted
#     and ignored.
#
# Environment: SAMSA_BIN, SAMSA_TEST_DIR (scratch space; default a temp dir).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"

test_begin groups_restart

tool=$here/python/groups_restart_tool.py
export PYTHONPATH=$here/python

samsa_start "$work" || fail "could not start Postgres and samsa"
echo "groups_restart: samsa on $SAMSA_BOOTSTRAP, Postgres on port $SAMSA_PG_PORT"

# 1. A clean stop and start.
t=gr-stop-$(date +%s)-$RANDOM
"$SAMSA_PY" "$tool" commit "$t" "g-$t" "$work/stop.json" || fail "commit before the restart"
samsa_restart || fail "samsa did not restart"
"$SAMSA_PY" "$tool" check "$t" "g-$t" "$work/stop.json" ||
	fail "offsets not served unchanged after a samsa restart"
echo "groups_restart: 1. offsets and resume across a samsa restart: ok"

# 2. A crash right after the commit was acknowledged.
t=gr-kill-$(date +%s)-$RANDOM
"$SAMSA_PY" "$tool" commit "$t" "g-$t" "$work/kill.json" || fail "commit before the crash"
samsa_kill
samsa_launch || fail "samsa did not start again after SIGKILL"
"$SAMSA_PY" "$tool" check "$t" "g-$t" "$work/kill.json" ||
	fail "acknowledged offsets lost when samsa was killed"
echo "groups_restart: 2. offsets and resume across a samsa crash: ok"

# 3. A live member across a restart.
t=gr-live-$(date +%s)-$RANDOM
"$SAMSA_PY" "$here/python/samsa_client.py" create-topic "$t" 2 || fail "create $t"
"$SAMSA_PY" "$tool" live "$t" "g-$t" 25 "$work/live.json" >"$work/live.log" 2>&1 &
member=$!
sleep 10 # joined (3 s initial delay) and stable
samsa_restart || fail "samsa did not restart under a live member"
wait "$member" || {
	cat "$work/live.log" >&2
	fail "the live member failed"
}
"$SAMSA_PY" - "$work/live.json" <<'EOF' || fail "the live member had to rejoin"
import json, sys
r = json.load(open(sys.argv[1]))
assert len(r["member_ids"]) == 1, r
assert r["revoked"] == 0, r
assert sorted(r["assigned"]) == [0, 1], r
EOF
echo "groups_restart: 3. a live member carries on across a samsa restart: ok"

# 4. Consumer-protocol members across a restart.
t=gr-kip848-$(date +%s)-$RANDOM
printf '%s\n' group.consumer.session.timeout.ms=8000 \
	group.consumer.heartbeat.interval.ms=1000 >"$work/kip848.conf"
samsa_stop || fail "samsa did not stop"
samsa_launch --config "$work/kip848.conf" || fail "samsa did not start with $work/kip848.conf"
"$SAMSA_PY" "$here/python/samsa_client.py" create-topic "$t" 4 || fail "create $t"
for m in a b; do
	"$SAMSA_PY" "$tool" owners "$t" "g-$t" 40 "$work/owners-$m.json" >"$work/owners-$m.log" 2>&1 &
	eval "pid_$m=\$!"
done
sleep 12 # both joined and reconciled
since=$(date +%s.%N)
samsa_restart || fail "samsa did not restart under consumer-protocol members"
for m in a b; do
	eval "wait \$pid_$m" || {
		cat "$work/owners-$m.log" >&2
		fail "consumer-protocol member $m failed"
	}
done
"$SAMSA_PY" - "$work/owners-a.json" "$work/owners-b.json" "$since" <<'EOF' ||
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
# From the restart until the first member stops, nothing changes hands.
since, until = float(sys.argv[3]), min(a["end"], b["end"])
for m in (a, b):
    for p, f, t in m["spans"]:
        assert not (since <= f < until or since <= t < until), (
            "partition %d changed hands across the restart: owned %.3f-%.3f, "
            "restart at %.3f" % (p, f, t, since))
for p in range(4):
    for pa, fa, ta in (s for s in a["spans"] if s[0] == p):
        for pb, fb, tb in (s for s in b["spans"] if s[0] == p):
            assert ta <= fb or tb <= fa, (
                "partition %d owned by both: a %.3f-%.3f, b %.3f-%.3f"
                % (p, fa, ta, fb, tb))
# What each held when the first stopped (the other then takes its share).
held = [sorted(p for p, f, t in m["spans"] if f <= until and
               (t > until or t == m["end"])) for m in (a, b)]
assert sorted(held[0] + held[1]) == [0, 1, 2, 3], held
assert held[0] and held[1], held
EOF
	fail "consumer-protocol members lost partitions across the restart, shared one, or did not share them all"
echo "groups_restart: 4. consumer-protocol members carry on across a restart, never sharing a partition: ok"

# 5. The same, on the wire.
t=gr-wire-$(date +%s)-$RANDOM
"$SAMSA_PY" "$tool" wire-before "$t" "$t" "$work/wire.json" ||
	fail "consumer-protocol members did not join before the restart"
# A member that leaves is answered before Postgres forgets it: wait.
sql() { psql -X -At -h 127.0.0.1 -p "$SAMSA_PG_PORT" -U postgres -d samsa -c "$1"; }
saved() {
	sql "SELECT string_agg(group_id || '/' || member_id, ',' ORDER BY group_id)
	       FROM samsa.consumer_members WHERE group_id LIKE '$t-%'"
}
want=$("$SAMSA_PY" -c 'import json, sys; m = json.load(open(sys.argv[1]))
print(",".join("%s-%s/%s" % (sys.argv[2], g, m[g][0]) for g in ("kept", "resumed")))' "$work/wire.json" "$t")
for _ in $(seq 50); do
	[ "$(saved)" = "$want" ] && break
	sleep 0.2
done
[ "$(saved)" = "$want" ] || fail "members saved: $(saved), not $want"
# A member whose saved state cannot be read is dropped, not fatal.
sql "INSERT INTO samsa.consumer_members VALUES ('$t-kept', 'unreadable', '\\x01ff')" >/dev/null ||
	fail "could not add an unreadable member"
since=$(date +%s.%N)
samsa_restart || fail "samsa did not restart"
"$SAMSA_PY" "$tool" wire-after "$t" "$t" "$work/wire.json" "$since" ||
	fail "members did not carry on across the restart, or a partition was handed out while its member of before could still read it"
for _ in $(seq 50); do
	[ "$(sql "SELECT count(*) FROM samsa.consumer_members WHERE member_id = 'unreadable'")" = 0 ] && break
	sleep 0.2
done
grep -q "member unreadable could not be loaded: its saved state is unreadable, deleted" "$_LIB_SAMSA_LOG" &&
	[ "$(sql "SELECT count(*) FROM samsa.consumer_members WHERE member_id = 'unreadable'")" = 0 ] ||
	fail "the unreadable member was not logged and deleted"
echo "groups_restart: 5. on the wire: members carry on across a restart; a new one gets nothing a member of before may be reading: ok"

samsa_stop || fail "samsa did not stop cleanly at the end"
echo "groups_restart: all passed"
