// The one module that talks to the daemon: every fetch and the live feed.
// Nothing else in the UI calls fetch or EventSource.

import type {
  Connection,
  Delivery,
  DeliveryDetail,
  EventDetail,
  EventPage,
  EventSummary,
  ForwardRequest,
  ForwardResponse,
  Health,
  IngestOutcome,
  NotificationSettings,
  NotificationStatus,
  NewRelay,
  NewSink,
  RelayInfo,
  Retention,
  RetentionInfo,
  SecretMeta,
  SecretsResponse,
  Sink,
  VolumeResponse,
} from './types';

export * from './types';

/** An error answer `{code, message}` (or a network failure, code `network`). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
  /** The daemon has no such endpoint yet (an older or partial build). */
  get missingEndpoint(): boolean {
    return this.status === 404 && this.code === 'no_route';
  }
  get unauthorized(): boolean {
    return this.status === 401;
  }
}

type Fetch = typeof fetch;
type Listener = () => void;

/** Parameters for the events list / live feed. Empty values are dropped. */
export type Params = Record<string, string | number | boolean | undefined | null>;

export function queryString(params: Params): string {
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    sp.set(k, String(v));
  }
  const s = sp.toString();
  return s ? `?${s}` : '';
}

export class Client {
  private unauthorizedListeners = new Set<Listener>();

  constructor(
    private readonly fetchImpl: Fetch = (...a) => fetch(...a),
    private readonly base = '',
  ) {}

  /** Called whenever any request answers 401 (the UI shows "not signed in"). */
  onUnauthorized(fn: Listener): () => void {
    this.unauthorizedListeners.add(fn);
    return () => this.unauthorizedListeners.delete(fn);
  }

