import { test } from "node:test";
import assert from "node:assert/strict";
import { openRoomStream, openUserStream, ParleyError, unwrap, type ParleyClient, type RoomStreamEvent, type UserStreamEvent } from "../src/index.js";
import { accessTTLms, Inbox, NodeEventSource, registered, sleep } from "./helpers.js";

async function room(c: ParleyClient, name: string) {
  return unwrap(c.api.POST("/v1/rooms", { body: { name, visibility: "public" } }));
}

async function post(c: ParleyClient, roomId: string, body: string) {
  return unwrap(c.api.POST("/v1/rooms/{room_id}/messages", { params: { path: { room_id: roomId } }, body: { body } }));
}

async function untilReady<T extends { type: string }>(inbox: Inbox<T>): Promise<T[]> {
  const before: T[] = [];
  for (;;) {
    const ev = await inbox.next();
    if (ev.type === "ready") return before;
    before.push(ev);
  }
}

test("room stream: replay, live, typed events, resume with after= on a new EventSource", async () => {
  const alice = await registered("alice");
  const r = await room(alice, "general");
  const first = await post(alice, r.id, "before");
  const inbox = new Inbox<RoomStreamEvent>();
  const s = openRoomStream(alice, r.id, { after: "0", onEvent: inbox.push, EventSource: NodeEventSource });
  try {
    const replayed = await untilReady(inbox);
    assert.deepEqual(
      replayed.map((e) => e.type),
      ["member.joined", "message"],
    );
    const m = replayed[1];
    assert.ok(m && m.type === "message");
    assert.equal(m.data.id, first.id);
    assert.equal(m.id, String(first.seq));
    const live = await post(alice, r.id, "live");
    const ev = await inbox.next();
    assert.ok(ev.type === "message" && ev.data.body === "live" && ev.id === String(live.seq));
    assert.equal(s.lastId(), String(live.seq));
  } finally {
    s.close();
  }
  // Missed while closed, then resumed from lastId.
  const missed = await post(alice, r.id, "missed");
  const again = new Inbox<RoomStreamEvent>();
  const s2 = openRoomStream(alice, r.id, { after: s.lastId(), onEvent: again.push, EventSource: NodeEventSource });
  try {
    const replayed = await untilReady(again);
    assert.equal(replayed.length, 1);
    const ev = replayed[0];
    assert.ok(ev?.type === "message" && ev.data.id === missed.id);
  } finally {
    s2.close();
  }
});

test("room stream: reconnects after reauth with a new ticket and misses nothing", async () => {
  const ttl = accessTTLms();
  assert.ok(ttl > 0 && ttl <= 5000, "the server needs a short PARLEY_ACCESS_TTL");
  const alice = await registered("reader");
  const bob = await registered("poster");
  const r = await room(alice, "busy");
  await unwrap(bob.api.POST("/v1/rooms/{room_id}/join", { params: { path: { room_id: r.id } } }));
  const inbox = new Inbox<RoomStreamEvent>();
  const reasons: string[] = [];
  const s = openRoomStream(alice, r.id, {
    onEvent: inbox.push,
    onReconnect: (why) => reasons.push(why),
    EventSource: NodeEventSource,
  });
  try {
    await untilReady(inbox);
    const posted: string[] = [];
    const until = Date.now() + ttl + 1000;
    while (Date.now() < until) {
      posted.push((await post(bob, r.id, `m${posted.length}`)).id);
      await sleep(50);
    }
    const got: string[] = [];
    let reauth = false;
    while (got.length < posted.length) {
      const ev = await inbox.next();
      if (ev.type === "message") got.push(ev.data.id);
      else if (ev.type === "reauth") reauth = true;
      else assert.equal(ev.type, "ready");
    }
    assert.deepEqual(got, posted);
    assert.ok(reauth, "the token did not expire during the test");
    assert.ok(reasons.includes("reauth"));
  } finally {
    s.close();
  }
});

test("room stream: stops with a 403 after the user left", async () => {
  const alice = await registered("owner");
  const bob = await registered("leaver");
  const r = await room(alice, "leaving");
  await unwrap(bob.api.POST("/v1/rooms/{room_id}/join", { params: { path: { room_id: r.id } } }));
  const inbox = new Inbox<RoomStreamEvent>();
  const stopped = new Promise<unknown>((resolve) => {
    openRoomStream(bob, r.id, { onEvent: inbox.push, onError: resolve, EventSource: NodeEventSource, minBackoffMs: 50 });
  });
  await untilReady(inbox);
  await unwrap(bob.api.POST("/v1/rooms/{room_id}/leave", { params: { path: { room_id: r.id } } }));
  const left = await inbox.next();
  assert.ok(left.type === "member.left" && left.data.user_id === bob.session()?.user.id);
  const err = await stopped;
  assert.ok(err instanceof ParleyError && err.status === 403, `stopped with ${String(err)}`);
});

