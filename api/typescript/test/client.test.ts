import { test } from "node:test";
import assert from "node:assert/strict";
import { createParleyClient, ParleyError, unwrap } from "../src/index.js";
import { accessTTLms, registered, serverURL, sleep, uniqueName } from "./helpers.js";

test("calls are typed and refusals are ParleyError with the problem body", async () => {
  const alice = await registered("alice");
  const room = await unwrap(alice.api.POST("/v1/rooms", { body: { name: "general", visibility: "public" } }));
  assert.equal(room.last_seq, 1);
  const msg = await unwrap(
    alice.api.POST("/v1/rooms/{room_id}/messages", { params: { path: { room_id: room.id } }, body: { body: "hello" } }),
  );
  assert.equal(msg.body, "hello");
  const page = await unwrap(alice.api.GET("/v1/rooms/{room_id}/messages", { params: { path: { room_id: room.id } } }));
  assert.deepEqual(
    page.messages.map((m) => m.id),
    [msg.id],
  );

  await assert.rejects(
    unwrap(alice.api.POST("/v1/rooms/{room_id}/messages", { params: { path: { room_id: room.id } }, body: { body: "  " } })),
    (err: unknown) => err instanceof ParleyError && err.status === 422 && err.errors.length > 0 && err.title !== "",
  );
  const name = uniqueName("dup");
  const anon = createParleyClient({ baseUrl: serverURL() });
  await anon.register({ username: name, password: "correct horse battery" });
  await assert.rejects(
    anon.register({ username: name.toUpperCase(), password: "correct horse battery" }),
    (err: unknown) => err instanceof ParleyError && err.status === 409,
  );
  await assert.rejects(
    createParleyClient({ baseUrl: serverURL() }).login(name, "wrong password"),
    (err: unknown) => err instanceof ParleyError && err.status === 401,
  );
});

test("concurrent 401s share one refresh, and the session lives on", async () => {
  const ttl = accessTTLms();
  assert.ok(ttl > 0 && ttl <= 5000, "the server needs a short PARLEY_ACCESS_TTL");
  let sessions = 0;
  const alice = await registered("refresher", () => sessions++);
  assert.equal(sessions, 1); // register
  for (let round = 1; round <= 2; round++) {
    await sleep(ttl + 200); // the access token expires
    const mes = await Promise.all(Array.from({ length: 20 }, () => unwrap(alice.api.GET("/v1/me"))));
    for (const me of mes) assert.equal(me.id, alice.session()?.user.id);
    // One refresh per round: a second one with the same refresh token
    // would have revoked the session, and the calls would have failed.
    assert.equal(sessions, 1 + round);
  }
  const last = alice.session();
  assert.ok(last);
  await alice.logout();
  // Logged out: the session's refresh token no longer works.
  await assert.rejects(
    createParleyClient({ baseUrl: serverURL(), session: last }).refresh(last.access_token),
    (err: unknown) => err instanceof ParleyError && err.status === 401,
  );
});
