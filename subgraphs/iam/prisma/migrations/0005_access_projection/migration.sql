-- The consumer tables of iam's own durable consumer `iam-access-projection`, which keeps the
-- access read model (JetStream KV) current from iam's events: @aifactory/event-consumers'
-- CONSUMER_TABLES_SQL('iam'), verbatim but for the schema, which the runner's search_path names.

CREATE TABLE IF NOT EXISTS processed_events (
  consumer          text        NOT NULL,
  event_id          uuid        NOT NULL,
  aggregate_type    text        NOT NULL,
  aggregate_id      text        NOT NULL,
  aggregate_version integer     NOT NULL CHECK (aggregate_version > 0),
  outcome           text        NOT NULL CHECK (outcome IN ('applied', 'skipped')),
  processed_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);

CREATE TABLE IF NOT EXISTS aggregate_versions (
  consumer       text    NOT NULL,
  aggregate_type text    NOT NULL,
  aggregate_id   text    NOT NULL,
  version        integer NOT NULL CHECK (version >= 0),
  PRIMARY KEY (consumer, aggregate_type, aggregate_id)
);

CREATE TABLE IF NOT EXISTS dead_letters (
  consumer   text        NOT NULL,
  event_id   text        NOT NULL,
  subject    text        NOT NULL,
  envelope   jsonb       NOT NULL,
  reason     text        NOT NULL,
  detail     text,
  deliveries integer     NOT NULL CHECK (deliveries > 0),
  dead_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);
