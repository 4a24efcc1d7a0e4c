#!/usr/bin/env bash
# Run a real single-node Apache Kafka broker (KRaft, broker+controller in one
# JVM) on 127.0.0.1 for tests and CI. Kafka's jars come from Maven Central via
# `mvn` (see pom.xml next to this script); nothing else is downloaded.
#
# Usage:
#   kafka.sh start [-port N]   start (fresh data dir), wait until ready, print "127.0.0.1:N" last on stdout
#   kafka.sh start -keep [-port N]
#                              start on the data dir of the previous run (its topics, offsets and
#                              groups), on its port unless -port or MOLGEN_KAFKA_PORT says otherwise;
#                              a dir that holds no formatted data is started fresh
#   kafka.sh start -secure [-port N]
#                              also serve SASL_SSL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) on port+2
#                              and SSL with client certificates required (mTLS) on port+3; a CA,
#                              a broker and a client certificate are made at start (openssl,
#                              keytool), SCRAM users when the storage is formatted; what a client
#                              needs is printed and written to $MOLGEN_KAFKA_DIR/secure/env
#   kafka.sh start -secure -authorizer [-port N]
#                              -secure with ACLs enforced: KRaft's StandardAuthorizer,
#                              allow.everyone.if.no.acl.found=false; super users User:admin (SCRAM and
#                              PLAIN on SASL_SSL; client properties in $MOLGEN_KAFKA_DIR/secure/admin.properties)
#                              and the broker itself (User:CN=localhost: the controller and inter-broker
#                              listeners use TLS with client certificates); PLAINTEXT clients are
#                              ANONYMOUS and may do nothing without ACLs
#   kafka.sh acls ARGS...      Kafka's ACL tool (kafka-acls.sh, org.apache.kafka.tools.AclCommand) from the
#                              jar cache: kafka.sh acls --bootstrap-server 127.0.0.1:9096 \
#                                --command-config "$MOLGEN_KAFKA_DIR/secure/admin.properties" --list
#   kafka.sh restart [-port N] stop, then start -keep: a broker restart that keeps its data
#   kafka.sh stop              SIGTERM, bounded wait, then SIGKILL; idempotent (resumes a paused broker first)
#   kafka.sh status            exit 0 and print "running ..." if up, else exit 1 and print "not running"
#   kafka.sh pause             SIGSTOP the broker's JVM: a broker that hangs (connections stay open)
#   kafka.sh resume            SIGCONT the broker's JVM after pause
#   kafka.sh kill              SIGKILL the broker's JVM (a crash: no clean shutdown)
#
# A 3-broker cluster (for failover tests): three JVMs, each broker and KRaft
# controller in one (3 voters), each with its own data dir under
# $MOLGEN_KAFKA_DIR/broker-N and its own ports, all derived from one base
# port P: broker N listens on P+2(N-1), its controller on P+2(N-1)+1
# (P..P+5). Replication factor 3 and min.insync.replicas 2 everywhere.
#   kafka.sh start -cluster [-port P] [-keep]
#                              start the three (fresh data unless -keep), wait until all three are
#                              registered and serve, print "127.0.0.1:P,127.0.0.1:P+2,127.0.0.1:P+4" last
#   kafka.sh stop|kill|pause|resume|restart|start -broker N
#                              act on broker N (1-3) alone: stop (SIGTERM, bounded wait, SIGKILL), kill
#                              (SIGKILL), pause (SIGSTOP), resume (SIGCONT), restart (stop, then start
#                              again on its data and wait until it is registered), start (a stopped or
#                              killed broker, on its data); start and restart print the bootstrap list last
#   kafka.sh status [-broker N] one line per broker; exit 0 only if every broker (or broker N) runs
#   kafka.sh stop | restart | pause | resume | kill
#                              without -broker: every broker of the cluster (restart keeps the data)
#
# Environment (all optional):
#   MOLGEN_KAFKA_DIR            data/config/log dir, wiped on every start
#                               but start -keep and restart                 (default /tmp/molgen-kafka)
#   MOLGEN_KAFKA_CACHE          jar cache                                   (default $HOME/.cache/molgen/kafka-<version>)
#   MOLGEN_KAFKA_VERSION        Kafka version to fetch                      (default: <kafka.version> in pom.xml)
#   MOLGEN_KAFKA_PORT           PLAINTEXT port if -port is not given        (default 9092)
#   MOLGEN_KAFKA_CONTROLLER_PORT controller listener port                   (default PLAINTEXT port + 1)
#   MOLGEN_KAFKA_SASL_SSL_PORT  SASL_SSL listener port of -secure           (default PLAINTEXT port + 2)
#   MOLGEN_KAFKA_SSL_PORT       SSL (mTLS) listener port of -secure         (default PLAINTEXT port + 3)
#   MOLGEN_KAFKA_START_TIMEOUT  seconds to wait for readiness               (default 90)
#   MOLGEN_KAFKA_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL (default 30)
#   MOLGEN_KAFKA_HEAP_OPTS      broker heap                                 (default "-Xms256m -Xmx512m";
#                                                                             each broker of -cluster "-Xms128m -Xmx384m")
#   MOLGEN_KAFKA_JVM_OPTS       extra broker JVM options                    (default empty)
#   MOLGEN_KAFKA_LOG_LEVEL      broker log4j2 root level                    (default WARN)
#   JAVA_HOME                   JDK to use (17+); otherwise `java` on PATH
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$SCRIPT_DIR/pom.xml"
PROG="kafka.sh"

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

usage() {
	cat >&2 <<EOF
usage: $PROG start [-port N] [-keep] [-secure [-authorizer]] | restart [-port N] | stop | status | pause | resume | kill | acls ARGS...
       $PROG start -cluster [-port P] [-keep] | {stop|kill|pause|resume|restart|start|status} [-broker N]
  start   fetch Kafka (cached), format a fresh data dir, start the broker in the
          background and wait until it serves requests; prints the bootstrap
          address (127.0.0.1:PORT) as the last line on stdout
          -keep: keep the data dir of the previous run (topics, offsets, groups)
          and its port; a dir without formatted data is started fresh
          -secure: also SASL_SSL on PORT+2 (PLAIN, SCRAM-SHA-256/512) and SSL with
          client certificates required on PORT+3; certificates and users are made
          at start; client settings go to \$MOLGEN_KAFKA_DIR/secure/env
          -authorizer (with -secure, which it implies): ACLs enforced (StandardAuthorizer,
          no ACL means denied); super users User:admin (SASL_SSL, password in
          secure/admin-password, client properties in secure/admin.properties) and
          the broker (User:CN=localhost); PLAINTEXT clients (ANONYMOUS) get nothing
  restart stop, then start -keep (a broker restart that keeps its data)
  stop    stop the broker (SIGTERM, then SIGKILL after \$MOLGEN_KAFKA_STOP_TIMEOUT s)
  status  exit 0 if the broker is running (or paused), 1 if not
  pause   SIGSTOP the broker's JVM (it hangs: connections stay open, nothing is answered)
  resume  SIGCONT the broker's JVM after pause
  kill    SIGKILL the broker's JVM (a crash)
  acls    run Kafka's ACL tool (kafka-acls.sh) with ARGS, from the jar cache
cluster mode (3 brokers, each broker+controller, 3 KRaft voters, RF 3, min ISR 2):
  start -cluster [-port P] [-keep]
          start brokers 1-3 in \$MOLGEN_KAFKA_DIR/broker-N, broker N on port
          P+2(N-1) and its controller on P+2(N-1)+1; wait until all three serve;
          print the bootstrap list 127.0.0.1:P,127.0.0.1:P+2,127.0.0.1:P+4 last
  stop|kill|pause|resume|restart -broker N
          act on broker N alone (restart: SIGTERM, wait, start again on its data)
  start -broker N
          start broker N again on its data (after stop or kill) and wait for it
  status [-broker N]
          a line per broker; exit 0 only if all (or N) run
  stop, restart, pause, resume, kill without -broker act on every broker
EOF
	exit 2
}

# ---------------------------------------------------------------- settings --

pom_version() {
	[[ -f "$POM" ]] || die "missing $POM"
	local v
	v="$(sed -n 's:.*<kafka\.version>[[:space:]]*\([^<[:space:]]*\)[[:space:]]*</kafka\.version>.*:\1:p' "$POM" | head -n1)"
	[[ -n "$v" ]] || die "cannot read <kafka.version> from $POM"
	printf '%s' "$v"
}

