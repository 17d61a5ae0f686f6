#!/usr/bin/env bash
# The PostgreSQL primary failover drill (not part of CI: about 2 minutes a
# run). It builds a real HA cluster on loopback with pg_auto_failover (a
# monitor on port 6100, a primary on 6101 and a synchronous standby on
# 6102), runs two orghooks nodes on the multi-host URL
#   postgres://postgres@127.0.0.1:6101,127.0.0.1:6102/orghooks?target_session_attrs=read-write
# publishes EVENTS events at RATE a second to both, and halfway through
# kills the primary's whole process tree with SIGKILL, as if its machine
# died. It checks that every event answered 202 reaches both receivers,
# that the nodes answer 503 with Retry-After meanwhile (never 500), and
# that they recover without a restart; it prints the time to recover.
# Results: bench-results/failover-drill-<run>.json. Each run builds a new
# cluster; everything is removed at the end.
#
#   scripts/failover-drill.sh            # one run
#   RUNS=3 scripts/failover-drill.sh     # three
#
# It installs Debian's postgresql-15-auto-failover when missing and runs
# PostgreSQL as the `postgres` user when started as root.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-1}
EVENTS=${EVENTS:-20000}
RATE=${RATE:-250}
PGBIN=/usr/lib/postgresql/15/bin
MONITOR_PORT=6100
PORTS=(6101 6102)

pgc() {
    "${AS_PG[@]}" env PATH="$PGBIN:$PATH" XDG_CONFIG_HOME="$WORK/config" \
        XDG_DATA_HOME="$WORK/data" XDG_RUNTIME_DIR="$WORK/run" "$@"
}

