// Wire types of the daemon API (see CONTRACTS.md and crates/daemon/src/api.rs).

export type Importance = 'low' | 'normal' | 'high' | 'critical';
export const IMPORTANCE: Importance[] = ['low', 'normal', 'high', 'critical'];

export interface EventSummary {
  id: number;
  received_at: string;
  time: string;
  source_name: string;
  source: string;
  type: string;
  event_id: string;
  summary: string;
  importance: Importance;
  importance_reason: string;
  verified: boolean;
  verify_reason: string;
  seq?: number;
}

export interface EventPage {
  events: EventSummary[];
  next_cursor?: string;
}

export interface EventDetail extends EventSummary {
  cloudevent: Record<string, unknown>;
  /** Original headers as [name, value] pairs. */
  headers: [string, string][] | Record<string, string>;
  payload: string;
}

export interface IngestOutcome {
  id: number;
  event_id: string;
  status: 'accepted' | 'duplicate_ignored' | string;
  importance: Importance;
  verified: boolean;
  summary: string;
}

export interface VolumeBucket {
  source: string;
  start_ms: number;
  count: number;
}
export interface VolumeResponse {
  from: string;
  to: string;
  bucket_secs: number;
  buckets: VolumeBucket[];
}

export interface Connection {
  name: string;
  kind: 'ingress' | 'relay';
  url: string;
  /** `removed`: only on the live feed, for a relay link just removed (drop it). */
  state: 'connected' | 'reconnecting' | 'offline' | 'cursor_expired' | 'removed';
  since: string;
  last_seq?: number;
  gap?: { from: number; to: number };
  error?: string;
}

export interface SourceHealth {
  name: string;
  type: string;
  hook_url: string;
  verification: string;
}

export interface Health {
  status: string;
  version: string;
  events: number;
  data_dir: string;
  hook_base: string;
  sources: SourceHealth[];
  connections?: Connection[];
}

export interface Sink {
  name: string;
  kind: 'http' | 'exec' | 'file' | 'socket';
  target: string;
  /** `manifest` (kite.json; read-only) or `api` (added in Settings; removable). */
  origin?: 'manifest' | 'api';
  resign_scheme?: ResignScheme;
  /** The keychain secret it re-signs with (a name, never the value). */
  secret_name?: string;
  timeout_ms?: number;
  envelope?: boolean;
  added_at?: string;
  /** Why it cannot be used now (e.g. its secret is missing). */
  error?: string;
}

/** `POST /api/sinks`: an HTTP sink (exec sinks come only from kite.json). */
export interface NewSink {
  name: string;
  url: string;
  timeout_ms?: number;
  envelope?: boolean;
  /** `secret` goes to the keychain as `secret_name` (default `sink/<name>`). */
  resign?: { scheme: ResignScheme; secret_name?: string; secret?: string } | null;
}

export interface Attempt {
  n: number;
  started_at: string;
  status_code?: number;
  latency_ms: number;
  ok: boolean;
  error?: string;
  response_body: string;
  stderr?: string;
}

export type DeliveryStatus = 'pending' | 'delivering' | 'delivered' | 'dead';
export interface Delivery {
  id: number;
  event_id: number;
  ce_id: string;
  sink: string;
  target: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at?: string;
  created_at: string;
  updated_at: string;
  last?: Attempt | null;
}
export interface DeliveryDetail extends Delivery {
  attempt_log: Attempt[];
}

export type ResignScheme = 'github' | 'stripe' | 'kiket' | 'standard-webhooks';
export type ForwardTarget =
  | { url: string; resign?: { scheme: ResignScheme; secret: string }; envelope?: boolean }
  | { sink: string };

export interface ForwardRequest {
  event_ids?: number[];
  filter?: Record<string, string>;
  target: ForwardTarget;
  dry_run?: boolean;
}
export interface ForwardResponse {
  count: number;
  deliveries?: Delivery[];
}

export interface SecretMeta {
  name: string;
  kind: 'webhook' | 'relay_token' | 'api_token';
  source?: string;
  created_at: string;
  rotated_at?: string;
  last_used_at?: string;
  fingerprint: string;
  previous_valid_until?: string;
  age_days: number;
}
export interface SecretsResponse {
  secrets: SecretMeta[];
  health: { backend: string; error?: string; missing: string[]; old: string[] };
}

export interface NotificationSettings {
  threshold: Importance;
  quiet_hours: { enabled: boolean; start: string; end: string; critical_breaks_through: boolean };
  paused_until?: string | null;
  muted_sources: string[];
  muted_types: string[];
  group: { window_secs: number; max_individual: number };
  rate_limit_per_minute: number;
}
export interface NotificationStatus {
  backend: 'available' | 'unavailable';
  error?: string;
  paused_until?: string;
  sent_total: number;
  suppressed_total: number;
  last?: Record<string, unknown>;
}

/** A relay link in `GET /api/relays`: configured (kite.json/flags, read-only) or added through the API. */
export interface RelayInfo {
  name: string;
  url: string;
  team_id: string;
  scopes: string[];
  origin: 'config' | 'api';
  /** `keychain:relay/NAME` or `env`. */
  token_from: string;
  removable: boolean;
  added_at?: string;
  state?: string;
  error?: string;
}
/** `POST /api/relays`; the token goes to the keychain as `relay/<name>` and is never sent back. */
export interface NewRelay {
  name: string;
  url: string;
  team_id: string;
  scopes?: string[];
  token?: string;
}
/** `null`: no limit of that kind. */
export interface Retention {
  max_age_days: number | null;
  max_events: number | null;
}
export interface RetentionInfo extends Retention {
  origin: 'settings' | 'manifest';
  manifest: Retention;
  deleted?: number;
}