KAFKA_VERSION="${MOLGEN_KAFKA_VERSION:-$(pom_version)}"
[[ "$KAFKA_VERSION" =~ ^[0-9A-Za-z._-]+$ ]] || die "bad Kafka version '$KAFKA_VERSION'"
CACHE="${MOLGEN_KAFKA_CACHE:-${HOME:-/tmp}/.cache/molgen/kafka-$KAFKA_VERSION}"
DIR="${MOLGEN_KAFKA_DIR:-/tmp/molgen-kafka}"
START_TIMEOUT="${MOLGEN_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${MOLGEN_KAFKA_STOP_TIMEOUT:-30}"
HEAP_OPTS="${MOLGEN_KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
# Three brokers share the machine: each gets a smaller heap.
CLUSTER_HEAP_OPTS="${MOLGEN_KAFKA_HEAP_OPTS:--Xms128m -Xmx384m}"
CLUSTER_SIZE=3
EXTRA_JVM_OPTS="${MOLGEN_KAFKA_JVM_OPTS:-}"
LOG_LEVEL="${MOLGEN_KAFKA_LOG_LEVEL:-WARN}"

[[ "$START_TIMEOUT" =~ ^[0-9]+$ ]] || die "MOLGEN_KAFKA_START_TIMEOUT must be a number of seconds"
[[ "$STOP_TIMEOUT" =~ ^[0-9]+$ ]] || die "MOLGEN_KAFKA_STOP_TIMEOUT must be a number of seconds"

# Absolute paths, so the script works from any cwd and the broker's command
# line (used to recognise our process) is stable.
CACHE="$(realpath -m -- "$CACHE")"
DIR="$(realpath -m -- "$DIR")"
[[ "$DIR" != "/" && "$DIR" != "$(realpath -m -- "${HOME:-/nonexistent}")" ]] || die "refusing to use '$DIR' as MOLGEN_KAFKA_DIR"

LIBS="$CACHE/libs"
CACHE_MARKER="$CACHE/.complete"
MARKER="$DIR/.molgen-kafka"   # proves $DIR is ours, so `start` may wipe it
PIDFILE="$DIR/kafka.pid"
PORTFILE="$DIR/port"
CONF="$DIR/config"
LOGS="$DIR/logs"
SERVER_PROPS="$CONF/server.properties"
LOG4J_CONF="$CONF/log4j2.properties"
CLUSTER_FILE="$DIR/cluster" # marks a cluster's dir; holds its base port

# select_broker points the per-broker paths (pid file, port file, config,
# logs, data) at broker $1 of the cluster in $DIR; select_single back at
# the single broker's. running_pid, cmd_stop, log_tail and the rest act on
# whichever is selected.
select_broker() {
	BDIR="$DIR/broker-$1"
	PIDFILE="$BDIR/kafka.pid"
	PORTFILE="$BDIR/port"
	CONF="$BDIR/config"
	LOGS="$BDIR/logs"
	SERVER_PROPS="$CONF/server.properties"
	LOG4J_CONF="$CONF/log4j2.properties"
	DATA="$BDIR/data"
}
select_single() {
	BDIR="$DIR"
	PIDFILE="$DIR/kafka.pid"
	PORTFILE="$DIR/port"
	CONF="$DIR/config"
	LOGS="$DIR/logs"
	SERVER_PROPS="$CONF/server.properties"
	LOG4J_CONF="$CONF/log4j2.properties"
	DATA="$DIR/data"
}
select_single

if [[ -n "${JAVA_HOME:-}" ]]; then
	JAVA="$JAVA_HOME/bin/java"
	JAVAC="$JAVA_HOME/bin/javac"
else
	JAVA="$(command -v java || true)"
	JAVAC="$(command -v javac || true)"
fi

# ----------------------------------------------------------------- helpers --

# Cleanup on any exit (including Ctrl-C / SIGTERM): drop a half-written cache
# temp dir, and stop a broker that `start` launched but never saw ready.
CLEANUP_TMP=""
PENDING_PID=""
PENDING_CLUSTER=""
on_exit() {
	local rc=$?
	[[ -z "$CLEANUP_TMP" ]] || rm -rf -- "$CLEANUP_TMP"
	local pid i
	if [[ -n "$PENDING_CLUSTER" ]]; then
		printf '%s: start -cluster did not finish; stopping its brokers\n' "$PROG" >&2
		PENDING_CLUSTER=""
		stop_cluster >&2 || true
	fi
	if [[ -n "$PENDING_PID" ]] && pid="$(running_pid)"; then
		printf '%s: start did not finish; stopping broker pid %s\n' "$PROG" "$pid" >&2
		kill -CONT "$pid" 2>/dev/null || true
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			running_pid >/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		rm -f -- "$PIDFILE"
	fi
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

need_java() {
	[[ -n "$JAVA" && -x "$JAVA" ]] || die "java not found (install a JDK 17+ or set JAVA_HOME)"
	local spec major
	spec="$("$JAVA" -XshowSettings:properties -version 2>&1 | sed -n 's/^[[:space:]]*java\.specification\.version = //p' | head -n1)"
	major="${spec%%.*}"
	[[ "$major" =~ ^[0-9]+$ ]] || die "cannot determine the version of $JAVA"
	((major >= 17)) || die "Kafka $KAFKA_VERSION needs Java 17+, but $JAVA is Java $spec (set JAVA_HOME)"
}

# Is something accepting TCP connections on 127.0.0.1:$1?
port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints the broker pid if the pid file names a live broker of this $DIR.
running_pid() {
	[[ -f "$PIDFILE" ]] || return 1
	local pid
	pid="$(tr -dc '0-9' <"$PIDFILE" 2>/dev/null || true)"
	[[ -n "$pid" ]] || return 1
	[[ -r "/proc/$pid/cmdline" ]] || return 1
	# Guard against a recycled pid: the process must be our broker.
	local cmd
	cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)"
	[[ "$cmd" == *kafka.Kafka*"$SERVER_PROPS"* ]] || return 1
	# A zombie is not running.
	local state
	state="$(awk '/^State:/{print $2}' "/proc/$pid/status" 2>/dev/null || true)"
	[[ "$state" != "Z" ]] || return 1
	printf '%s' "$pid"
}

log_tail() {
	local f
	for f in "$LOGS/format.log" "$LOGS/stdout.log" "$LOGS/server.log" "$LOGS/ready.log"; do
		[[ -s "$f" ]] || continue
		printf -- '----- last lines of %s -----\n' "$f" >&2
		tail -n 40 "$f" >&2
	done
}

# ------------------------------------------------------------ jar download --

cache_complete() {
	[[ -f "$CACHE_MARKER" && "$(cat "$CACHE_MARKER")" == "kafka=$KAFKA_VERSION" ]] &&
		compgen -G "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null
}

ensure_jars() {
	if cache_complete; then
		return 0
	fi
	command -v mvn >/dev/null || die "mvn not found: Maven is needed once to fetch Kafka $KAFKA_VERSION into $CACHE"
	mkdir -p -- "$(dirname -- "$CACHE")"
	# Leftovers of downloads that were SIGKILLed (an hour old: not in progress).
	find "$(dirname -- "$CACHE")" -maxdepth 1 \( -name "$(basename -- "$CACHE").tmp.*" -o -name "$(basename -- "$CACHE").old.*" \) -mmin +60 -exec rm -rf -- {} + 2>/dev/null || true
	# Download into a private temp dir next to the cache, then rename it into
	# place: an interrupted download never looks like a complete cache.
	local tmp
	tmp="$(mktemp -d "$CACHE.tmp.XXXXXX")"
	CLEANUP_TMP="$tmp"
	log "fetching Kafka $KAFKA_VERSION jars with Maven into $CACHE"
	if ! mvn -B -q -f "$POM" -Dkafka.version="$KAFKA_VERSION" \
		dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/libs" >"$tmp/mvn.log" 2>&1; then
		cat "$tmp/mvn.log" >&2 || true
		rm -rf -- "$tmp"
		die "Maven could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
	fi
	[[ -f "$tmp/libs/kafka_2.13-$KAFKA_VERSION.jar" ]] || {
		rm -rf -- "$tmp"
		die "Maven finished but kafka_2.13-$KAFKA_VERSION.jar is missing"
	}
	printf 'kafka=%s' "$KAFKA_VERSION" >"$tmp/.complete"
	rm -f -- "$tmp/mvn.log"
	chmod 755 "$tmp"
	# mv -T fails instead of nesting if $CACHE exists: either another start
	# won the race (complete: use it) or it is an incomplete leftover (replace).
	if ! mv -T -- "$tmp" "$CACHE" 2>/dev/null; then
		if cache_complete; then
			rm -rf -- "$tmp"
		else
			log "replacing incomplete cache $CACHE"
			local old
			old="$(mktemp -u "$CACHE.old.XXXXXX")"
			mv -T -- "$CACHE" "$old" 2>/dev/null || true
			if ! mv -T -- "$tmp" "$CACHE" 2>/dev/null; then
				rm -rf -- "$tmp"
				cache_complete || die "could not install the jar cache at $CACHE"
			fi
			rm -rf -- "$old"
		fi
	fi
	CLEANUP_TMP=""
}