# Every process of a pg_autoctl service (its keeper, its PostgreSQL and
# that server's backends), by its data folder.
service_tree() {
    local top pids=() queue
    top=$(pgrep -f "pg_autoctl run --pgdata $1\$" || true)
    queue=($top)
    while [ ${#queue[@]} -gt 0 ]; do
        local p=${queue[0]}
        queue=("${queue[@]:1}")
        pids+=("$p")
        queue+=($(pgrep -P "$p" || true))
    done
    echo "${pids[@]}"
}

kill_service() {
    local pids
    pids=$(service_tree "$1")
    [ -n "$pids" ] || return 0
    # Frozen first, so that none restarts another while they die.
    kill -STOP $pids 2>/dev/null || true
    kill -KILL $pids 2>/dev/null || true
}

cleanup() {
    for d in "$WORK"/node* "$WORK/monitor"; do
        [ -d "$d" ] && kill_service "$d"
    done
    rm -rf "$WORK"
}

# Waits until the monitor shows `want` (a grep pattern) or fails.
wait_state() {
    local want=$1 i
    for i in $(seq 120); do
        if pgc pg_autoctl show state --pgdata "$WORK/monitor" 2>/dev/null | grep -Eq "$want"; then
            return 0
        fi
        sleep 0.5
    done
    pgc pg_autoctl show state --pgdata "$WORK/monitor" >&2 || true
    echo "the cluster did not reach: $want" >&2
    return 1
}

build_cluster() {
    rm -rf "$WORK"/monitor "$WORK"/node* "$WORK"/config "$WORK"/data "$WORK"/run
    mkdir -p "$WORK/run"
    [ "$(id -u)" = 0 ] && chown postgres "$WORK/run"
    chmod 700 "$WORK/run"
    pgc pg_autoctl create monitor --pgdata "$WORK/monitor" --pgport $MONITOR_PORT \
        --hostname 127.0.0.1 --auth trust --no-ssl >"$WORK/monitor.log" 2>&1
    setsid "${AS_PG[@]}" env PATH="$PGBIN:$PATH" XDG_CONFIG_HOME="$WORK/config" \
        XDG_DATA_HOME="$WORK/data" XDG_RUNTIME_DIR="$WORK/run" \
        pg_autoctl run --pgdata "$WORK/monitor" >>"$WORK/monitor.log" 2>&1 &
    disown
    local i
    for i in $(seq 60); do
        "$PGBIN/pg_isready" -q -h 127.0.0.1 -p $MONITOR_PORT && break
        sleep 0.5
    done
    # A dead primary noticed in about 3 s instead of 20, and the standby
    # promoted 3 s after that instead of 30 (the time the monitor gives an
    # old primary it cannot reach to demote itself). The defaults suit
    # machines on a network; this cluster is on loopback.
    "$PGBIN/psql" -q -h 127.0.0.1 -p $MONITOR_PORT -U postgres -d pg_auto_failover \
        -c "ALTER SYSTEM SET pgautofailover.health_check_period = 1000" \
        -c "ALTER SYSTEM SET pgautofailover.health_check_timeout = 1000" \
        -c "ALTER SYSTEM SET pgautofailover.health_check_max_retries = 1" \
        -c "ALTER SYSTEM SET pgautofailover.health_check_retry_delay = 500" \
        -c "ALTER SYSTEM SET pgautofailover.node_considered_unhealthy_timeout = 3000" \
        -c "ALTER SYSTEM SET pgautofailover.primary_demote_timeout = 3000" \
        -c "SELECT pg_reload_conf()" >/dev/null
    local monitor="postgres://autoctl_node@127.0.0.1:$MONITOR_PORT/pg_auto_failover?sslmode=disable"
    local n
    for n in 1 2; do
        pgc pg_autoctl create postgres --pgdata "$WORK/node$n" --pgport "${PORTS[$((n - 1))]}" \
            --hostname 127.0.0.1 --auth trust --no-ssl --monitor "$monitor" \
            --name "node$n" --dbname orghooks >"$WORK/node$n.log" 2>&1
        setsid "${AS_PG[@]}" env PATH="$PGBIN:$PATH" XDG_CONFIG_HOME="$WORK/config" \
            XDG_DATA_HOME="$WORK/data" XDG_RUNTIME_DIR="$WORK/run" \
            pg_autoctl run --pgdata "$WORK/node$n" >>"$WORK/node$n.log" 2>&1 &
        disown
        if [ $n = 1 ]; then
            wait_state "node1 .*\| +single \| +single"
        fi
    done
    wait_state "node2 .*\| +secondary \| +secondary"
    wait_state "node1 .*\| +primary \| +primary"
}

if [ "${1:-}" = "--kill" ]; then
    # Called by the drill halfway: the primary's machine dies.
    kill_service "$2/node1"
    exit 0
fi

if ! command -v pg_autoctl >/dev/null; then
    echo "installing postgresql-15-auto-failover" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15-auto-failover >&2
fi
cargo build --release -q -p orghooks-bench
BENCH=$PWD/target/release/orghooks-bench
mkdir -p bench-results

WORK=$(mktemp -d /tmp/orghooks-drill.XXXXXX)
chmod 755 "$WORK"
trap cleanup EXIT
# pg_auto_failover refuses to run as root.
if [ "$(id -u)" = 0 ]; then
    chown postgres "$WORK"
    AS_PG=(runuser -u postgres --)
else
    AS_PG=()
fi
URL="postgres://postgres@127.0.0.1:${PORTS[0]},127.0.0.1:${PORTS[1]}/orghooks?target_session_attrs=read-write&connect_timeout=2"
status=0
for run in $(seq "$RUNS"); do
    echo "== run $run: building the cluster in $WORK" >&2
    build_cluster
    pgc pg_autoctl show state --pgdata "$WORK/monitor" >&2
    started=$(date +%s)
    if ! "$BENCH" drill --database-url "$URL" --events "$EVENTS" --rate "$RATE" \
        --kill "$0 --kill $WORK" --out "bench-results/failover-drill-$run.json"; then
        status=1
    fi
    echo "== run $run took $(($(date +%s) - started)) s; the cluster after it:" >&2
    pgc pg_autoctl show state --pgdata "$WORK/monitor" >&2 || true
    for d in "$WORK"/node* "$WORK/monitor"; do kill_service "$d"; done
done
exit $status
