#!/usr/bin/env bash
# Idempotent machine setup for Tributary's tests: Postgres with wal_level=logical, MariaDB
# with the binlog in ROW/FULL mode, Redis, and the packages the tests use.
# Safe to run again and again; it only restarts a server when a setting must change.
set -euo pipefail
if [ -n "${TRIBUTARY_SKIP_SETUP:-}" ]; then exit 0; fi

log() { printf '\033[1msetup:\033[0m %s\n' "$*"; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

# --- Debian packages --------------------------------------------------------------------
need_pkgs=()
command -v psql >/dev/null 2>&1 || need_pkgs+=(postgresql-15 postgresql-client-15)
command -v pg_recvlogical >/dev/null 2>&1 || need_pkgs+=(postgresql-client-15)
command -v mariadb >/dev/null 2>&1 || need_pkgs+=(mariadb-server mariadb-client)
command -v mariadb-binlog >/dev/null 2>&1 || need_pkgs+=(mariadb-client)
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
command -v searchd >/dev/null 2>&1 || need_pkgs+=(sphinxsearch)
command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/bin/clickhouse ] || need_pkgs+=(clickhouse-server)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need_pkgs+=(chromium)   # the console's browser tests (playwright-core drives it)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null || log "warning: apt-get install failed for some of: ${need_pkgs[*]}"
fi

# --- PostgreSQL ---------------------------------------------------------------------------
PGVER=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -1 || true)
pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }
if [ -n "$PGVER" ]; then
  if ! pg_up; then
    log "starting PostgreSQL $PGVER"
    pg_ctlcluster --skip-systemctl-redirect "$PGVER" main start || true
  fi
  for i in $(seq 1 30); do pg_up && break; sleep 1; done
  PSQL=(psql -h 127.0.0.1 -U postgres -d postgres -Atqc)
  if [ "$("${PSQL[@]}" 'SHOW wal_level')" != "logical" ]; then
    log "setting wal_level=logical and restarting PostgreSQL"
    "${PSQL[@]}" "ALTER SYSTEM SET wal_level = 'logical'"
    "${PSQL[@]}" "ALTER SYSTEM SET max_replication_slots = 40"
    "${PSQL[@]}" "ALTER SYSTEM SET max_wal_senders = 40"
    pg_ctlcluster --skip-systemctl-redirect "$PGVER" main restart
    for i in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
  log "PostgreSQL wal_level=$("${PSQL[@]}" 'SHOW wal_level')"
fi

# --- MariaDB ------------------------------------------------------------------------------
MYCNF_DIR=/etc/mysql/mariadb.conf.d
[ -d /etc/mysql/mariadb.conf.d ] || MYCNF_DIR=/etc/mysql/conf.d
$SUDO mkdir -p "$MYCNF_DIR"
WANT_CNF="[mariadbd]
server_id = 1
log_bin = /var/lib/mysql/mariadb-bin
binlog_format = ROW
binlog_row_image = FULL
binlog_row_metadata = FULL
max_allowed_packet = 256M
"
my() { mariadb -uroot -h127.0.0.1 -P3306 --protocol=tcp -N -B -e "$1"; }
my_up() { mariadb-admin -uroot -h127.0.0.1 --protocol=tcp ping >/dev/null 2>&1; }
restart_mariadb() {
  if my_up; then mariadb-admin -uroot -h127.0.0.1 --protocol=tcp shutdown || true; fi
  for i in $(seq 1 30); do pgrep -x mariadbd >/dev/null || break; sleep 1; done
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for i in $(seq 1 60); do my_up && break; sleep 1; done
}
if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; then
  # Debian's stock my.cnf includes conf.d; a trimmed one may not, so make sure it does.
  if [ -f /etc/mysql/my.cnf ] && ! grep -qE "^!includedir +$MYCNF_DIR/?\s*$" /etc/mysql/my.cnf; then
    printf '\n!includedir %s/\n' "$MYCNF_DIR" | $SUDO tee -a /etc/mysql/my.cnf >/dev/null
  fi
  if [ ! -f "$MYCNF_DIR/99-tributary.cnf" ] || [ "$(cat "$MYCNF_DIR/99-tributary.cnf")" != "$(printf '%s' "$WANT_CNF")" ]; then
    printf '%s' "$WANT_CNF" | $SUDO tee "$MYCNF_DIR/99-tributary.cnf" >/dev/null
  fi
  if ! my_up; then
    log "starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    for i in $(seq 1 60); do my_up && break; sleep 1; done
  fi
  if [ "$(my 'SELECT @@log_bin, @@binlog_format, @@binlog_row_metadata' | tr '\t' ' ')" != "1 ROW FULL" ]; then
    log "enabling the MariaDB binlog (ROW, FULL) and restarting mariadbd"
    restart_mariadb
  fi
  log "MariaDB $(my 'SELECT CONCAT(@@version, " log_bin=", @@log_bin, " format=", @@binlog_format, " metadata=", @@binlog_row_metadata)')"
fi

# --- Redis --------------------------------------------------------------------------------
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for i in $(seq 1 20); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
log "Redis $(redis-cli -h 127.0.0.1 ping)"