# ------------------------------------------------------- readiness checker --
# A tiny Kafka Admin client: succeeds once the broker answers DescribeCluster
# with a registered (unfenced) broker, answers ListTopics, and its group
# coordinator answers OffsetFetch (which also creates __consumer_offsets). Runs
# one JVM that retries until the deadline, and gives up early if the broker
# process dies.

READY_CLASS="MolgenKafkaReady"
read -r -d '' READY_SRC <<'JAVA' || true
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Collection;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsOptions;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.common.Node;

public class MolgenKafkaReady {
    // True while the process exists and is not a zombie (the broker is our
    // child while `start` runs, so a crashed broker lingers as a zombie).
    static boolean alive(long pid) {
        try {
            String stat = new String(Files.readAllBytes(Paths.get("/proc/" + pid + "/stat")));
            String rest = stat.substring(stat.lastIndexOf(')') + 1).trim();
            return !rest.startsWith("Z") && !rest.startsWith("X");
        } catch (Exception e) {
            return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
        }
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        long deadline = System.nanoTime() + Long.parseLong(args[1]) * 1_000_000_000L;
        // The broker's pid, or the pids of a cluster's brokers (comma-separated):
        // every one of them must stay alive.
        String[] pidArgs = args[2].split(",");
        long[] pids = new long[pidArgs.length];
        for (int i = 0; i < pids.length; i++) {
            pids[i] = Long.parseLong(pidArgs[i]);
        }
        // A cluster (start -cluster): at least this many brokers registered and
        // unfenced; a broker of a cluster started alone: that broker among them.
        int minBrokers = Integer.getInteger("molgen.kafka.min.brokers", 1);
        int nodeId = Integer.getInteger("molgen.kafka.node.id", -1);
        Properties p = new Properties();
        // An optional client properties file: how to reach a broker that
        // authorizes (start -authorizer: as the admin, over SASL_SSL).
        if (args.length > 3) {
            try (java.io.Reader r = Files.newBufferedReader(Paths.get(args[3]))) {
                p.load(r);
            }
        }
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "molgen-kafka-ready");
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "3000");
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, "100");
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "300");
        p.put(AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, "100");
        p.put("retry.backoff.max.ms", "300");
        p.put("socket.connection.setup.timeout.ms", "1000");
        p.put("socket.connection.setup.timeout.max.ms", "1000");
        String last = "no answer yet";
        try (Admin admin = Admin.create(p)) {
            while (true) {
                for (long pid : pids) {
                    if (!alive(pid)) {
                        System.err.println("broker process " + pid + " exited");
                        System.exit(3);
                    }
                }
                try {
                    Collection<Node> nodes = admin.describeCluster(new DescribeClusterOptions().timeoutMs(budget(deadline))).nodes().get();
                    if (nodes.isEmpty()) {
                        last = "no live brokers in the cluster metadata yet";
                    } else if (nodes.size() < minBrokers) {
                        last = nodes.size() + " of " + minBrokers + " brokers registered";
                    } else if (nodeId >= 0 && nodes.stream().noneMatch(n -> n.id() == nodeId)) {
                        last = "broker " + nodeId + " not registered (or still fenced)";
                    } else {
                        admin.listTopics(new ListTopicsOptions().listInternal(true).timeoutMs(budget(deadline))).names().get();
                        // Warm up the group coordinator: the first FindCoordinator
                        // creates __consumer_offsets; once an OffsetFetch succeeds,
                        // consumer groups work at once (kafka-go would otherwise
                        // back off JoinGroupBackoff=5s on the first group).
                        admin.listConsumerGroupOffsets("molgen-kafka-ready",
                                new ListConsumerGroupOffsetsOptions().timeoutMs(budget(deadline)))
                            .partitionsToOffsetAndMetadata().get();
                        System.exit(0);
                    }
                } catch (Exception e) {
                    Throwable c = e.getCause() != null ? e.getCause() : e;
                    last = c.getClass().getSimpleName() + ": " + c.getMessage();
                }
                if (System.nanoTime() >= deadline) {
                    System.err.println("broker not ready: " + last);
                    System.exit(1);
                }
                Thread.sleep(200);
            }
        }
    }

    // Per-request timeout: at most 3 s, and never past the overall deadline.
    static int budget(long deadline) {
        long ms = (deadline - System.nanoTime()) / 1_000_000L;
        return (int) Math.max(1, Math.min(3000, ms));
    }
}
JAVA

# JVM options for the short-lived helper JVMs (storage format, readiness check):
# small heap, no C2 compiler, serial GC -- they start faster on 2 cores.
TOOL_JVM_OPTS=(-Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1)

# Sets READY_CMD to the command prefix that runs the checker, with the
# system properties in READY_PROPS (a cluster's: how many brokers, which).
READY_PROPS=()
ensure_ready_checker() {
	READY_JVM_OPTS=("${TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$LOG4J_CONF" -Dkafka.logs.dir="$LOGS" -Dmolgen.kafka.logfile=ready-client.log)
	local hash dir tmp
	hash="$(printf '%s' "$READY_SRC" | sha256sum | cut -c1-16)"
	dir="$CACHE/ready-$hash"
	if [[ -x "$JAVAC" ]]; then
		if [[ ! -f "$dir/$READY_CLASS.class" ]]; then
			tmp="$(mktemp -d "$CACHE/ready.tmp.XXXXXX")"
			CLEANUP_TMP="$tmp"
			printf '%s\n' "$READY_SRC" >"$tmp/$READY_CLASS.java"
			if ! "$JAVAC" -nowarn --release 17 -cp "$LIBS/*" -d "$tmp" "$tmp/$READY_CLASS.java" >"$tmp/javac.log" 2>&1; then
				cat "$tmp/javac.log" >&2 || true
				rm -rf -- "$tmp"
				die "could not compile the readiness checker"
			fi
			chmod 755 "$tmp"
			mv -T -- "$tmp" "$dir" 2>/dev/null || rm -rf -- "$tmp"
			CLEANUP_TMP=""
			[[ -f "$dir/$READY_CLASS.class" ]] || die "could not install the readiness checker in $dir"
		fi
		READY_CMD=("$JAVA" "${READY_JVM_OPTS[@]}" "${READY_PROPS[@]}" -cp "$dir:$LIBS/*" "$READY_CLASS")
	else
		# No javac: use the JDK's single-file source launcher (slower, same result).
		printf '%s\n' "$READY_SRC" >"$CONF/$READY_CLASS.java"
		READY_CMD=("$JAVA" "${READY_JVM_OPTS[@]}" "${READY_PROPS[@]}" -cp "$LIBS/*" "$CONF/$READY_CLASS.java")
	fi
}

# ------------------------------------------------------------------- start --

random_cluster_id() {
	# A Kafka Uuid: 16 random bytes, URL-safe base64 without padding. Like
	# Kafka's Uuid.randomUuid(), avoid ids starting with '-' (CLI parsing).
	local id
	while :; do
		id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
		[[ "$id" == -* || "${#id}" -ne 22 ]] || break
	done
	printf '%s' "$id"
}

