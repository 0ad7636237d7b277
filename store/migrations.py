"""The schema, as numbered migrations. An applied migration is never edited: a fix is a new one.

They are registered in the order of their numbers, which is the order a new database runs them.
A database records each migration it ran by name (sqlite-utils' `_sqlite_migrations` table) and
runs only the names it lacks, so one made while m003 was registered before m002 (and m005 before
m004) upgrades to the same schema: every migration needs only those numbered below it.
"""

from __future__ import annotations

import sqlite_utils

migrations = sqlite_utils.Migrations("promstack")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    # The version model: prompts own immutable versions numbered 1, 2, 3... across all
    # branches; branches and labels are movable pointers; label moves and every mutation are
    # kept append-only so that deployments can be audited and undone.
    db.executescript(
        """
        CREATE TABLE prompts (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            description TEXT,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            archived_at TEXT
        );
        CREATE TABLE versions (
            id INTEGER PRIMARY KEY,
            prompt_id INTEGER NOT NULL REFERENCES prompts(id),
            number INTEGER NOT NULL,
            branch TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('text', 'chat')),
            template TEXT NOT NULL,
            model_config TEXT NOT NULL,
            variables TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            parent INTEGER,
            merge_parent INTEGER,
            message TEXT,
            author TEXT NOT NULL,
            source TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (prompt_id, number)
        );
        CREATE INDEX versions_sha ON versions (prompt_id, sha256);
        CREATE TABLE branches (
            prompt_id INTEGER NOT NULL REFERENCES prompts(id),
            name TEXT NOT NULL,
            head INTEGER NOT NULL,
            forked_from INTEGER,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            PRIMARY KEY (prompt_id, name)
        );
        CREATE TABLE labels (
            prompt_id INTEGER NOT NULL REFERENCES prompts(id),
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL,
            PRIMARY KEY (prompt_id, name)
        );
        CREATE TABLE label_history (
            id INTEGER PRIMARY KEY,
            prompt_id INTEGER NOT NULL REFERENCES prompts(id),
            label TEXT NOT NULL,
            from_version INTEGER,
            to_version INTEGER,
            actor TEXT NOT NULL,
            reason TEXT,
            at TEXT NOT NULL
        );
        CREATE INDEX label_history_lookup ON label_history (prompt_id, label, at);
        CREATE TABLE dependencies (
            prompt_id INTEGER NOT NULL REFERENCES prompts(id),
            version INTEGER NOT NULL,
            depends_on TEXT NOT NULL,
            selector TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (prompt_id, version, depends_on, selector)
        );
        CREATE INDEX dependencies_reverse ON dependencies (depends_on);
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            prompt_id INTEGER,
            version INTEGER,
            detail TEXT NOT NULL,
            input_tokens INTEGER,
            output_tokens INTEGER,
            cost_usd REAL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX audit_prompt ON audit (prompt_id, at);
        """
    )


@migrations()
def m002_prompt_files(db: sqlite_utils.Database) -> None:
    # The file watcher keeps prompt files on disk and versions in agreement. prompt_files maps
    # each tracked file (path relative to the workspace) to its prompt, with what was last
    # synced in either direction: the file's bytes hash tells the watcher a file is unchanged
    # or was written by the store itself. test_data keeps a .prompt.yml's testData and
    # evaluators for the test suites. watch_errors records files that could not be versioned
    # (bad front matter, binary, unreadable) for `promstack status`. checkpoints name versions
    # without touching them: history is never squashed or deleted.
    db.executescript(
        """
        CREATE TABLE prompt_files (
            path TEXT PRIMARY KEY,
            prompt_id INTEGER NOT NULL REFERENCES prompts(id),
            format TEXT NOT NULL,
            file_sha TEXT NOT NULL,
            content_sha TEXT,
            version INTEGER,
            message TEXT,
            test_data TEXT,
            missing_since TEXT,
            synced_at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX prompt_files_prompt ON prompt_files (prompt_id);
        CREATE TABLE watch_errors (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            error TEXT NOT NULL,
            file_sha TEXT,
            at TEXT NOT NULL,
            resolved_at TEXT
        );
        CREATE INDEX watch_errors_open ON watch_errors (path, resolved_at);
        CREATE TABLE checkpoints (
            id INTEGER PRIMARY KEY,
            prompt_id INTEGER NOT NULL REFERENCES prompts(id),
            version INTEGER NOT NULL,
            name TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX checkpoints_prompt ON checkpoints (prompt_id, version);
        """
    )


