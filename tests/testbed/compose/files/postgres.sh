#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The real PostgreSQL of the testbed: initdb at every start (the container keeps no volume),
# password logins from any address (the network is the only guard, as in the classic mistake),
# a database with an evaluation table and a few rows, then the server in the foreground.
# Environment: TB_PG_PORT (5432), TB_PG_DB (ceredis), TB_PG_USER (ceredis), TB_PG_PASSWORD
# (ceredis), TB_PG_TABLE (evaluations); a read-only role "analytics" (password "analytics").
set -eu
port=${TB_PG_PORT:-5432}
db=${TB_PG_DB:-ceredis}
user=${TB_PG_USER:-ceredis}
password=${TB_PG_PASSWORD:-ceredis}
table=${TB_PG_TABLE:-evaluations}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
data=/var/lib/postgresql/data
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

# `docker start` of a stopped container keeps its filesystem: the cluster and the socket lock
# files of the previous run are still there (and their PIDs may now belong to someone else).
rm -rf "$data" /run/postgresql/.s.PGSQL.*
mkdir -p "$data" /run/postgresql
chown postgres:postgres "$data" /run/postgresql
as_pg "$bin/initdb" -D "$data" -U postgres -E UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' >>"$data/pg_hba.conf"

as_pg "$bin/pg_ctl" -D "$data" -o "-c listen_addresses='' -p $port" -w start >/dev/null
as_pg psql -q -v ON_ERROR_STOP=1 -p "$port" -U postgres -d postgres <<SQL
create role "$user" login password '$password';
create database "$db" owner "$user";
create role analytics login password 'analytics';
\connect "$db"
set role "$user";
create table "$table" (
        id serial primary key,
        student text not null,
        competency text not null,
        cefr_level text not null,
        score integer not null,
        evaluated_at timestamptz not null default now()
);
insert into "$table" (student, competency, cefr_level, score) values
        ('eleve-001', 'comprehension-orale', 'B1', 14),
        ('eleve-001', 'production-ecrite', 'A2', 11),
        ('eleve-002', 'comprehension-ecrite', 'B2', 16);
grant usage on schema public to analytics;
grant select on all tables in schema public to analytics;
SQL
as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
exec setpriv --reuid=postgres --regid=postgres --init-groups -- \
        "$bin/postgres" -D "$data" -c listen_addresses='*' -p "$port"
