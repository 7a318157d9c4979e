import type { ParleyClient, Schemas } from "./client.js";
import { ParleyError } from "./errors.js";

/** Ephemeral events' data (contract v1.1): no id, never replayed. */
export type Typing = Schemas["Typing"];
export type MemberRead = Schemas["MemberRead"];
export type Presence = Schemas["Presence"];

/** Durable events: `id` is the room's seq, or a user stream's cursor. */
export type DurableEvent =
  | { type: "message"; id: string; data: Schemas["Message"] }
  | { type: "member.joined"; id: string; data: Schemas["MemberJoined"] }
  | { type: "member.left"; id: string; data: Schemas["MemberLeft"] }
  | { type: "room.updated"; id: string; data: Schemas["RoomUpdated"] }
  | { type: "room.deleted"; id: string; data: Schemas["RoomDeleted"] }
  | { type: "message.edited"; id: string; data: Schemas["MessageEdited"] }
  | { type: "message.deleted"; id: string; data: Schemas["MessageDeleted"] }
  | { type: "reaction.added"; id: string; data: Schemas["ReactionAdded"] }
  | { type: "reaction.removed"; id: string; data: Schemas["ReactionRemoved"] };

/** Events without an id. */
export type EphemeralEvent =
  | { type: "typing"; data: Typing }
  | { type: "member.read"; data: MemberRead }
  | { type: "presence"; data: Presence };

/** What the stream helper delivers; `ready` data differs per stream. */
export type StreamEvent<Ready> =
  | DurableEvent
  | EphemeralEvent
  | { type: "ready"; data: Ready }
  | { type: "reauth"; data: Schemas["Reauth"] };

export type RoomStreamEvent = StreamEvent<Schemas["Ready"]>;
export type UserStreamEvent = StreamEvent<Schemas["UserReady"]>;

const durableTypes = [
  "message",
  "member.joined",
  "member.left",
  "room.updated",
  "room.deleted",
  "message.edited",
  "message.deleted",
  "reaction.added",
  "reaction.removed",
] as const;
const otherTypes = ["ready", "reauth", "typing", "member.read", "presence"] as const;
type KnownType = (typeof durableTypes)[number] | (typeof otherTypes)[number];

/** The part of the browser's EventSource the helper uses. */
export interface EventSourceLike {
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  close(): void;
}
export type EventSourceConstructor = new (url: string) => EventSourceLike;

export interface StreamOptions<E> {
  /** Resume after this id (a seq, or a user stream cursor); unset: live. */
  after?: string;
  /** Every event, in order. Types the helper does not know are ignored. */
  onEvent: (event: E) => void;
  /** The stream stopped for good: 403, 404, 422, or a session that is over. */
  onError?: (error: unknown) => void;
  /** The helper is reconnecting, for this reason, after waiting this long. */
  onReconnect?: (reason: string, waitMs: number) => void;
  /** The EventSource to use (default: globalThis.EventSource). */
  EventSource?: EventSourceConstructor;
  /** First reconnect delay (default 1000 ms, Parley's retry:), doubling up to maxBackoffMs (30 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface StreamHandle {
  /** Stops the stream: no event is delivered after it. */
  close(): void;
  /** The id to resume after: the last durable event's, or the last ready's position. */
  lastId(): string;
}

/** Opens GET /v1/rooms/{room_id}/events. */
export function openRoomStream(client: ParleyClient, roomId: string, options: StreamOptions<RoomStreamEvent>): StreamHandle {
  return openStream(client, roomId, options, (data) => {
    const r = data as Schemas["Ready"];
    return r.last_seq > 0 ? String(r.last_seq) : "";
  });
}

/** Opens GET /v1/events, the user's events from all their rooms. */
export function openUserStream(client: ParleyClient, options: StreamOptions<UserStreamEvent>): StreamHandle {
  return openStream(client, null, options, (data) => (data as Schemas["UserReady"]).cursor);
}