@migrations()
def m003_call_log(db: sqlite_utils.Database) -> None:
    # Every model call (hit or miss, success or failure) is one row: the guide's log fields plus
    # cost, cache hit, status, error, environment, run and the guards' decisions. call_id is
    # made by the gateway before the row is written, so a result can name its row at once.
    db.executescript(
        """
        CREATE TABLE calls (
            id INTEGER PRIMARY KEY,
            call_id TEXT NOT NULL UNIQUE,
            timestamp TEXT NOT NULL,
            prompt_id INTEGER,
            prompt_name TEXT,
            prompt_version INTEGER,
            model TEXT NOT NULL,
            provider TEXT,
            route TEXT,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            latency_ms REAL NOT NULL DEFAULT 0,
            user_id TEXT,
            cost_usd REAL NOT NULL DEFAULT 0,
            cache_hit INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL CHECK (status IN ('ok', 'error', 'blocked')),
            error TEXT,
            environment TEXT,
            run_id TEXT,
            guards TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX calls_time ON calls (timestamp);
        CREATE INDEX calls_prompt ON calls (prompt_id, timestamp);
        CREATE INDEX calls_run ON calls (run_id);
        """
    )


@migrations()
def m004_evals(db: sqlite_utils.Database) -> None:
    # Test suites and what runs them. A result row is one finished unit of work, keyed by
    # (run, case, model, repeat); the run fixes prompt version and judge config, so resuming
    # a run skips exactly the rows that exist and redoes everything else (an interrupted call
    # never wrote one). Cases are addressed by a content key so re-importing a suite keeps
    # the results of unchanged cases. Arena matches record both orders of the blind judgement;
    # votes are people's verdicts on the same matches, one per voter.
    db.executescript(
        """
        CREATE TABLE suites (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            prompt_id INTEGER,
            source TEXT NOT NULL,
            format TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            case_count INTEGER NOT NULL DEFAULT 0,
            config TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        );
        CREATE TABLE cases (
            id INTEGER PRIMARY KEY,
            suite_id INTEGER NOT NULL REFERENCES suites(id),
            idx INTEGER NOT NULL,
            case_key TEXT NOT NULL,
            input TEXT,
            expected TEXT,
            variables TEXT NOT NULL DEFAULT '{}',
            assertions TEXT NOT NULL DEFAULT '[]',
            line INTEGER,
            UNIQUE (suite_id, idx)
        );
        CREATE INDEX cases_key ON cases (suite_id, case_key);
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('test', 'arena')),
            suite_id INTEGER REFERENCES suites(id),
            suite_name TEXT NOT NULL,
            suite_sha TEXT,
            prompt_id INTEGER,
            prompt_version INTEGER,
            models TEXT NOT NULL,
            repeat INTEGER NOT NULL DEFAULT 1,
            config TEXT NOT NULL DEFAULT '{}',
            judge_key TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL CHECK (status IN ('running', 'done', 'interrupted', 'failed')),
            total INTEGER NOT NULL DEFAULT 0,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            summary TEXT,
            actor TEXT NOT NULL,
            pid INTEGER
        );
        CREATE INDEX runs_suite ON runs (suite_name, started_at);
        CREATE TABLE results (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            case_key TEXT NOT NULL,
            case_idx INTEGER,
            model TEXT NOT NULL,
            prompt_version INTEGER,
            repeat INTEGER NOT NULL DEFAULT 0,
            judge_key TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL CHECK (status IN ('pass', 'fail', 'error', 'unchecked')),
            score REAL,
            output TEXT,
            reason TEXT,
            checks TEXT,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            latency_ms REAL,
            cache_hit INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 1,
            error TEXT,
            finished_at TEXT NOT NULL,
            UNIQUE (run_id, case_key, model, repeat)
        );
        CREATE INDEX results_status ON results (run_id, status);
        CREATE TABLE arena_matches (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            case_key TEXT NOT NULL,
            case_idx INTEGER,
            model_a TEXT NOT NULL,
            model_b TEXT NOT NULL,
            output_a TEXT,
            output_b TEXT,
            first TEXT,
            verdict_ab TEXT,
            verdict_ba TEXT,
            winner TEXT,
            flipped INTEGER,
            reason TEXT,
            error TEXT,
            at TEXT NOT NULL,
            UNIQUE (run_id, case_key, model_a, model_b)
        );
        CREATE TABLE votes (
            id INTEGER PRIMARY KEY,
            match_id INTEGER NOT NULL REFERENCES arena_matches(id),
            run_id TEXT NOT NULL,
            voter TEXT NOT NULL,
            winner TEXT NOT NULL,
            at TEXT NOT NULL,
            UNIQUE (match_id, voter)
        );
        """
    )