test("user stream: events of every room, resume with the ready cursor", async () => {
  const alice = await registered("many");
  const one = await room(alice, "one");
  const two = await room(alice, "two");
  const inbox = new Inbox<UserStreamEvent>();
  const s = openUserStream(alice, { onEvent: inbox.push, EventSource: NodeEventSource });
  let cursor: string;
  try {
    assert.deepEqual(await untilReady(inbox), []);
    cursor = s.lastId();
    assert.match(cursor, /^[A-Za-z0-9_-]{1,512}$/);
  } finally {
    s.close();
  }
  const a = await post(alice, one.id, "in one");
  const b = await post(alice, two.id, "in two");
  const again = new Inbox<UserStreamEvent>();
  const s2 = openUserStream(alice, { after: cursor, onEvent: again.push, EventSource: NodeEventSource });
  try {
    const replayed = await untilReady(again);
    const ids = replayed.map((e) => (e.type === "message" ? `${e.data.room_id}/${e.data.id}` : e.type));
    assert.deepEqual(ids.sort(), [`${one.id}/${a.id}`, `${two.id}/${b.id}`].sort());
    for (const e of replayed) assert.ok("id" in e && /^[A-Za-z0-9_-]+$/.test(e.id));
  } finally {
    s2.close();
  }
});

test("room stream: conversation events are typed, and room.deleted ends the stream without an error", async () => {
  const alice = await registered("convo");
  const r = await room(alice, "convo");
  const inbox = new Inbox<RoomStreamEvent>();
  const errors: unknown[] = [];
  openRoomStream(alice, r.id, { onEvent: inbox.push, onError: (e) => errors.push(e), EventSource: NodeEventSource });
  await untilReady(inbox);
  const m = await post(alice, r.id, "hello");
  const path = { room_id: r.id, message_id: m.id };
  await unwrap(alice.api.PATCH("/v1/rooms/{room_id}/messages/{message_id}", { params: { path }, body: { body: "hello!" } }));
  await unwrap(alice.api.PUT("/v1/rooms/{room_id}/messages/{message_id}/reactions/{key}", { params: { path: { ...path, key: "👍" } } }));
  await unwrap(alice.api.DELETE("/v1/rooms/{room_id}/messages/{message_id}", { params: { path } }));
  await unwrap(alice.api.DELETE("/v1/rooms/{room_id}", { params: { path: { room_id: r.id } } }));
  const types: string[] = [];
  for (;;) {
    const ev = await inbox.next();
    types.push(ev.type);
    if (ev.type === "message.edited") assert.equal(ev.data.message.body, "hello!");
    if (ev.type === "reaction.added") assert.ok(ev.data.key === "👍" && ev.data.count === 1 && ev.data.message_id === m.id);
    if (ev.type === "message.deleted") assert.equal(ev.data.message_seq, m.seq);
    if (ev.type === "room.deleted") {
      assert.equal(ev.data.room_id, r.id);
      break;
    }
  }
  assert.deepEqual(types, ["message", "message.edited", "reaction.added", "message.deleted", "room.deleted"]);
  await sleep(1500); // a reconnect would have come by now
  assert.equal(inbox.pending(), 0);
  assert.deepEqual(errors, []);
});

test("user stream: typing, member.read and presence arrive typed, without an id", async () => {
  const alice = await registered("watcher");
  const bob = await registered("typist");
  const r = await room(alice, "signals");
  await unwrap(bob.api.POST("/v1/rooms/{room_id}/join", { params: { path: { room_id: r.id } } }));
  const bobId = bob.session()?.user.id;
  assert.ok(bobId);
  const inbox = new Inbox<UserStreamEvent>();
  const s = openUserStream(alice, { onEvent: inbox.push, EventSource: NodeEventSource });
  const bobInbox = new Inbox<RoomStreamEvent>();
  let b: { close(): void } | undefined;
  try {
    // Ephemeral events go only to streams past their ready: Bob comes
    // online once Alice's stream is live.
    await untilReady(inbox);
    b = openRoomStream(bob, r.id, { onEvent: bobInbox.push, EventSource: NodeEventSource });
    await untilReady(bobInbox);
    const m = await post(alice, r.id, "hello"); // Bob posting would move his marker silently
    await unwrap(bob.api.POST("/v1/rooms/{room_id}/typing", { params: { path: { room_id: r.id } } }));
    await unwrap(bob.api.PUT("/v1/rooms/{room_id}/read", { params: { path: { room_id: r.id } }, body: { seq: m.seq } }));
    const seen = new Set<string>();
    while (seen.size < 3) {
      const ev = await inbox.next(10000);
      switch (ev.type) {
        case "presence":
          assert.deepEqual(ev.data, { user_id: bobId, online: true });
          break;
        case "typing":
          assert.deepEqual(ev.data, { room_id: r.id, user_id: bobId });
          break;
        case "member.read":
          assert.deepEqual(ev.data, { room_id: r.id, user_id: bobId, last_read_seq: m.seq });
          break;
        default:
          continue; // Alice's own message
      }
      assert.ok(!("id" in ev), `${ev.type} carries an id`);
      seen.add(ev.type);
    }
  } finally {
    s.close();
    b?.close();
  }
});