write_config() {
	local port="$1" cport="$2" sport="${3:-}" mport="${4:-}" authz="${5:-0}"
	local listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport"
	local advertised="PLAINTEXT://127.0.0.1:$port"
	local inter="PLAINTEXT" ctrl="PLAINTEXT"
	if ((authz)); then
		# The broker's own connections (to its controller, and to itself
		# between brokers) authenticate with its certificate, so that it is
		# a super user while ANONYMOUS on PLAINTEXT is nobody.
		inter="SSL"
		ctrl="SSL"
	fi
	local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:$ctrl"
	if [[ -n "$sport" ]]; then
		listeners+=",SASL_SSL://127.0.0.1:$sport,SSL://127.0.0.1:$mport"
		advertised+=",SASL_SSL://127.0.0.1:$sport,SSL://127.0.0.1:$mport"
		protocols+=",SASL_SSL:SASL_SSL,SSL:SSL"
	fi
	cat >"$SERVER_PROPS" <<EOF
# Written by scripts/kafka/kafka.sh -- single-node KRaft broker for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=$protocols
inter.broker.listener.name=$inter
controller.listener.names=CONTROLLER
log.dirs=$DIR/data

# One node: every replication factor / min ISR is 1.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Tests: topics may be auto-created on first use (Kafka's default), deletes work,
# consumer groups rebalance at once and may use session timeouts down to 1 s.
auto.create.topics.enable=true
delete.topic.enable=true
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000

# Small footprint for a 2-core CI machine.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
log.cleaner.threads=1
EOF
	if [[ -n "$sport" ]]; then
		local pw spw plain_admin=""
		pw="$(cat "$SECURE/password")"
		spw="$(cat "$SECURE/store-password")"
		if ((authz)); then
			plain_admin=" user_$ADMIN_USER=\"$(cat "$SECURE/admin-password")\""
		fi
		cat >>"$SERVER_PROPS" <<EOF

# -secure: TLS on both secure listeners with the broker certificate made at
# start; SASL_SSL takes PLAIN (users in the JAAS line below) and SCRAM (users
# stored in the metadata log when the storage was formatted); SSL requires a
# client certificate signed by the test CA (mTLS). Without -authorizer,
# every authenticated user may do anything.
ssl.keystore.type=PKCS12
ssl.keystore.location=$SECURE/broker.p12
ssl.keystore.password=$spw
ssl.truststore.type=PKCS12
ssl.truststore.location=$SECURE/truststore.p12
ssl.truststore.password=$spw
listener.name.ssl.ssl.client.auth=required
listener.name.sasl_ssl.ssl.client.auth=none
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SECURE_USER="$pw"$plain_admin;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
EOF
	fi
	if ((authz)); then
		cat >>"$SERVER_PROPS" <<EOF

# -authorizer: ACLs are enforced, and a resource without ACLs is denied to
# all but the super users: $ADMIN_USER (SASL_SSL, for setup: users, ACLs,
# topics) and the broker itself, whose controller and inter-broker
# connections present its certificate (User:$BROKER_PRINCIPAL). ANONYMOUS
# (any PLAINTEXT client) is not a super user.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:$ADMIN_USER;User:$BROKER_PRINCIPAL
listener.name.controller.ssl.client.auth=required
EOF
	fi
	write_log4j
}