@migrations()
def m005_monitoring(db: sqlite_utils.Database) -> None:
    # Alerts are episodes: opened when a rule fires for a scope, closed when it stops. The
    # partial unique index allows one open alert per (rule, scope), so concurrent checkers can
    # never fire the same alert twice. alert_events is the append-only history (fired,
    # resolved, notified, notify_failed). export_cursors records how far the OTLP export got,
    # so a restarted exporter neither resends nor skips call rows.
    db.executescript(
        """
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            rule TEXT NOT NULL,
            scope TEXT NOT NULL,
            fired_at TEXT NOT NULL,
            resolved_at TEXT,
            value REAL,
            threshold REAL,
            last_value REAL,
            last_checked_at TEXT,
            message TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        CREATE UNIQUE INDEX alerts_one_open ON alerts (rule, scope) WHERE resolved_at IS NULL;
        CREATE TABLE alert_events (
            id INTEGER PRIMARY KEY,
            alert_id INTEGER NOT NULL REFERENCES alerts(id),
            kind TEXT NOT NULL,
            at TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX alert_events_alert ON alert_events (alert_id, id);
        CREATE TABLE export_cursors (
            name TEXT PRIMARY KEY,
            last_id INTEGER NOT NULL,
            updated_at TEXT NOT NULL
        );
        """
    )


@migrations()
def m006_deploy(db: sqlite_utils.Database) -> None:
    # Deployments move labels through the environments. A deployment row records the gate's
    # checks, who asked, who approved and what happened; the label move itself stays in
    # labels/label_history. deploy_locks holds one row per prompt while a deploy runs its gate,
    # so two deploys of one prompt cannot interleave (the loser is told who holds it). splits
    # are A/B tests and gradual rollouts: a second version served to a stable share of users;
    # the partial unique index allows one active split per prompt and environment.
    db.executescript(
        """
        CREATE TABLE deployments (
            id INTEGER PRIMARY KEY,
            prompt_id INTEGER NOT NULL REFERENCES prompts(id),
            environment TEXT NOT NULL,
            kind TEXT NOT NULL,
            from_version INTEGER,
            to_version INTEGER,
            status TEXT NOT NULL,
            forced INTEGER NOT NULL DEFAULT 0,
            skipped TEXT NOT NULL DEFAULT '[]',
            gate TEXT NOT NULL DEFAULT '{}',
            reason TEXT,
            requested_by TEXT NOT NULL,
            requested_at TEXT NOT NULL,
            decided_by TEXT,
            decided_at TEXT,
            error TEXT
        );
        CREATE INDEX deployments_env ON deployments (prompt_id, environment, id);
        CREATE TABLE deploy_locks (
            prompt_id INTEGER PRIMARY KEY REFERENCES prompts(id),
            deployment_id INTEGER,
            holder TEXT NOT NULL,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            acquired_at TEXT NOT NULL
        );
        CREATE TABLE splits (
            id INTEGER PRIMARY KEY,
            prompt_id INTEGER NOT NULL REFERENCES prompts(id),
            environment TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('ab', 'rollout')),
            version_a INTEGER NOT NULL,
            version_b INTEGER NOT NULL,
            percent REAL NOT NULL,
            salt TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at TEXT NOT NULL,
            started_by TEXT NOT NULL,
            ended_at TEXT,
            ended_by TEXT,
            outcome TEXT,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        CREATE UNIQUE INDEX splits_one_active ON splits (prompt_id, environment) WHERE status = 'active';
        """
    )