/**
 * The reconnect flow the contract gives browsers: each connection is a new
 * EventSource opened with a fresh single-use ticket and `after=<last id>`;
 * on `error` the EventSource is closed (it would retry the used ticket) and
 * a new one opened after a backoff; after `reauth` at once (minting the
 * ticket refreshes the session). EventSource does not expose the status of
 * a refused stream, so after a connection that never opened a room stream
 * checks the caller's membership (GET members) and stops on its 403 or 404.
 */
function openStream<E extends StreamEvent<unknown>>(
  client: ParleyClient,
  roomId: string | null,
  options: StreamOptions<E>,
  readyPosition: (data: unknown) => string,
): StreamHandle {
  const ES = options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource;
  if (!ES) throw new Error("no EventSource: pass options.EventSource");
  const path = roomId === null ? "/v1/events" : `/v1/rooms/${encodeURIComponent(roomId)}/events`;
  const minMs = options.minBackoffMs ?? 1000;
  const maxMs = options.maxBackoffMs ?? 30000;
  let lastId = options.after ?? "";
  let closed = false;
  let source: EventSourceLike | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let failures = 0;

  const stop = (error?: unknown): void => {
    if (closed) return;
    closed = true;
    source?.close();
    source = null;
    if (timer) clearTimeout(timer);
    if (error !== undefined) options.onError?.(error);
  };

  const backoff = (): number => {
    const d = Math.min(maxMs, minMs * 2 ** Math.min(failures, 30));
    failures++;
    return d / 2 + Math.random() * (d / 2);
  };

  const retry = (reason: string, waitMs: number): void => {
    if (closed) return;
    source?.close();
    source = null;
    options.onReconnect?.(reason, waitMs);
    timer = setTimeout(() => {
      timer = null;
      void connect();
    }, waitMs);
  };

  const terminal = (err: unknown): boolean =>
    err instanceof ParleyError && (err.status === 401 || err.status === 403 || err.status === 404 || err.status === 422);

  const connect = async (): Promise<void> => {
    let ticket: string;
    try {
      ticket = await client.streamTicket();
    } catch (err) {
      if (terminal(err)) return stop(err);
      return retry(`ticket: ${String(err)}`, Math.max(err instanceof ParleyError ? err.retryAfterMs : 0, backoff()));
    }
    if (closed) return;
    const q = new URLSearchParams({ ticket });
    if (lastId) q.set("after", lastId);
    const es = new ES(`${client.baseUrl}${path}?${q.toString()}`);
    source = es;
    let opened = false;
    es.addEventListener("open", () => {
      opened = true;
    });
    const deliver = (type: KnownType, ev: MessageEvent): void => {
      if (closed || source !== es) return;
      let data: unknown;
      try {
        data = JSON.parse(String(ev.data));
      } catch (err) {
        return stop(err);
      }
      const durable = (durableTypes as readonly string[]).includes(type);
      if (durable && ev.lastEventId) lastId = ev.lastEventId;
      if (type === "ready") {
        failures = 0;
        const at = readyPosition(data);
        if (at) lastId = at;
      }
      const out = (durable ? { type, id: ev.lastEventId, data } : { type, data }) as E;
      options.onEvent(out);
      if (type === "reauth") retry("reauth", 0);
      else if (type === "room.deleted" && roomId !== null) stop();
    };
    for (const type of [...durableTypes, ...otherTypes]) {
      es.addEventListener(type, (ev) => deliver(type, ev));
    }
    es.addEventListener("error", (ev) => {
      if (closed || source !== es) return;
      es.close();
      source = null;
      const code = (ev as { code?: unknown }).code; // the eventsource polyfill's status; browsers have none
      if (typeof code === "number" && (code === 403 || code === 404 || code === 422)) {
        return stop(new ParleyError(code, { title: "Stream refused", status: code }));
      }
      if (!opened && roomId !== null) {
        void (async () => {
          const { response } = await client.api.GET("/v1/rooms/{room_id}/members", { params: { path: { room_id: roomId } } });
          if (response.status === 403 || response.status === 404) return stop(await ParleyError.from(response));
          retry("error", backoff());
        })().catch(() => retry("error", backoff()));
        return;
      }
      retry("error", opened ? Math.min(backoff(), minMs) : backoff());
    });
  };

  void connect();
  return { close: () => stop(), lastId: () => lastId };
}