# write_log4j writes the selected broker's log4j2 configuration.
write_log4j() {
	cat >"$LOG4J_CONF" <<EOF
# Written by scripts/kafka/kafka.sh: everything at $LOG_LEVEL+ into one file.
status = warn
name = molgen-kafka
# Kafka logs from its own shutdown hook; log4j2's hook would close the
# appenders first and lose the end of the shutdown log.
shutdownHook = disable
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = \${sys:kafka.logs.dir}/\${sys:molgen.kafka.logfile:-server.log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = $LOG_LEVEL
rootLogger.appenderRef.file.ref = FILE
EOF
}

# cluster_port N BASE prints broker N's PLAINTEXT port in the cluster on
# BASE (its controller listens on the next port).
cluster_port() { printf '%s' $(($2 + 2 * ($1 - 1))); }

# cluster_bootstrap BASE prints the cluster's bootstrap list.
cluster_bootstrap() {
	local n out=""
	for ((n = 1; n <= CLUSTER_SIZE; n++)); do
		out+="${out:+,}127.0.0.1:$(cluster_port "$n" "$1")"
	done
	printf '%s' "$out"
}

# write_cluster_config N BASE writes broker N's configuration (the
# selected broker's files) in the cluster on base port BASE.
write_cluster_config() {
	local n="$1" base="$2" i voters=""
	for ((i = 1; i <= CLUSTER_SIZE; i++)); do
		voters+="${voters:+,}$i@127.0.0.1:$(($(cluster_port "$i" "$base") + 1))"
	done
	local port cport
	port="$(cluster_port "$n" "$base")"
	cport=$((port + 1))
	cat >"$SERVER_PROPS" <<EOF
# Written by scripts/kafka/kafka.sh -- broker $n of a $CLUSTER_SIZE-broker KRaft cluster for
# failover tests: every broker is also a controller (the $CLUSTER_SIZE are the voters).
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$DATA

# Every partition on all three brokers; a write is acknowledged by two at
# least, so one broker may be down (or restarting) without losing a write
# or stopping one.
num.partitions=1
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
# One partition of __consumer_offsets (and of the transaction log): every
# consumer group has the same coordinator, so a test that stops it stops
# it for every group at once; and startup stays quick.
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1

# Tests: as the single broker (auto-creation on, deletes work, groups
# rebalance at once, session timeouts down to 1 s).
auto.create.topics.enable=true
delete.topic.enable=true
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000

# Small footprint: three brokers share a 2-core machine.
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
num.recovery.threads.per.data.dir=1
background.threads=2
log.cleaner.threads=1
EOF
	write_log4j
}

# Users of -secure: SECURE_USER has PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512
# credentials; SECURE_USER_512 only SCRAM-SHA-512 (a client that picks
# SCRAM-SHA-256 for it uses the wrong mechanism). Both share the password.
SECURE="$DIR/secure"
SECURE_USER="molgen"
SECURE_USER_512="molgen512"
# -authorizer: the super user for setup, and the broker's own principal
# (the subject of its certificate).
ADMIN_USER="admin"
BROKER_PRINCIPAL="CN=localhost"

# make_secure writes a CA, a broker certificate (localhost, 127.0.0.1) in a
# PKCS12 keystore, the CA in a PKCS12 truststore, a client certificate and
# key in PEM for mTLS, and a random password. Reused by start -keep.
make_secure() {
	command -v openssl >/dev/null || die "-secure needs openssl"
	local keytool="keytool"
	[[ -n "${JAVA_HOME:-}" ]] && keytool="$JAVA_HOME/bin/keytool"
	command -v "$keytool" >/dev/null || die "-secure needs the JDK's keytool"
	if [[ -f "$SECURE/env" && -f "$SECURE/broker.p12" ]]; then
		return 0
	fi
	rm -rf -- "$SECURE"
	mkdir -p -- "$SECURE"
	chmod 700 "$SECURE"
	local s="$SECURE" days=30
	head -c 18 /dev/urandom | base64 | tr -d '+/=\n' >"$s/password"
	head -c 18 /dev/urandom | base64 | tr -d '+/=\n' >"$s/store-password"
	local spw
	spw="$(cat "$s/store-password")"
	{
		openssl req -x509 -newkey rsa:2048 -nodes -days "$days" -subj "/CN=molgen test CA" \
			-keyout "$s/ca-key.pem" -out "$s/ca.pem"
		openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$s/broker-key.pem" -out "$s/broker.csr"
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$s/broker.ext"
		openssl x509 -req -in "$s/broker.csr" -CA "$s/ca.pem" -CAkey "$s/ca-key.pem" -CAcreateserial \
			-days "$days" -extfile "$s/broker.ext" -out "$s/broker.pem"
		openssl req -newkey rsa:2048 -nodes -subj "/CN=molgen-client" -keyout "$s/client-key.pem" -out "$s/client.csr"
		printf 'extendedKeyUsage=clientAuth\n' >"$s/client.ext"
		openssl x509 -req -in "$s/client.csr" -CA "$s/ca.pem" -CAkey "$s/ca-key.pem" -CAcreateserial \
			-days "$days" -extfile "$s/client.ext" -out "$s/client.pem"
		openssl pkcs12 -export -in "$s/broker.pem" -inkey "$s/broker-key.pem" -certfile "$s/ca.pem" \
			-name broker -out "$s/broker.p12" -passout "pass:$spw"
		"$keytool" -importcert -noprompt -alias ca -file "$s/ca.pem" -keystore "$s/truststore.p12" \
			-storetype PKCS12 -storepass "$spw"
	} >>"$LOGS/secure.log" 2>&1 || {
		tail -n 20 "$LOGS/secure.log" >&2 || true
		die "making the test certificates failed (see $LOGS/secure.log)"
	}
	rm -f -- "$s"/*.csr "$s"/*.ext "$s"/*.srl
	chmod 600 "$s"/*
}

# make_admin writes the admin's password and the client properties that
# reach the broker as the admin over SASL_SSL (kafka-acls.sh
# --command-config, and the readiness check of -authorizer). The password
# of a kept broker is kept: its SCRAM credentials are in the metadata log.
make_admin() {
	if [[ ! -f "$SECURE/admin-password" ]]; then
		head -c 18 /dev/urandom | base64 | tr -d '+/=\n' >"$SECURE/admin-password"
	fi
	cat >"$SECURE/admin.properties" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$ADMIN_USER" password="$(cat "$SECURE/admin-password")";
ssl.truststore.type=PEM
ssl.truststore.location=$SECURE/ca.pem
EOF
	chmod 600 "$SECURE/admin-password" "$SECURE/admin.properties"
}

# write_secure_env writes what a client needs to $SECURE/env (KEY=VALUE).
write_secure_env() {
	local port="$1" sport="$2" mport="$3" authz="${4:-0}"
	cat >"$SECURE/env" <<EOF
PLAINTEXT=127.0.0.1:$port
SASL_SSL=127.0.0.1:$sport
MTLS=127.0.0.1:$mport
CA_FILE=$SECURE/ca.pem
CLIENT_CERT_FILE=$SECURE/client.pem
CLIENT_KEY_FILE=$SECURE/client-key.pem
USERNAME=$SECURE_USER
SCRAM_SHA_512_ONLY_USERNAME=$SECURE_USER_512
PASSWORD_FILE=$SECURE/password
MECHANISMS=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
EOF
	if ((authz)); then
		cat >>"$SECURE/env" <<EOF
AUTHORIZER=org.apache.kafka.metadata.authorizer.StandardAuthorizer
SUPER_USERS=User:$ADMIN_USER;User:$BROKER_PRINCIPAL
ADMIN_USERNAME=$ADMIN_USER
ADMIN_PASSWORD_FILE=$SECURE/admin-password
ADMIN_CONFIG=$SECURE/admin.properties
EOF
		: >"$SECURE/authorizer"
	else
		rm -f -- "$SECURE/authorizer"
	fi
	chmod 600 "$SECURE/env"
}

cmd_start() {
	local port="" keep=0 secure=0 authz=0 cluster=0 broker=""
	while (($#)); do
		case "$1" in
		-cluster | --cluster)
			cluster=1
			shift
			;;
		-broker | --broker)
			(($# >= 2)) || die "$1 needs a value"
			broker="$2"
			shift 2
			;;
		-broker=* | --broker=*)
			broker="${1#*=}"
			shift
			;;
		-port | --port)
			(($# >= 2)) || die "$1 needs a value"
			port="$2"
			shift 2
			;;
		-port=* | --port=*)
			port="${1#*=}"
			shift
			;;
		-keep | --keep)
			keep=1
			shift
			;;
		-secure | --secure)
			secure=1
			shift
			;;
		-authorizer | --authorizer)
			secure=1
			authz=1
			shift
			;;
		-h | --help) usage ;;
		*) die "unknown start option '$1' (usage: $PROG start [-port N] [-keep] [-secure [-authorizer]] | start -cluster [-port P] [-keep] | start -broker N)" ;;
		esac
	done
	# A cluster: all of it, or one broker of it. A kept cluster stays one.
	if [[ -n "$broker" ]]; then
		((!secure && !cluster)) && [[ -z "$port" ]] || die "start -broker N takes no other option (the broker keeps its data and ports)"
		cmd_start_broker "$broker"
		return
	fi
	if ((keep)) && is_cluster && [[ -f "$MARKER" ]]; then cluster=1; fi
	if ((cluster)); then
		((!secure)) || die "-cluster does not take -secure or -authorizer"
		cmd_start_cluster "$port" "$keep"
		return
	fi
	# A single broker may not take over the dir of a running cluster.
	if is_cluster && cluster_running; then
		die "a cluster is running from $DIR; run '$PROG stop' first"
	fi
	# Data worth keeping: a directory of ours whose storage was formatted.
	local kept=0
	if ((keep)); then
		if [[ -f "$MARKER" && -f "$DIR/data/meta.properties" ]]; then
			kept=1
		else
			log "no formatted data in $DIR to keep: starting fresh"
		fi
	fi
	if [[ -z "$port" ]]; then
		port="${MOLGEN_KAFKA_PORT:-}"
		# A kept broker comes back on its address unless told otherwise.
		if [[ -z "$port" ]] && ((kept)) && [[ -f "$PORTFILE" ]]; then
			port="$(tr -dc '0-9' <"$PORTFILE" 2>/dev/null || true)"
		fi
		port="${port:-9092}"
	fi
	if ! [[ "$port" =~ ^[1-9][0-9]{0,4}$ ]] || ((port > 65535)); then die "bad port '$port'"; fi
	local cport="${MOLGEN_KAFKA_CONTROLLER_PORT:-$((port + 1))}"
	if ! [[ "$cport" =~ ^[1-9][0-9]{0,4}$ ]] || ((cport > 65535 || cport == port)); then die "bad controller port '$cport'"; fi
	# A kept broker that was secure stays secure.
	if ((kept)) && [[ -f "$SECURE/env" ]]; then secure=1; fi
	if ((kept)) && [[ -f "$SECURE/authorizer" ]]; then authz=1; fi
	local sport="" mport=""
	if ((secure)); then
		sport="${MOLGEN_KAFKA_SASL_SSL_PORT:-$((port + 2))}"
		mport="${MOLGEN_KAFKA_SSL_PORT:-$((port + 3))}"
		local p
		for p in "$sport" "$mport"; do
			if ! [[ "$p" =~ ^[1-9][0-9]{0,4}$ ]] || ((p > 65535 || p == port || p == cport)); then die "bad secure listener port '$p'"; fi
		done
		((sport != mport)) || die "the SASL_SSL and SSL ports are both $sport"
	fi

	local pid
	if pid="$(running_pid)"; then
		local have
		have="$(cat "$PORTFILE" 2>/dev/null || true)"
		if [[ "$have" == "$port" ]]; then
			log "already running (pid $pid) on 127.0.0.1:$port"
			printf '127.0.0.1:%s\n' "$port"
			return 0
		fi
		die "a broker is already running from $DIR (pid $pid) on port ${have:-?}; run '$PROG stop' first"
	fi

	need_java

	# Fresh directory every start, but never wipe a directory we did not create.
	if [[ -d "$DIR" && -n "$(ls -A -- "$DIR")" && ! -f "$MARKER" ]]; then
		die "$DIR exists, is not empty and was not created by $PROG; set MOLGEN_KAFKA_DIR elsewhere or remove it"
	fi
	[[ -e "$DIR" && ! -d "$DIR" ]] && die "$DIR exists and is not a directory"

	port_open "$port" && die "port $port on 127.0.0.1 is already in use (use -port N)"
	port_open "$cport" && die "controller port $cport on 127.0.0.1 is already in use (set MOLGEN_KAFKA_CONTROLLER_PORT)"
	if ((secure)); then
		port_open "$sport" && die "SASL_SSL port $sport on 127.0.0.1 is already in use (set MOLGEN_KAFKA_SASL_SSL_PORT)"
		port_open "$mport" && die "SSL port $mport on 127.0.0.1 is already in use (set MOLGEN_KAFKA_SSL_PORT)"
	fi

	ensure_jars

	if ((kept)); then
		# Same data (cluster id, topics, offsets, groups); the config is
		# written again, for this port.
		mkdir -p -- "$CONF" "$LOGS"
		log "keeping the data in $DIR/data"
	else
		rm -rf -- "$DIR"
		mkdir -p -- "$DIR" "$CONF" "$LOGS" "$DIR/data"
		: >"$MARKER"
	fi
	printf '%s\n' "$port" >"$PORTFILE"
	if ((secure)); then
		make_secure
		if ((authz)); then make_admin; fi
		write_secure_env "$port" "$sport" "$mport" "$authz"
	fi
	write_config "$port" "$cport" "$sport" "$mport" "$authz"
	ensure_ready_checker

	local cp="$LIBS/*"
	local log_props=(-Dlog4j2.configurationFile="$LOG4J_CONF" -Dkafka.logs.dir="$LOGS")

	local cluster_id
	cluster_id="$(random_cluster_id)"
	local scram=()
	if ((secure)); then
		local pw
		pw="$(cat "$SECURE/password")"
		scram=(--add-scram "SCRAM-SHA-256=[name=$SECURE_USER,password=$pw]"
			--add-scram "SCRAM-SHA-512=[name=$SECURE_USER,password=$pw]"
			--add-scram "SCRAM-SHA-512=[name=$SECURE_USER_512,password=$pw]")
		if ((authz)); then
			local apw
			apw="$(cat "$SECURE/admin-password")"
			scram+=(--add-scram "SCRAM-SHA-256=[name=$ADMIN_USER,password=$apw]"
				--add-scram "SCRAM-SHA-512=[name=$ADMIN_USER,password=$apw]")
		fi
	fi
	if ((!kept)) && ! "$JAVA" "${TOOL_JVM_OPTS[@]}" "${log_props[@]}" -Dmolgen.kafka.logfile=format.log \
		-cp "$cp" kafka.tools.StorageTool format -t "$cluster_id" -c "$SERVER_PROPS" "${scram[@]}" >>"$LOGS/format.log" 2>&1; then
		log_tail
		die "formatting $DIR/data failed"
	fi

	log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$port (controller 127.0.0.1:$cport, dir $DIR)"
	PENDING_PID="starting"
	launch_broker "$HEAP_OPTS"
	pid="$LAUNCHED_PID"

	local rc=0
	# With an authorizer, ANONYMOUS may not even look: check as the admin.
	local ready_args=("127.0.0.1:$port" "$START_TIMEOUT" "$pid")
	if ((authz)); then ready_args=("127.0.0.1:$sport" "$START_TIMEOUT" "$pid" "$SECURE/admin.properties"); fi
	# `timeout` is only a safety net; the checker enforces the deadline itself.
	timeout -k 5 $((START_TIMEOUT + 30)) \
		"${READY_CMD[@]}" "${ready_args[@]}" >>"$LOGS/ready.log" 2>&1 || rc=$?
	if ((rc != 0)); then
		log_tail
		if running_pid >/dev/null; then
			log "broker did not become ready within ${START_TIMEOUT}s; stopping it"
			cmd_stop >&2 || true
		fi
		die "Kafka did not come up on 127.0.0.1:$port (logs in $LOGS)"
	fi
	PENDING_PID=""
	log "ready (pid $pid)"
	if ((secure)); then
		# What a client needs, then the PLAINTEXT address last as always.
		printf '# SASL_SSL 127.0.0.1:%s (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; user %s, password in %s)\n' "$sport" "$SECURE_USER" "$SECURE/password"
		printf '# SSL with client certificates required (mTLS) 127.0.0.1:%s (client certificate %s, key %s)\n' "$mport" "$SECURE/client.pem" "$SECURE/client-key.pem"
		printf '# CA of the broker certificates: %s\n' "$SECURE/ca.pem"
		if ((authz)); then
			printf '# ACLs enforced (StandardAuthorizer; no ACL: denied); super user %s on SASL_SSL (password in %s, client properties %s); PLAINTEXT clients may do nothing\n' \
				"$ADMIN_USER" "$SECURE/admin-password" "$SECURE/admin.properties"
		fi
		printf '# all of it as KEY=VALUE, for MOLGEN_TEST_SECURE: %s\n' "$SECURE/env"
	fi
	printf '127.0.0.1:%s\n' "$port"
}

# launch_broker HEAP starts the selected broker's JVM in the background
# with heap options HEAP, waits for its pid file and sets LAUNCHED_PID.
LAUNCHED_PID=""
launch_broker() {
	local cp="$LIBS/*"
	local log_props=(-Dlog4j2.configurationFile="$LOG4J_CONF" -Dkafka.logs.dir="$LOGS")
	local jvm_opts
	# shellcheck disable=SC2206 # word splitting of the option strings is intended
	jvm_opts=($1 -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
		-XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
		$EXTRA_JVM_OPTS)
	rm -f -- "$PIDFILE"
	local launcher=()
	command -v setsid >/dev/null && launcher=(setsid)
	# The inner shell writes its own pid and then execs java, so the pid file
	# names the JVM whether or not setsid had to fork.
	# shellcheck disable=SC2016 # $$ and $@ are for the inner shell
	nohup "${launcher[@]}" bash -c 'echo $$ >"$1"; shift; exec "$@"' molgen-kafka "$PIDFILE" \
		"$JAVA" "${jvm_opts[@]}" "${log_props[@]}" -cp "$cp" kafka.Kafka "$SERVER_PROPS" \
		>>"$LOGS/stdout.log" 2>&1 </dev/null &

	local i
	for ((i = 0; i < 100; i++)); do
		[[ -s "$PIDFILE" ]] && break
		sleep 0.05
	done
	LAUNCHED_PID="$(tr -dc '0-9' <"$PIDFILE" 2>/dev/null || true)"
	[[ -n "$LAUNCHED_PID" ]] || {
		log_tail
		die "the broker did not start (no pid file)"
	}
}

# ----------------------------------------------------------------- cluster --
# start -cluster runs CLUSTER_SIZE brokers from $DIR: broker N's files in
# $DIR/broker-N (select_broker), its ports from the base port in
# $CLUSTER_FILE. Every per-broker command selects a broker and runs the
# single broker's code on it.

is_cluster() { [[ -f "$CLUSTER_FILE" ]]; }

# cluster_base prints the cluster's base port.
cluster_base() {
	local base
	base="$(sed -n 's/^port=//p' "$CLUSTER_FILE" 2>/dev/null | tr -dc '0-9')"
	[[ -n "$base" ]] || die "$CLUSTER_FILE names no base port"
	printf '%s' "$base"
}

# cluster_running: is any broker of the cluster running?
cluster_running() {
	local n rc=1
	for ((n = 1; n <= CLUSTER_SIZE; n++)); do
		select_broker "$n"
		running_pid >/dev/null && rc=0
	done
	select_single
	return "$rc"
}

# check_broker N: N names a broker of the cluster in $DIR.
check_broker() {
	[[ "$1" =~ ^[1-9][0-9]*$ ]] && (($1 <= CLUSTER_SIZE)) || die "bad broker '$1' (1-$CLUSTER_SIZE)"
	is_cluster || die "$DIR holds no cluster (start one with '$PROG start -cluster')"
}

# all_log_tails prints the log tails of every broker.
all_log_tails() {
	local n
	for ((n = 1; n <= CLUSTER_SIZE; n++)); do
		select_broker "$n"
		log_tail
	done
}

# cmd_start_cluster PORT KEEP starts the cluster's brokers on base port
# PORT (fresh data unless KEEP) and waits until all of them serve.
cmd_start_cluster() {
	local base="$1" keep="$2" n
	local kept=0
	if ((keep)); then
		kept=1
		for ((n = 1; n <= CLUSTER_SIZE; n++)); do
			[[ -f "$MARKER" && -f "$DIR/broker-$n/data/meta.properties" ]] || kept=0
		done
		is_cluster || kept=0
		((kept)) || log "no formatted cluster data in $DIR to keep: starting fresh"
	fi
	if [[ -z "$base" ]]; then
		base="${MOLGEN_KAFKA_PORT:-}"
		if [[ -z "$base" ]] && ((kept)); then base="$(cluster_base)"; fi
		base="${base:-9092}"
	fi
	if ! [[ "$base" =~ ^[1-9][0-9]{0,4}$ ]] || ((base + 2 * CLUSTER_SIZE - 1 > 65535)); then die "bad base port '$base'"; fi
	local bootstrap
	bootstrap="$(cluster_bootstrap "$base")"

	# Already running: the same cluster prints its address, anything else is an error.
	if [[ -f "$PIDFILE" ]] && running_pid >/dev/null; then
		die "a single broker is running from $DIR; run '$PROG stop' first"
	fi
	if is_cluster && cluster_running; then
		local all=1
		for ((n = 1; n <= CLUSTER_SIZE; n++)); do
			select_broker "$n"
			running_pid >/dev/null || all=0
		done
		if ((all)) && [[ "$(cluster_base)" == "$base" ]]; then
			log "already running from $DIR on $bootstrap"
			printf '%s\n' "$bootstrap"
			return 0
		fi
		die "(part of) a cluster is running from $DIR on base port $(cluster_base); run '$PROG stop' first"
	fi

	need_java
	if [[ -d "$DIR" && -n "$(ls -A -- "$DIR")" && ! -f "$MARKER" ]]; then
		die "$DIR exists, is not empty and was not created by $PROG; set MOLGEN_KAFKA_DIR elsewhere or remove it"
	fi
	[[ -e "$DIR" && ! -d "$DIR" ]] && die "$DIR exists and is not a directory"
	local p
	for ((p = base; p < base + 2 * CLUSTER_SIZE; p++)); do
		port_open "$p" && die "port $p on 127.0.0.1 is already in use (the cluster takes $base-$((base + 2 * CLUSTER_SIZE - 1)); use -port P)"
	done

	ensure_jars

	if ((kept)); then
		log "keeping the data in $DIR/broker-*/data"
	else
		rm -rf -- "$DIR"
		mkdir -p -- "$DIR"
		: >"$MARKER"
	fi
	printf 'port=%s\nbrokers=%s\n' "$base" "$CLUSTER_SIZE" >"$CLUSTER_FILE"
	for ((n = 1; n <= CLUSTER_SIZE; n++)); do
		select_broker "$n"
		mkdir -p -- "$CONF" "$LOGS" "$DATA"
		cluster_port "$n" "$base" >"$PORTFILE"
		write_cluster_config "$n" "$base"
	done

	if ((!kept)); then
		# One cluster id for all; the three formats run side by side.
		local cluster_id pids=() rc=0
		cluster_id="$(random_cluster_id)"
		for ((n = 1; n <= CLUSTER_SIZE; n++)); do
			select_broker "$n"
			"$JAVA" "${TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$LOG4J_CONF" -Dkafka.logs.dir="$LOGS" \
				-Dmolgen.kafka.logfile=format.log -cp "$LIBS/*" kafka.tools.StorageTool format \
				-t "$cluster_id" -c "$SERVER_PROPS" >>"$LOGS/format.log" 2>&1 &
			pids+=($!)
		done
		for p in "${pids[@]}"; do wait "$p" || rc=1; done
		if ((rc)); then
			all_log_tails
			die "formatting the cluster's data failed"
		fi
	fi

	log "starting a $CLUSTER_SIZE-broker Kafka $KAFKA_VERSION cluster on $bootstrap (controllers on the next port of each, dir $DIR)"
	PENDING_CLUSTER=1
	local all_pids=""
	for ((n = 1; n <= CLUSTER_SIZE; n++)); do
		select_broker "$n"
		launch_broker "$CLUSTER_HEAP_OPTS"
		all_pids+="${all_pids:+,}$LAUNCHED_PID"
	done

	select_broker 1
	READY_PROPS=(-Dmolgen.kafka.min.brokers="$CLUSTER_SIZE")
	ensure_ready_checker
	local rc=0
	timeout -k 5 $((START_TIMEOUT + 30)) \
		"${READY_CMD[@]}" "$bootstrap" "$START_TIMEOUT" "$all_pids" >>"$DIR/ready.log" 2>&1 || rc=$?
	if ((rc != 0)); then
		tail -n 5 "$DIR/ready.log" >&2 || true
		all_log_tails
		PENDING_CLUSTER=""
		log "the cluster did not become ready within ${START_TIMEOUT}s; stopping it"
		stop_cluster >&2 || true
		die "the Kafka cluster did not come up on $bootstrap (logs in $DIR/broker-*/logs, $DIR/ready.log)"
	fi
	PENDING_CLUSTER=""
	log "ready (pids $all_pids)"
	printf '%s\n' "$bootstrap"
}

# cmd_start_broker N starts broker N of the cluster again on its data and
# waits until the cluster lists it.
cmd_start_broker() {
	local n="$1"
	check_broker "$n"
	local base port
	base="$(cluster_base)"
	select_broker "$n"
	[[ -f "$MARKER" && -f "$DATA/meta.properties" ]] || die "broker $n has no formatted data in $BDIR (start the cluster with '$PROG start -cluster')"
	port="$(cluster_port "$n" "$base")"
	local pid
	if pid="$(running_pid)"; then
		log "broker $n is already running (pid $pid) on 127.0.0.1:$port"
		printf '%s\n' "$(cluster_bootstrap "$base")"
		return 0
	fi
	need_java
	port_open "$port" && die "port $port on 127.0.0.1 is already in use"
	port_open $((port + 1)) && die "controller port $((port + 1)) on 127.0.0.1 is already in use"
	ensure_jars
	mkdir -p -- "$CONF" "$LOGS"
	write_cluster_config "$n" "$base"
	log "starting broker $n on 127.0.0.1:$port (controller 127.0.0.1:$((port + 1)), data kept in $DATA)"
	PENDING_PID="starting"
	launch_broker "$CLUSTER_HEAP_OPTS"
	pid="$LAUNCHED_PID"
	READY_PROPS=(-Dmolgen.kafka.node.id="$n")
	ensure_ready_checker
	local rc=0
	timeout -k 5 $((START_TIMEOUT + 30)) \
		"${READY_CMD[@]}" "127.0.0.1:$port" "$START_TIMEOUT" "$pid" >>"$LOGS/ready.log" 2>&1 || rc=$?
	if ((rc != 0)); then
		log_tail
		if running_pid >/dev/null; then
			log "broker $n did not become ready within ${START_TIMEOUT}s; stopping it"
			cmd_stop >&2 || true
		fi
		die "broker $n did not come up on 127.0.0.1:$port (logs in $LOGS)"
	fi
	PENDING_PID=""
	log "broker $n ready (pid $pid)"
	printf '%s\n' "$(cluster_bootstrap "$base")"
}

# stop_cluster stops every broker of the cluster, side by side.
stop_cluster() {
	local n pids=() rc=0
	for ((n = 1; n <= CLUSTER_SIZE; n++)); do
		(
			select_broker "$n"
			PROG="kafka.sh (broker $n)"
			cmd_stop
		) &
		pids+=($!)
	done
	for n in "${pids[@]}"; do wait "$n" || rc=1; done
	select_single
	return "$rc"
}

# on_brokers CMD [N] runs CMD (a per-broker command) on broker N, or on
# every broker of the cluster when N is empty.
on_brokers() {
	local cmd="$1" only="${2:-}" n rc=0
	if [[ -n "$only" ]]; then
		check_broker "$only"
		select_broker "$only"
		PROG="kafka.sh (broker $only)" BROKER_OPT=" -broker $only" "$cmd"
		return
	fi
	for ((n = 1; n <= CLUSTER_SIZE; n++)); do
		select_broker "$n"
		PROG="kafka.sh (broker $n)" BROKER_OPT=" -broker $n" "$cmd" || rc=1
	done
	return "$rc"
}

cmd_status_cluster() {
	local only="${1:-}" n pid base rc=0 paused
	base="$(cluster_base)"
	for ((n = 1; n <= CLUSTER_SIZE; n++)); do
		[[ -z "$only" || "$only" == "$n" ]] || continue
		select_broker "$n"
		if pid="$(running_pid)"; then
			paused=""
			is_paused "$pid" && paused=", paused: run '$PROG resume -broker $n'"
			printf 'broker %s: running (pid %s%s) on 127.0.0.1:%s\n' "$n" "$pid" "$paused" "$(cluster_port "$n" "$base")"
		else
			printf 'broker %s: not running (127.0.0.1:%s)\n' "$n" "$(cluster_port "$n" "$base")"
			rc=1
		fi
	done
	printf 'cluster of %s brokers, Kafka %s, dir %s, bootstrap %s\n' "$CLUSTER_SIZE" "$KAFKA_VERSION" "$DIR" "$(cluster_bootstrap "$base")"
	return "$rc"
}

# -------------------------------------------------------------- stop/status --

cmd_stop() {
	local pid
	if ! pid="$(running_pid)"; then
		rm -f -- "$PIDFILE"
		log "not running"
		return 0
	fi
	log "stopping broker (pid $pid)"
	# A paused (SIGSTOPped) JVM cannot act on SIGTERM: let it run first.
	kill -CONT "$pid" 2>/dev/null || true
	kill -TERM "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + STOP_TIMEOUT))
	while running_pid >/dev/null && ((SECONDS < deadline)); do
		sleep 0.1
	done
	if running_pid >/dev/null; then
		log "still running after ${STOP_TIMEOUT}s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			running_pid >/dev/null || break
			sleep 0.1
		done
		running_pid >/dev/null && die "could not kill pid $pid"
	fi
	rm -f -- "$PIDFILE"
	log "stopped"
}

cmd_status() {
	local pid paused=""
	if pid="$(running_pid)"; then
		is_paused "$pid" && paused=", paused: run '$PROG resume'"
		printf 'running (pid %s%s) on 127.0.0.1:%s, Kafka %s, dir %s\n' "$pid" "$paused" "$(cat "$PORTFILE" 2>/dev/null || echo '?')" "$KAFKA_VERSION" "$DIR"
		if [[ -f "$SECURE/env" ]]; then
			printf 'secure: SASL_SSL %s, mTLS %s, client settings in %s\n' \
				"$(sed -n 's/^SASL_SSL=//p' "$SECURE/env")" "$(sed -n 's/^MTLS=//p' "$SECURE/env")" "$SECURE/env"
			if [[ -f "$SECURE/authorizer" ]]; then
				printf 'authorizer: ACLs enforced; admin client properties in %s\n' "$SECURE/admin.properties"
			fi
		fi
		return 0
	fi
	printf 'not running\n'
	return 1
}

# ------------------------------------------------------ restart/pause/resume --

# restart: a broker restart that keeps its data (and its port, unless told).
# In a cluster: one broker (-broker N: SIGTERM, wait, start again on its
# data), or all of them (stopped together, then started on their data).
cmd_restart() {
	local args=() broker=""
	while (($#)); do
		case "$1" in
		-broker | --broker)
			(($# >= 2)) || usage
			broker="$2"
			shift 2
			;;
		-broker=* | --broker=*)
			broker="${1#*=}"
			shift
			;;
		*)
			args+=("$1")
			shift
			;;
		esac
	done
	if [[ -n "$broker" ]]; then
		((${#args[@]} == 0)) || die "restart -broker N takes no other option"
		check_broker "$broker"
		select_broker "$broker"
		PROG="kafka.sh (broker $broker)" cmd_stop
		cmd_start_broker "$broker"
		return
	fi
	if is_cluster; then
		stop_cluster
		cmd_start -cluster -keep "${args[@]}"
		return
	fi
	cmd_stop
	cmd_start -keep "${args[@]}"
}

# kill: SIGKILL the JVM, as a crash ends it: no controlled shutdown, no
# flushed logs. The data stays (start -keep; start -broker N in a cluster).
cmd_kill() {
	local pid i
	pid="$(running_pid)" || die "no broker running from $BDIR"
	kill -CONT "$pid" 2>/dev/null || true
	kill -KILL "$pid" || die "could not kill pid $pid"
	for ((i = 0; i < 200; i++)); do
		running_pid >/dev/null || break
		sleep 0.05
	done
	running_pid >/dev/null && die "pid $pid is still running after SIGKILL"
	rm -f -- "$PIDFILE"
	log "killed broker (pid $pid)"
}

# Is pid stopped by a signal (state T)?
is_paused() {
	local state
	state="$(awk '/^State:/{print $2}' "/proc/$1/status" 2>/dev/null || true)"
	[[ "$state" == "T" ]]
}

# pause: SIGSTOP the JVM. Its sockets stay open and the kernel still
# accepts connections, but nothing is answered: a hung broker, as a long
# GC pause or a frozen VM would make it.
cmd_pause() {
	local pid
	pid="$(running_pid)" || die "no broker running from $BDIR"
	kill -STOP "$pid" || die "could not pause pid $pid"
	log "paused broker (pid $pid); 'kafka.sh resume$BROKER_OPT' lets it run again"
}

cmd_resume() {
	local pid
	pid="$(running_pid)" || die "no broker running from $BDIR"
	kill -CONT "$pid" || die "could not resume pid $pid"
	log "resumed broker (pid $pid)"
}

# ------------------------------------------------------------------- acls --

TOOLS="$CACHE/tools"

# ensure_tools_jar fetches kafka-tools (AclCommand) alone into $CACHE/tools,
# beside the broker's jars: the broker's classpath ($LIBS) stays as it is
# (kafka-tools would bring Kafka Connect along), and the tool runs on both,
# since all it needs besides its own jar is among the broker's.
ensure_tools_jar() {
	[[ -f "$TOOLS/kafka-tools-$KAFKA_VERSION.jar" ]] && return 0
	command -v mvn >/dev/null || die "mvn not found: Maven is needed once to fetch kafka-tools $KAFKA_VERSION into $TOOLS"
	local tmp
	tmp="$(mktemp -d "$CACHE/tools.tmp.XXXXXX")"
	CLEANUP_TMP="$tmp"
	log "fetching kafka-tools $KAFKA_VERSION with Maven into $TOOLS"
	if ! mvn -B -q -f "$POM" -P acl-tool -Dkafka.version="$KAFKA_VERSION" dependency:copy-dependencies \
		-DincludeScope=runtime -DincludeArtifactIds=kafka-tools -DoutputDirectory="$tmp/tools" >"$tmp/mvn.log" 2>&1; then
		cat "$tmp/mvn.log" >&2 || true
		rm -rf -- "$tmp"
		die "Maven could not fetch org.apache.kafka:kafka-tools:$KAFKA_VERSION"
	fi
	[[ -f "$tmp/tools/kafka-tools-$KAFKA_VERSION.jar" ]] || {
		rm -rf -- "$tmp"
		die "Maven finished but kafka-tools-$KAFKA_VERSION.jar is missing"
	}
	chmod 755 "$tmp/tools"
	# Another acls may have won the race: then use its jar.
	mv -T -- "$tmp/tools" "$TOOLS" 2>/dev/null || [[ -f "$TOOLS/kafka-tools-$KAFKA_VERSION.jar" ]] ||
		die "could not install kafka-tools into $TOOLS"
	rm -rf -- "$tmp"
	CLEANUP_TMP=""
}

# acls runs Kafka's ACL command line tool (what kafka-acls.sh runs) with
# the arguments given; its log goes to stderr at WARN.
cmd_acls() {
	need_java
	ensure_jars
	ensure_tools_jar
	local log4j rc=0
	log4j="$(mktemp --suffix=.properties)"
	printf '%s\n' 'status = warn' 'appender.err.type = Console' 'appender.err.name = ERR' 'appender.err.target = SYSTEM_ERR' \
		'appender.err.layout.type = PatternLayout' 'appender.err.layout.pattern = %p %m%n' \
		'rootLogger.level = WARN' 'rootLogger.appenderRef.err.ref = ERR' >"$log4j"
	"$JAVA" "${TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$log4j" -cp "$TOOLS/*:$LIBS/*" \
		org.apache.kafka.tools.AclCommand "$@" || rc=$?
	rm -f -- "$log4j"
	return "$rc"
}

# parse_broker ARGS sets BROKER_ARG to N of "-broker N" (empty without);
# any other argument is a usage error.
BROKER_ARG=""
BROKER_OPT="" # " -broker N" while a command acts on broker N (for messages)
parse_broker() {
	BROKER_ARG=""
	while (($#)); do
		case "$1" in
		-broker | --broker)
			(($# >= 2)) || usage
			BROKER_ARG="$2"
			shift 2
			;;
		-broker=* | --broker=*)
			BROKER_ARG="${1#*=}"
			shift
			;;
		*) usage ;;
		esac
	done
}

# per_broker CMD ARGS runs CMD on the single broker, on broker N of a
# cluster (-broker N), or on every broker of a cluster.
per_broker() {
	local cmd="$1"
	shift
	parse_broker "$@"
	if [[ -n "$BROKER_ARG" ]]; then
		on_brokers "$cmd" "$BROKER_ARG"
	elif is_cluster; then
		on_brokers "$cmd"
	else
		"$cmd"
	fi
}

(($#)) || usage
cmd="$1"
shift
case "$cmd" in
start) cmd_start "$@" ;;
restart) cmd_restart "$@" ;;
stop)
	parse_broker "$@"
	if [[ -n "$BROKER_ARG" ]]; then
		on_brokers cmd_stop "$BROKER_ARG"
	elif is_cluster; then
		stop_cluster
	else
		cmd_stop
	fi
	;;
status)
	parse_broker "$@"
	if [[ -n "$BROKER_ARG" ]]; then
		check_broker "$BROKER_ARG"
		cmd_status_cluster "$BROKER_ARG"
	elif is_cluster; then
		cmd_status_cluster
	else
		cmd_status
	fi
	;;
pause) per_broker cmd_pause "$@" ;;
resume) per_broker cmd_resume "$@" ;;
kill) per_broker cmd_kill "$@" ;;
acls) cmd_acls "$@" ;;
-h | --help | help) usage ;;
*) usage ;;
esac