@migrations()
def m007_audit_key(db: sqlite_utils.Database) -> None:
    # The audit chain becomes an HMAC with a key kept outside the database, so the database file
    # alone is not enough to rewrite history. Rows written before have a plain SHA-256 chain;
    # this one row says where the keyed chain begins and the hash it continues from, and the last
    # version and label move the old chain may not have recorded in detail (from_version_id,
    # from_move_id), sealed with the key (seal), and which key that is (key_id: an HMAC of a
    # constant, never the key). The row is written when the store is first opened with a key
    # (store/audit.py, open_chain).
    db.executescript(
        """
        CREATE TABLE audit_keyed (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            from_row INTEGER NOT NULL,
            from_hash TEXT NOT NULL,
            from_version_id INTEGER NOT NULL,
            from_move_id INTEGER NOT NULL,
            key_id TEXT NOT NULL,
            seal TEXT NOT NULL,
            started_at TEXT NOT NULL
        );
        """
    )


@migrations()
def m008_unpriced_calls(db: sqlite_utils.Database) -> None:
    # A call to a model nobody has priced has an unknown cost, not a cost of $0: $0 let budgets and
    # cost alerts undercount in silence. `calls.cost_usd` becomes nullable (NULL = unpriced).
    # SQLite cannot drop a NOT NULL in place, so the table is rebuilt from its own stored
    # definition (whatever earlier migrations made it, CHECKs and UNIQUE included), rows copied
    # in order with their ids, and its indexes and triggers re-created from their stored SQL.
    table_sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'calls'").fetchone()[0]
    old = "cost_usd REAL NOT NULL DEFAULT 0"
    if old not in table_sql:
        raise RuntimeError("m008: calls.cost_usd is not defined as m003 made it; refusing to guess")
    extras = [sql for (sql,) in db.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'calls' AND type IN ('index', 'trigger') "
        "AND sql IS NOT NULL").fetchall()]
    # Views that read calls are dropped and re-made around the swap (SQLite checks them on RENAME).
    views = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view' AND sql LIKE '%calls%'").fetchall()
    for name, _ in views:
        db.execute(f'DROP VIEW "{name}"')
    columns = ", ".join(f'"{c.name}"' for c in db["calls"].columns)
    new_sql = table_sql.replace(old, "cost_usd REAL DEFAULT 0", 1)
    new_sql = new_sql.replace("CREATE TABLE calls", "CREATE TABLE calls_m008", 1).replace(
        'CREATE TABLE "calls"', "CREATE TABLE calls_m008", 1)
    db.execute(new_sql)
    db.execute(f"INSERT INTO calls_m008 ({columns}) SELECT {columns} FROM calls ORDER BY id")
    db.execute("DROP TABLE calls")
    db.execute("ALTER TABLE calls_m008 RENAME TO calls")
    for sql in extras + [sql for _, sql in views]:
        db.execute(sql)
    # Rows logged before: a served call (not a cache hit) that used tokens and cost exactly 0 was
    # a model without a price, priced at $0 by the old rule; it is unpriced. (A model that is
    # really free gets a price of 0 in config; its new calls are priced 0.)
    db.execute(
        "UPDATE calls SET cost_usd = NULL WHERE cost_usd = 0 AND status = 'ok' AND cache_hit = 0 "
        "AND input_tokens + output_tokens > 0")


@migrations()
def m009_result_criteria(db: sqlite_utils.Database) -> None:
    # The judge's score and one-sentence reason per criterion, kept with each result (a JSON
    # list of {criterion, score, percent, reason}), so "how did it do on tone?" has an answer
    # for a case and, averaged with json_each, for a run. Older results have none (NULL).
    db.execute("ALTER TABLE results ADD COLUMN criteria TEXT")