  async request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    let resp: Response;
    try {
      resp = await this.fetchImpl(this.base + path, {
        method,
        credentials: 'same-origin',
        headers: body === undefined ? { Accept: 'application/json' } : { Accept: 'application/json', 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (e) {
      if ((e as Error)?.name === 'AbortError') throw e;
      throw new ApiError(0, 'network', `cannot reach the Kite Desk daemon (${(e as Error)?.message ?? e})`);
    }
    const text = await resp.text();
    let json: unknown = undefined;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    if (!resp.ok) {
      const j = (json ?? {}) as { code?: unknown; message?: unknown };
      const err = new ApiError(
        resp.status,
        typeof j.code === 'string' ? j.code : `http_${resp.status}`,
        typeof j.message === 'string' ? j.message : `${resp.status} ${resp.statusText}`.trim(),
      );
      if (err.unauthorized) this.unauthorizedListeners.forEach((f) => f());
      throw err;
    }
    return json as T;
  }

  // Events
  listEvents(params: Params, signal?: AbortSignal): Promise<EventPage> {
    return this.request('GET', `/api/events${queryString(params)}`, undefined, signal);
  }
  getEvent(id: string | number): Promise<EventDetail> {
    return this.request('GET', `/api/events/${encodeURIComponent(String(id))}`);
  }
  volume(params: { from?: string; to?: string; bucket?: number } = {}): Promise<VolumeResponse> {
    return this.request('GET', `/api/stats/volume${queryString(params)}`);
  }
  health(): Promise<Health> {
    return this.request('GET', '/api/health');
  }
  sendTestEvent(source: string): Promise<IngestOutcome> {
    return this.request('POST', `/api/test-events/${encodeURIComponent(source)}`);
  }

  // Forwarding and the outbox
  sinks(): Promise<{ sinks: Sink[] }> {
    return this.request('GET', '/api/sinks');
  }
  addSink(s: NewSink): Promise<Sink> {
    return this.request('POST', '/api/sinks', s);
  }
  removeSink(name: string): Promise<void> {
    return this.request('DELETE', `/api/sinks/${encodeURIComponent(name)}`);
  }
  forward(req: ForwardRequest): Promise<ForwardResponse> {
    return this.request('POST', '/api/forward', req);
  }
  deliveries(params: Params): Promise<{ deliveries: Delivery[]; next_cursor?: string }> {
    return this.request('GET', `/api/deliveries${queryString(params)}`);
  }
  delivery(id: number): Promise<DeliveryDetail> {
    return this.request('GET', `/api/deliveries/${id}`);
  }
  eventDeliveries(eventId: number): Promise<{ deliveries: Delivery[] }> {
    return this.request('GET', `/api/events/${eventId}/deliveries`);
  }
  retryDelivery(id: number): Promise<Delivery> {
    return this.request('POST', `/api/deliveries/${id}/retry`);
  }
  retryAll(status: 'dead' | undefined = 'dead'): Promise<{ retried: number }> {
    return this.request('POST', '/api/deliveries/retry', status ? { status } : {});
  }

  // Secrets
  secrets(): Promise<SecretsResponse> {
    return this.request('GET', '/api/secrets');
  }
  addSecret(s: { name: string; kind: string; source?: string; value: string }): Promise<SecretMeta> {
    return this.request('POST', '/api/secrets', s);
  }
  rotateSecret(name: string, value: string, grace_hours?: number): Promise<SecretMeta> {
    return this.request('POST', `/api/secrets/${encodeURIComponent(name)}/rotate`, { value, grace_hours });
  }
  revealSecret(name: string): Promise<{ value: string }> {
    return this.request('POST', `/api/secrets/${encodeURIComponent(name)}/reveal`);
  }
  deleteSecret(name: string): Promise<void> {
    return this.request('DELETE', `/api/secrets/${encodeURIComponent(name)}`);
  }

  // Notifications
  notificationSettings(): Promise<NotificationSettings> {
    return this.request('GET', '/api/settings/notifications');
  }
  saveNotificationSettings(s: NotificationSettings): Promise<NotificationSettings> {
    return this.request('PUT', '/api/settings/notifications', s);
  }
  pauseNotifications(body: { minutes?: number; until_tomorrow?: boolean }): Promise<unknown> {
    return this.request('POST', '/api/notifications/pause', body);
  }
  resumeNotifications(): Promise<unknown> {
    return this.request('POST', '/api/notifications/resume');
  }
  notificationStatus(): Promise<NotificationStatus> {
    return this.request('GET', '/api/notifications/status');
  }

  // Relay links and retention (Settings)
  relays(): Promise<{ relays: RelayInfo[] }> {
    return this.request('GET', '/api/relays');
  }
  addRelay(r: NewRelay): Promise<RelayInfo> {
    return this.request('POST', '/api/relays', r);
  }
  removeRelay(name: string): Promise<void> {
    return this.request('DELETE', `/api/relays/${encodeURIComponent(name)}`);
  }
  retention(): Promise<RetentionInfo> {
    return this.request('GET', '/api/settings/retention');
  }
  saveRetention(r: Retention | { reset: true }): Promise<RetentionInfo> {
    return this.request('PUT', '/api/settings/retention', r);
  }

  /** The live feed; see {@link LiveFeed}. */
  live(params: Params, handlers: LiveHandlers, opts: LiveOptions = {}): LiveFeed {
    return new LiveFeed(this.base, params, handlers, opts);
  }
}

export type LiveState = 'connecting' | 'live' | 'reconnecting';

export interface LiveHandlers {
  event?: (e: EventSummary) => void;
  connection?: (c: Connection) => void;
  /** The feed caught up (after the first connect and every reconnect). */
  ready?: () => void;
  state?: (s: LiveState) => void;
}

export interface LiveOptions {
  /** Resume after this event id (events after it are replayed). */
  after?: number;
  EventSourceImpl?: typeof EventSource;
  /** Reconnect backoff: first delay and ceiling (ms). */
  minDelay?: number;
  maxDelay?: number;
}

/**
 * `GET /api/stream` with reconnect: on any error the source is closed and
 * reopened with `after=<last id seen>` after a growing delay (plus jitter),
 * so a daemon restart loses nothing and the UI does not hammer it.
 */
export class LiveFeed {
  private es: EventSource | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private delay: number;
  private closed = false;
  lastId: number | undefined;

  constructor(
    private readonly base: string,
    private readonly params: Params,
    private readonly handlers: LiveHandlers,
    private readonly opts: LiveOptions = {},
  ) {
    this.lastId = opts.after;
    this.delay = opts.minDelay ?? 500;
    this.open();
  }

  private url(): string {
    const p: Params = { ...this.params };
    if (this.lastId !== undefined) p.after = this.lastId;
    return `${this.base}/api/stream${queryString(p)}`;
  }

  private open(): void {
    if (this.closed) return;
    const Impl = this.opts.EventSourceImpl ?? EventSource;
    this.handlers.state?.('connecting');
    const es = new Impl(this.url(), { withCredentials: true });
    this.es = es;
    es.addEventListener('event', (m) => {
      const msg = m as MessageEvent;
      try {
        const e = JSON.parse(msg.data) as EventSummary;
        if (this.lastId === undefined || e.id > this.lastId) this.lastId = e.id;
        this.handlers.event?.(e);
      } catch {
        /* a malformed frame is skipped */
      }
    });
    es.addEventListener('connection', (m) => {
      try {
        this.handlers.connection?.(JSON.parse((m as MessageEvent).data) as Connection);
      } catch {
        /* skipped */
      }
    });
    es.addEventListener('ready', (m) => {
      try {
        const r = JSON.parse((m as MessageEvent).data) as { last_id?: number };
        if (typeof r.last_id === 'number' && (this.lastId === undefined || r.last_id > this.lastId)) {
          this.lastId = r.last_id;
        }
      } catch {
        /* skipped */
      }
      this.delay = this.opts.minDelay ?? 500;
      this.handlers.state?.('live');
      this.handlers.ready?.();
    });
    es.onerror = () => {
      // EventSource retries on its own but gives up on HTTP errors and keeps
      // the original URL (without our resume point): take over.
      es.close();
      if (this.es !== es || this.closed) return;
      this.es = null;
      this.handlers.state?.('reconnecting');
      const jitter = Math.random() * this.delay * 0.3;
      this.timer = setTimeout(() => this.open(), this.delay + jitter);
      this.delay = Math.min(this.delay * 2, this.opts.maxDelay ?? 10_000);
    };
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.es?.close();
    this.es = null;
  }
}

/** The client the app uses (same origin as the page). */
export const api = new Client();
