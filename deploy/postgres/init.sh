#!/bin/sh
# First start of the compose Postgres: a `cdc` role for Tributary (replication, and owner of
# the sample tables so the publication can be created) and the tables the example captures.
set -eu
psql -v ON_ERROR_STOP=1 -v cdc_password="$CDC_PASSWORD" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE cdc LOGIN REPLICATION PASSWORD :'cdc_password';
GRANT CREATE ON DATABASE shop TO cdc;
CREATE TABLE public.orders (id bigserial PRIMARY KEY, customer text NOT NULL, status text NOT NULL DEFAULT 'placed', amount numeric(12,2) NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE public.order_items (order_id bigint NOT NULL REFERENCES public.orders, line int NOT NULL, sku text NOT NULL, qty int NOT NULL, PRIMARY KEY (order_id, line));
ALTER TABLE public.orders OWNER TO cdc;
ALTER TABLE public.order_items OWNER TO cdc;
INSERT INTO public.orders (customer, amount) SELECT 'customer ' || g, (g * 1.25)::numeric(12,2) FROM generate_series(1, 100) g;
SQL
