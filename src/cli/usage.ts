import { readFileSync } from 'node:fs';

/**
 * What `tributary help`, `tributary COMMAND --help` and `tributary --version` print. One
 * entry per command: its synopsis line (listed by `help`) and its own usage text.
 */
export const COMMANDS: Record<string, { synopsis: [args: string, summary: string]; usage: string }> = {
  run: {
    synopsis: ['run --config FILE [--role all|source|sinks] [--sink NAME ...]', 'run the pipelines (or some of their parts) until SIGINT/SIGTERM'],
    usage: `Usage: tributary run --config FILE [--config FILE ...] [--role all|source|sinks] [--sink NAME ...] [--http-port N]
       tributary run --worker --config FILE [--pipeline NAME ...]

Run every pipeline of the config files until SIGINT or SIGTERM, which drain: reading stops,
and each sink commits what it holds. The HTTP API (http.port) serves /healthz, /readyz,
/metrics, /status and snapshot requests.

  -c, --config FILE    a config file (repeatable: their pipelines run side by side)
  --role ROLE          which parts this process runs (stream: log only, for source and sinks):
                         all      the source and every sink (the default)
                         source   the source only: it appends to the log (one writer) and
                                  acknowledges the database once the log holds a change
                         sinks    sinks only: they read the log another process writes
                       each part is locked in the log's directory, so a second writer
                       (TRB5020) or a sink already running elsewhere (TRB5021) is refused
  --sink NAME          with --role sinks (or all): run only this sink (repeatable)
  --http-port N        the HTTP API's port for this process (overrides http.port; 0 turns
                       it off): each process of a pipeline needs its own
  --worker             take snapshot chunk jobs only (pipelines with snapshot.queue.redis)
  --pipeline NAME      with --worker: serve only this pipeline (repeatable)

Exit codes: 0 after a drain, 1 when a pipeline failed, 2 for a usage or config error.`,
  },
  validate: {
    synopsis: ['validate --config FILE [--check-source]', 'check the config (and the database and sinks)'],
    usage: `Usage: tributary validate --config FILE [--config FILE ...] [--check-source]

Check the config files: every problem with its file, line and field.

  -c, --config FILE    a config file (repeatable)
  --check-source       also run the source preflight (server settings, privileges, tables) and
                       every sink's check (reachable, authorized, writable), each problem with
                       its fix

Exit codes: 0 when everything passes, 2 when anything does not.`,
  },
  status: {
    synopsis: ['status --config FILE [--json]', 'positions, per-sink lag, snapshot progress'],
    usage: `Usage: tributary status --config FILE [--json] [--http-port N ...]

Each pipeline's sink positions (from the state store), its lag and snapshot progress (from the
running process's /status, with http.auth_token from the same config).

  -c, --config FILE    a config file (repeatable)
  --http-port N        ask the process on this port instead of http.port (repeatable: a
                       pipeline run in parts, run --role, has one process per part)
  --json               print JSON`,
  },
  snapshot: {
    synopsis: ['snapshot --config FILE --table T [--where SQL]', 'snapshot a table while it streams (see --help)'],
    usage: `Usage: tributary snapshot --config FILE --table T [--where SQL] [--pipeline P] [--json]
       tributary snapshot --config FILE --table T --pause | --resume | --cancel

Ask the running process (its HTTP API, with http.auth_token from the same config) to snapshot a
table while it streams, or to pause, resume or cancel the snapshot that runs.

  -c, --config FILE    the config the process runs
  --table T            schema.table (Postgres; a bare name means public.T) or db.table (MySQL)
  --where SQL          only rows matching this condition, in the source's SQL; one condition:
                       no ";", "--", "/*" (nor "#" on MySQL), balanced parentheses
  --pipeline P         the pipeline (default: the one whose source.tables capture the table)
  --json               print the API's reply instead of a summary

Exit codes: 0 when the request was accepted, 1 when it was refused, 2 for a usage error.`,
  },
  binlog: {
    synopsis: ['binlog decode FILE...', 'decode binlog files to JSONL on stdout'],
    usage: `Usage: tributary binlog decode FILE...

Decode MySQL/MariaDB binlog files offline, in the order given, into change events: one JSON
line per row change on stdout (the envelope of a running pipeline, with file/pos positions).
Columns whose names the files do not carry (binlog_row_metadata=MINIMAL) are named _col0, _col1, ...

Exit codes: 0 when every file decoded, 1 when a file is unreadable, truncated or corrupt.`,
  },
  log: {
    synopsis: ['log info|read --config FILE', 'the log: offsets, sizes, sink lag; retained events'],
    usage: `Usage: tributary log info --config FILE [--pipeline P] [--json]
       tributary log read --config FILE [--pipeline P] [--table T] [--key JSON] [--from X] [--to X] [--limit N]

info: the log's offsets (first, last, durable end), the commit times of its first and last
transactions, its size, the retention horizon (what the compacted state stands for), and each
sink's committed offset and lag (log entries, bytes and seconds behind its end).

read: the retained events as JSONL, the envelopes exactly as stored, in log order, from --from
up to (not including) --to. Only committed transactions.

  -c, --config FILE    the pipeline's config
  --pipeline P         which pipeline, when the config has several
  --json               (info) print JSON; the field names are those of GET /log
  --table T            (read) only this table: schema.table (Postgres; a bare name means public.T)
                       or db.table (MySQL)
  --key JSON           (read) only this key, as events show it, e.g. '{"id":7}'; with --table it
                       is looked up in the key index instead of scanning the log
  --from X, --to X     (read) earliest (default for --from), latest (default for --to), an
                       ISO-8601 time (transactions committed after it; a source commit time), a
                       log offset, or a source position: a Postgres LSN (0/16B3748), a MySQL
                       file:pos (mysql-bin.000003:1234), a GTID set, or a MariaDB GTID (0-1-100)
  --limit N            (read) stop after N events

The log is read-only here: a running pipeline may be writing it.
Exit codes: 0 success, 1 when the log cannot be read, 2 for a usage or config error.`,
  },
  state: {
    synopsis: ['state --config FILE --table T --at TIME', 'rows as they were at TIME (time travel)'],
    usage: `Usage: tributary state --config FILE [--pipeline P] --table T --at TIME [--key JSON]

The rows of a table as they were at TIME, as JSONL: the result of every transaction the source
committed at or before TIME (the source commit time). Answered from the log's key index (one key
reads only that key's versions) and, beyond retention, from the compacted state; a whole table
streams out in bounded memory.

  -c, --config FILE    the pipeline's config
  --pipeline P         which pipeline, when the config has several
  --table T            schema.table (Postgres; a bare name means public.T) or db.table (MySQL)
  --at TIME            an ISO-8601 time, e.g. 2024-01-15T10:45:00Z (without a zone: local time),
                       or now
  --key JSON           only this row, its key as events show it, e.g. '{"id":7}'

Before the start of the retained history it says so (TRB5003) rather than guess.
Exit codes: 0 success, 1 when TIME is before the history or the log cannot be read, 2 for a
usage or config error.`,
  },
  rewind: {
    synopsis: ['rewind --config FILE --sink S --to X', 'a sink reads the log again from X'],
    usage: `Usage: tributary rewind --config FILE [--pipeline P] --sink S --to X [--dry-run] [--json]

Make sink S read the log again from X: earliest (the compacted state first when retention has
trimmed the log, then the log), latest, an ISO-8601 time (it receives again every transaction
committed after it), a log offset (from the start of the transaction holding it), or a source
position (a Postgres LSN, a MySQL file:pos, a GTID set, a MariaDB GTID). The other sinks and the
source are not disturbed.

A stopped pipeline: its checkpoint is rewritten under its state lock, and the sink reads from X
at the next run. A running pipeline (its lock is held): the request goes to its HTTP API (POST
/rewind, with http.auth_token from the same config), which restarts that sink at X.

Keyed sinks (redis, elasticsearch, ...) converge through their fences; the jsonl sink appends the
events it receives again after what it holds (docs/replay.md).

  -c, --config FILE    the pipeline's config
  --pipeline P         which pipeline, when the config has several
  --sink S             the sink to rewind
  --to X               earliest | latest | TIME | OFFSET | POSITION
  --dry-run            only print how many events and transactions it would receive again
  --json               print the plan as JSON (the reply of POST /rewind)

A target before the start of the log (other than earliest) is refused (TRB5010).
Exit codes: 0 success, 1 when the rewind was refused, 2 for a usage or config error.`,
  },
  dlq: {
    synopsis: ['dlq list|show|retry|discard --config FILE --sink S', 'dead letters: browse, retry, discard'],
    usage: `Usage: tributary dlq list    --config FILE [--pipeline P] --sink S [--limit N] [--json]
       tributary dlq show    --config FILE [--pipeline P] --sink S --id ID [--json]
       tributary dlq retry   --config FILE [--pipeline P] --sink S (--id ID ... | --all) [--json]
       tributary dlq discard --config FILE [--pipeline P] --sink S (--id ID ... | --all) --reason TEXT [--json]

Events a sink rejected (after max_attempts writes) are parked in the dead-letter store, in the
state store beside the checkpoints; later events of the same key are parked behind them, so a
key's changes reach the sink in order (docs/dead-letters.md).

  list      the sink's dead letters in stream order: id, table, key, attempts, error
  show      one dead letter with its event
  retry     deliver them again through the sink, in order; one that fails again stays parked
            (attempts + 1, its new error), and so do the later ones of its key
  discard   drop them; the reason is logged and kept in the sink's dead-letter history

list and show read the store (also while the pipeline runs). retry and discard on a stopped
pipeline work on the store under its lock, opening the sink at its checkpoint; on a running one
(its lock is held) they go to its HTTP API (POST /dlq/retry, /dlq/discard, with http.auth_token
from the same config).

  -c, --config FILE    the pipeline's config
  --pipeline P         which pipeline, when the config has several
  --sink S             the sink
  --id ID              a dead letter (repeat for several)
  --all                every dead letter of the sink
  --reason TEXT        why they are discarded (required by discard)
  --limit N            list at most N (default: all)
  --json               print JSON (the API's form)

Exit codes: 0 success (retry: every event delivered), 1 when a retried event failed again or the
request was refused, 2 for a usage or config error.`,
  },
  demo: {
    synopsis: ['demo [--duration S] [--rate N] [--out DIR]', 'embedded Postgres, live traffic, events on screen'],
    usage: `Usage: tributary demo [--duration SECONDS] [--rate N] [--out DIR]

Start an embedded Postgres, write sample orders into it, and stream the changes to the screen
and to DIR/events.jsonl. Nothing to install or configure. Ctrl-C stops it.

  --duration SECONDS   stop after this long (default: until Ctrl-C)
  --rate N             sample transactions per second (default 3)
  --out DIR            where the config, state and events go (default ./demo-out)`,
  },
  docs: {
    synopsis: ['docs config', 'print the configuration reference (Markdown)'],
    usage: `Usage: tributary docs config

Print the configuration reference, generated from the schemas of the config and of every
built-in sink (docs/configuration.md is this output).`,
  },
  help: {
    synopsis: ['help [COMMAND]', 'this list, or a command\'s usage'],
    usage: 'Usage: tributary help [COMMAND]',
  },
  version: {
    synopsis: ['version', 'the version (also --version)'],
    usage: 'Usage: tributary version | tributary --version',
  },
};

/** The overview `tributary help` prints. */
export function overview(): string {
  return `tributary: change-data-capture from Postgres and MySQL/MariaDB to your sinks

Usage:
${Object.values(COMMANDS)
  .map(({ synopsis: [args, summary] }) => `  tributary ${args.padEnd(47)} ${summary}`)
  .join('\n')}

\`tributary COMMAND --help\` prints a command's usage.
Exit codes: 0 success, 1 runtime failure, 2 usage or config error.
Docs: README.md and docs/ in the repository.`;
}

/** The package version (package.json beside dist/). */
export function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** True when the arguments ask for help (`--help` or `-h` anywhere before a `--`). */
export function wantsHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}
