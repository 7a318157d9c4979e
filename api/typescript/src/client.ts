import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema.js";
import { ParleyError, unwrap } from "./errors.js";

/** The API's schemas by name: Schemas["Message"], Schemas["Room"], ... */
export type Schemas = components["schemas"];
/** A session from register, login or refresh. */
export type Session = Schemas["Session"];

export interface ParleyClientOptions {
  /** The server, e.g. "https://chat.example.com". */
  baseUrl: string;
  /** A session to start with (say, one stored by onSession). */
  session?: Session;
  /** Told of every new session (login, register, refresh), e.g. to store it. */
  onSession?: (session: Session) => void;
  /** The fetch to call through (default: globalThis.fetch). */
  fetch?: typeof globalThis.fetch;
}

/**
 * A Parley client: `api` is an openapi-fetch client typed from openapi.yaml
 * that sends the session's access token and, on a 401, refreshes the
 * session once and repeats the call. Concurrent 401s share one refresh:
 * Parley takes a second refresh with the same refresh token for a stolen
 * one and revokes the session.
 */
export interface ParleyClient {
  readonly baseUrl: string;
  readonly api: Client<paths>;
  /** The current session, or null before login. */
  session(): Session | null;
  login(username: string, password: string): Promise<Session>;
  register(body: Schemas["RegisterRequest"]): Promise<Session>;
  /** Logs out: the session's refresh token stops working. */
  logout(): Promise<void>;
  /**
   * Refreshes the session unless the rejected access token was replaced
   * already; calls during a refresh wait for it. Returns the new token.
   */
  refresh(rejected: string): Promise<string>;
  /** Mints a single-use stream ticket (POST /v1/stream-tickets). */
  streamTicket(): Promise<string>;
}

const authPath = /\/v1\/auth\//;

export function createParleyClient(options: ParleyClientOptions): ParleyClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, "");
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  let current: Session | null = options.session ?? null;
  let inflight: Promise<string> | null = null;
  // A refusal of the refresh token: the session is over.
  let dead: ParleyError | null = null;
  // Each authenticated request's copy, to repeat it after a refresh.
  const copies = new Map<string, Request>();

  const api = createClient<paths>({ baseUrl, fetch: fetchImpl });

  const setSession = (s: Session | null): void => {
    current = s;
    dead = null;
    if (s && options.onSession) options.onSession(s);
  };

  const refresh = (rejected: string): Promise<string> => {
    if (dead) return Promise.reject(dead);
    if (!current) return Promise.reject(new ParleyError(401, { title: "Unauthorized", status: 401, detail: "no session" }));
    if (current.access_token !== rejected) return Promise.resolve(current.access_token);
    if (!inflight) {
      const refreshToken = current.refresh_token;
      inflight = (async () => {
        try {
          const s = await unwrap(api.POST("/v1/auth/refresh", { body: { refresh_token: refreshToken } }));
          setSession(s);
          return s.access_token;
        } catch (err) {
          if (err instanceof ParleyError && err.status >= 400 && err.status < 500) dead = err;
          throw err;
        }
      })().finally(() => {
        inflight = null;
      });
    }
    return inflight;
  };

  const auth: Middleware = {
    onRequest({ request, id }) {
      if (authPath.test(new URL(request.url).pathname) || !current) return undefined;
      request.headers.set("Authorization", `Bearer ${current.access_token}`);
      copies.set(id, request.clone());
      return request;
    },
    async onResponse({ response, id }) {
      const copy = copies.get(id);
      copies.delete(id);
      if (response.status !== 401 || !copy) return undefined;
      const used = (copy.headers.get("Authorization") ?? "").replace(/^Bearer /, "");
      let fresh: string;
      try {
        fresh = await refresh(used);
      } catch {
        return undefined; // the caller gets its 401
      }
      copy.headers.set("Authorization", `Bearer ${fresh}`);
      return fetchImpl(copy);
    },
    onError({ id }) {
      copies.delete(id);
    },
  };
  api.use(auth);

  return {
    baseUrl,
    api,
    session: () => current,
    async login(username, password) {
      const s = await unwrap(api.POST("/v1/auth/login", { body: { username, password } }));
      setSession(s);
      return s;
    },
    async register(body) {
      const s = await unwrap(api.POST("/v1/auth/register", { body }));
      setSession(s);
      return s;
    },
    async logout() {
      if (!current) return;
      await unwrap(api.POST("/v1/auth/logout", { body: { refresh_token: current.refresh_token } }));
      current = null;
    },
    refresh,
    async streamTicket() {
      const t = await unwrap(api.POST("/v1/stream-tickets"));
      return t.ticket;
    },
  };
}
