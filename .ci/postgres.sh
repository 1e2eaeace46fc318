# Source this file (bash, as root on Debian): it starts a throw-away PostgreSQL server for tests/test_postgres.py,
# exports its URL as SB3_REINFORCE_POSTGRES_URL and stops the server when the shell exits.
# Debian's postgresql package is installed if missing. The server is a new cluster in a temporary folder, owned by the
# postgres user, listening on 127.0.0.1 only (a free port, no Unix socket), with a database and a user of its own.

if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
PG_DIR="$(mktemp -d)"
PG_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
PG_PASSWORD="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
echo "$PG_PASSWORD" >"$PG_DIR/password"
chown -R postgres:postgres "$PG_DIR"
# initdb and the server refuse to run as root
runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=scram-sha-256 \
    --pwfile="$PG_DIR/password" >"$PG_DIR/initdb.log"
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=''" start >/dev/null
trap 'runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null; rm -rf "$PG_DIR"' EXIT
PGPASSWORD="$PG_PASSWORD" "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE USER sb3_reinforce PASSWORD '$PG_PASSWORD'" -c "CREATE DATABASE sb3_reinforce OWNER sb3_reinforce"
export SB3_REINFORCE_POSTGRES_URL="postgresql+psycopg://sb3_reinforce:$PG_PASSWORD@127.0.0.1:$PG_PORT/sb3_reinforce"
