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

samsa_stop || fail "samsa did not stop cleanly at the end"
echo "groups_restart: all passed"