@migrations()
def m010_tokens(db: sqlite_utils.Database) -> None:
    # API tokens for a team server (`promstack token create NAME --role ROLE`). Only a SHA-256 of
    # each token is kept: a token is 256 random bits, so a fast hash is enough (no password
    # hashing), and someone who reads the file cannot sign in with what they read. A name is
    # unique among the live tokens, so a revoked token's name can be given to its replacement
    # (the same person keeps the same actor name in history); the revoked row stays as record.
    db.executescript(
        """
        CREATE TABLE tokens (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('viewer', 'runner', 'editor', 'deployer', 'admin')),
            hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            expires_at TEXT,
            revoked_at TEXT,
            revoked_by TEXT,
            last_used_at TEXT
        );
        CREATE UNIQUE INDEX tokens_live_name ON tokens (name) WHERE revoked_at IS NULL;
        """
    )


@migrations()
def m011_call_sources(db: sqlite_utils.Database) -> None:
    # Calls now reach the log from three places: the gateway, OpenTelemetry spans sent to
    # /v1/traces, and apps reporting the calls they made themselves. `source` says which
    # ('gateway', 'otlp', 'api'; every older row came through the gateway), `operation` is the
    # gen_ai operation a span names (chat, embeddings, ...), and `flags` (a JSON list, NULL when
    # none) marks what a reported row could not vouch for, such as a prompt id the store lacks:
    # stored and flagged rather than refused, so no call goes unlogged.
    # check_rounds: the scheduled checks `promstack serve` runs (alerts, budgets, rollouts). One
    # row per schedule holds the round last taken: a worker runs round N only if it moves the
    # row to N first, so two workers over one store never both run a round, and a restarted
    # server does not repeat the round that ran. The row also keeps what that round found.
    db.executescript(
        """
        ALTER TABLE calls ADD COLUMN source TEXT NOT NULL DEFAULT 'gateway';
        ALTER TABLE calls ADD COLUMN operation TEXT;
        ALTER TABLE calls ADD COLUMN flags TEXT;
        CREATE INDEX calls_source ON calls (source, timestamp);
        CREATE TABLE check_rounds (
            name TEXT PRIMARY KEY,
            round INTEGER NOT NULL,
            holder TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            result TEXT
        );
        """
    )


@migrations()
def m012_version_checks(db: sqlite_utils.Database) -> None:
    # A quick check of every new version of a prompt that has a tied suite (promstack.evals.check):
    # one row per version, written with the version ('pending', or 'no_suite' when nothing is
    # tied), claimed by one checker with a lease (lease_owner, lease_until in epoch seconds) so
    # two processes over one store check a version once, and finished with the annotation
    # (result JSON) and what it cost (summed per day for [check] daily_budget_usd).
    db.executescript(
        """
        CREATE TABLE version_checks (
            prompt_id INTEGER NOT NULL,
            version INTEGER NOT NULL,
            branch TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            lease_owner TEXT,
            lease_until REAL,
            finished_at TEXT,
            cost_usd REAL,
            result TEXT,
            PRIMARY KEY (prompt_id, version)
        );
        CREATE INDEX version_checks_status ON version_checks (status);
        CREATE INDEX version_checks_finished ON version_checks (finished_at);
        """
    )


@migrations()
def m013_jobs(db: sqlite_utils.Database) -> None:
    # The server's long operations (a judge pass, an arena, evaluate, a test run started over
    # REST), so that a poll answered by any worker of `promstack serve --workers N`, or by the
    # server after a restart, finds them (store/jobs.py). `holder` is the worker running it
    # (host:pid:nonce); it renews lease_until (epoch seconds) while it runs, so a job whose
    # worker died reads as failed. run_id: the store run the job made, once it has one.
    db.executescript(
        """
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            actor TEXT,
            status TEXT NOT NULL,
            done INTEGER NOT NULL DEFAULT 0,
            total INTEGER,
            result TEXT,
            error TEXT,
            run_id TEXT,
            holder TEXT NOT NULL,
            lease_until REAL NOT NULL,
            started_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX jobs_run ON jobs (run_id);
        CREATE INDEX jobs_finished ON jobs (status, started_at);
        """
    )
