// The API client: JSON over fetch with a bearer token, one refresh at a
// time when the token is refused, and the session kept in sessionStorage
// (this tab only; it is gone when the tab closes).

const sessionKey = "parley.session";

// ApiError is a problem+json answer (or a network failure: status 0).
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || (status ? `HTTP ${status}` : "network error"));
    this.status = status;
    this.problem = problem;
    this.retryAfter = 0;
  }
}

export class Api {
  constructor(base) {
    this.base = base;
    this.session = null; // {user, access_token, refresh_token, ...}
    this.refreshing = null; // the refresh in flight, shared by all callers
    this.onLogout = () => {};
    this.timer = 0;
    try {
      const saved = sessionStorage.getItem(sessionKey);
      if (saved) this.session = JSON.parse(saved);
    } catch {
      this.session = null;
    }
    if (this.session) this.schedule();
  }

  get user() { return this.session?.user; }

  keep(session) {
    // expires_at: when the access token runs out, by this browser's clock.
    this.session = { ...session, expires_at: Date.now() + session.expires_in * 1000 };
    sessionStorage.setItem(sessionKey, JSON.stringify(this.session));
    this.schedule();
  }

  forget() {
    clearTimeout(this.timer);
    this.session = null;
    sessionStorage.removeItem(sessionKey);
  }

  // schedule refreshes the session when 80% of the access token's life
  // has passed, so calls seldom meet a 401 (which the browser logs as an
  // error) and the stream's reauth finds a fresh token waiting.
  schedule() {
    clearTimeout(this.timer);
    const token = this.session.access_token;
    const left = this.session.expires_at - Date.now();
    const life = this.session.expires_in * 1000;
    const tick = (delay) => {
      this.timer = setTimeout(() => {
        // Failed (the API unreachable, say): try again while the session
        // still holds that token.
        this.refresh(token).catch(() => { if (this.session?.access_token === token) tick(5000); });
      }, delay);
    };
    tick(Math.max(0, left - life * 0.2));
  }

  // fresh is true while the access token has more than a fifth of its
  // life (and at least 5 s) left.
  fresh() {
    const s = this.session;
    return Boolean(s) && s.expires_at - Date.now() > Math.max(5000, s.expires_in * 200);
  }

  // send makes one request and answers the decoded body (undefined for
  // 204); a non-2xx answer throws ApiError.
  async send(method, path, body, token) {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    let resp;
    try {
      resp = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, { detail: `cannot reach the API (${e.message})` });
    }
    if (resp.status === 204) return undefined;
    const text = await resp.text();
    let data;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = { detail: text.slice(0, 200) };
    }
    if (!resp.ok) {
      const err = new ApiError(resp.status, data);
      err.retryAfter = Number(resp.headers.get("Retry-After")) || 0;
      throw err;
    }
    return data;
  }

  // call is send with the session's access token; a 401 refreshes the
  // session once (shared with every other call refused meanwhile) and
  // tries again.
  async call(method, path, body) {
    const token = this.session?.access_token;
    if (!token) throw new ApiError(401, { detail: "not logged in" });
    try {
      return await this.send(method, path, body, token);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 401) throw e;
      await this.refresh(token);
      return this.send(method, path, body, this.session.access_token);
    }
  }

  // refresh rotates the session, once however many callers ask: a second
  // refresh with the same refresh token would count as reuse and revoke the
  // whole session. stale is the access token that was refused: when the
  // session already moved past it, there is nothing to do.
  refresh(stale) {
    if (stale && this.session && this.session.access_token !== stale) return Promise.resolve();
    if (!this.refreshing) {
      const refreshToken = this.session?.refresh_token;
      this.refreshing = (async () => {
        try {
          if (!refreshToken) throw new ApiError(401, { detail: "not logged in" });
          this.keep(await this.send("POST", "/v1/auth/refresh", { refresh_token: refreshToken }));
        } catch (e) {
          if (e instanceof ApiError && e.status === 401) {
            this.forget();
            this.onLogout("Your session ended: log in again.");
          }
          throw e;
        } finally {
          this.refreshing = null;
        }
      })();
    }
    return this.refreshing;
  }

  async register(username, password) {
    this.keep(await this.send("POST", "/v1/auth/register", { username, password }));
  }

  async login(username, password) {
    this.keep(await this.send("POST", "/v1/auth/login", { username, password }));
  }

  async logout() {
    const refreshToken = this.session?.refresh_token;
    clearTimeout(this.timer);
    this.forget();
    if (refreshToken) await this.send("POST", "/v1/auth/logout", { refresh_token: refreshToken }).catch(() => {});
  }

  // streamTicket mints a single-use ticket for one EventSource URL, so
  // the access token never goes into a URL.
  async streamTicket() {
    return (await this.call("POST", "/v1/stream-tickets")).ticket;
  }

  // post sends a message, retrying with the same client_id until the API
  // answers: a retry of a post that was stored answers 200 with it, so a
  // message is never doubled. It gives up on a 4xx other than 429.
  async post(roomId, body, clientId, replyTo, onRetry) {
    const payload = { body, client_id: clientId };
    if (replyTo) payload.reply_to = replyTo;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.call("POST", `/v1/rooms/${roomId}/messages`, payload);
      } catch (e) {
        const retriable = e instanceof ApiError && (e.status === 0 || e.status === 429 || e.status >= 500);
        if (!retriable || !this.session) throw e;
        onRetry?.(e);
        const wait = e.retryAfter ? e.retryAfter * 1000 : Math.min(500 * 2 ** attempt, 5000);
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }
}

// newClientId is a random idempotency key (crypto.randomUUID needs a
// secure context; getRandomValues does not).
export function newClientId() {
  const b = crypto.getRandomValues(new Uint8Array(12));
  return "demo-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
