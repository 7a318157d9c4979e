// The user stream: every event of every room the user is in, on one
// EventSource. It opens with a single-use ticket (never a token in the
// URL); on any error it closes the EventSource (which would retry the same,
// used URL), mints a new ticket and reopens with ?after=<the last id seen>,
// so nothing is missed; on reauth it refreshes the session first.

// The durable events: each carries an id, the cursor to resume after it.
export const durableEvents = [
  "message", "message.edited", "message.deleted", "reaction.added", "reaction.removed",
  "member.joined", "member.left", "room.updated", "room.deleted",
];
// Ephemeral events carry no id and are never replayed.
export const ephemeralEvents = ["typing", "member.read", "presence"];

export class UserStream {
  // handlers: onEvent(type, data), onReady(firstTime), onState(state) with
  // state "connecting" | "live" | "down".
  constructor(api, handlers) {
    this.api = api;
    this.h = handlers;
    this.es = null;
    this.last = ""; // the last cursor seen: an event's id, or ready's cursor
    this.failures = 0;
    this.timer = 0;
    this.stopped = true;
    this.readyOnce = false;
    this.generation = 0; // ignores callbacks of an EventSource already closed
    this.reauths = 0; // how many times the stream ended with reauth
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.close();
    this.h.onState("off");
  }

  close() {
    this.generation++;
    if (this.es) this.es.close();
    this.es = null;
  }

  async open() {
    if (this.stopped) return;
    this.close();
    const gen = this.generation;
    this.h.onState("connecting");
    let ticket;
    try {
      ticket = await this.api.streamTicket();
    } catch {
      if (gen === this.generation) this.again();
      return;
    }
    if (gen !== this.generation || this.stopped) return;
    const url = new URL("/v1/events", this.api.base);
    url.searchParams.set("ticket", ticket);
    if (this.last) url.searchParams.set("after", this.last);
    const es = new EventSource(url);
    this.es = es;
    const mine = () => gen === this.generation;
    es.addEventListener("ready", (e) => {
      if (!mine()) return;
      this.last = JSON.parse(e.data).cursor;
      this.failures = 0;
      this.h.onState("live");
      const first = !this.readyOnce;
      this.readyOnce = true;
      this.h.onReady(first);
    });
    for (const type of durableEvents) {
      es.addEventListener(type, (e) => {
        if (!mine()) return;
        if (e.lastEventId) this.last = e.lastEventId;
        this.h.onEvent(type, JSON.parse(e.data));
      });
    }
    for (const type of ephemeralEvents) {
      // No id: e.lastEventId is the previous event's, older than ready's
      // cursor, so it must not move this.last.
      es.addEventListener(type, (e) => { if (mine()) this.h.onEvent(type, JSON.parse(e.data)); });
    }
    es.addEventListener("reauth", () => {
      if (!mine()) return;
      this.close();
      this.reauths++;
      this.h.onState("connecting");
      // The token that asked for this stream's ticket expired; the
      // session has usually moved on already (see Api.schedule).
      const ready = this.api.fresh() ? Promise.resolve() : this.api.refresh(this.api.session?.access_token);
      ready.then(() => this.open(), () => this.again());
    });
    es.onerror = () => {
      if (!mine()) return;
      this.close();
      this.again();
    };
  }

  // again reopens after a pause that grows with each failure in a row
  // (0.5 s, 1 s, 2 s ... 8 s, with jitter so a restarted server is not
  // met by every client at once).
  again() {
    if (this.stopped) return;
    this.h.onState("down");
    const delay = Math.min(500 * 2 ** this.failures, 8000) * (0.75 + Math.random() / 2);
    this.failures++;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), delay);
  }
}
