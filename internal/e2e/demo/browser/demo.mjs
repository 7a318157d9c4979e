// Drives the Parley demo in Debian's headless Chromium through
// playwright-core: two pages, two users, one room. Run by
// internal/e2e/demo (go test), which starts the API and the demo and passes:
//   DEMO_URL      the demo page (another origin than the API)
//   API_URL       the API, for seeding history and posting from outside
//   SCREENSHOT    where to write the final page's screenshot
//   CHROMIUM      the browser (default /usr/bin/chromium)
// argv[2] names the scenario: "live" or "restart". The restart scenario
// asks the Go side to stop and start the API by writing "@@ stop-api" /
// "@@ start-api" on stdout and waiting for a line on stdin.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const scenario = process.argv[2];
const DEMO_URL = must("DEMO_URL");
const API_URL = must("API_URL");
const SCREENSHOT = must("SCREENSHOT");
const timeout = 20_000;

function must(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

// ---- the Go side --------------------------------------------------------

const stdin = createInterface({ input: process.stdin });
const replies = [];
const waiting = [];
stdin.on("line", (line) => (waiting.length ? waiting.shift()(line) : replies.push(line)));
async function control(command) {
  process.stdout.write(`@@ ${command}\n`);
  const reply = replies.length ? replies.shift() : await new Promise((r) => waiting.push(r));
  if (reply !== "ok") throw new Error(`${command}: ${reply}`);
}

function log(...args) {
  console.log(new Date().toISOString(), ...args);
}

// ---- console errors -----------------------------------------------------

// Errors are kept with their time, so that those of the restart window
// (a refused connection while the API is down is expected) can be told
// from the rest, which fail the test.
const errors = [];
const windows = []; // [start, end] in ms
function watch(page, who) {
  page.on("console", (m) => {
    if (m.type() === "error") errors.push({ at: Date.now(), who, text: m.text(), url: m.location()?.url ?? "" });
  });
  page.on("pageerror", (e) => errors.push({ at: Date.now(), who, text: `pageerror: ${e.message}` }));
}
function unexpectedErrors() {
  return errors.filter((e) => !windows.some(([s, end]) => e.at >= s && e.at <= end));
}

// ---- page helpers -------------------------------------------------------

const suffix = Date.now().toString(36).slice(-5) + Math.floor(Math.random() * 1e4).toString(36);
const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function messages(page, body) {
  return page.locator("#messages li.msg").filter({ has: page.locator(".body", { hasText: new RegExp(`^${esc(body)}$`) }) });
}

async function register(page, username) {
  await page.goto(DEMO_URL);
  await page.locator("#login-form input[name=username]").fill(username);
  await page.locator("#login-form input[name=password]").fill(`password-${username}`);
  await page.locator("#login-form button[value=register]").click();
  await live(page);
  await page.locator("#me-name", { hasText: username }).waitFor({ timeout });
}

const live = (page) => page.locator('body[data-stream="live"]').waitFor({ timeout: 30_000 });

async function createRoom(page, name) {
  await page.locator("#create-room input[name=name]").fill(name);
  await page.locator("#create-room button").click();
  await page.locator("#room-name", { hasText: name }).waitFor({ timeout });
}

async function joinRoom(page, name) {
  await page.locator("#refresh-public").click();
  await page.locator("#public-rooms li.room", { hasText: name }).locator("button.join").click();
  await page.locator("#room-name", { hasText: name }).waitFor({ timeout });
}

async function openRoom(page, name) {
  await page.locator("#rooms li.room", { hasText: name }).click();
  await page.locator("#room-name", { hasText: name }).waitFor({ timeout });
}

async function say(page, body) {
  const box = page.locator("#composer textarea");
  await box.fill(body);
  await box.press("Enter");
}

// seen waits until body shows exactly once on the page, sent (not pending).
async function seen(page, body) {
  await messages(page, body).first().waitFor({ timeout: 30_000 });
  await page.waitForFunction(
    (b) => [...document.querySelectorAll("#messages li.msg:not(.pending) .body")].filter((e) => e.textContent === b).length === 1 &&
      !document.querySelector("#messages li.msg.pending"),
    body, { timeout: 30_000 });
}

// typeUntilShown types text into from's composer, a key at a time, until
// to shows that from is typing: the API passes one typing event per user
// and room every 2 s and drops the rest, so a keystroke right after an
// earlier one (the fill of the last message sent, say) may not show.
async function typeUntilShown(from, to, name, text) {
  const box = from.locator("#composer textarea");
  const shown = to.locator("#typing", { hasText: `${name} is typing` });
  for (let i = 0, until = Date.now() + timeout; !(await shown.count()); i++) {
    if (Date.now() > until) throw new Error(`${name}'s typing did not show within ${timeout} ms`);
    await box.press(text[i % text.length] === " " ? "Space" : text[i % text.length]);
    await from.waitForTimeout(100); // a person's typing pace
  }
}

async function token(page) {
  return page.evaluate(() => JSON.parse(sessionStorage.getItem("parley.session")).access_token);
}

// apiCall calls the API from outside the browser, as another client would.
async function apiCall(tok, method, path, body) {
  const r = await fetch(API_URL + path, {
    method,
    headers: { Authorization: `Bearer ${tok}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.status === 204 ? undefined : r.json();
}

async function roomId(page, name) {
  return page.locator("#rooms li.room", { hasText: name }).getAttribute("data-room-id");
}

// shownBodies lists the bodies of the page's messages, top to bottom.
const shownBodies = (page) => page.$$eval("#messages li.msg:not(.pending) .body", (els) => els.map((e) => e.textContent));

function assert(cond, what) {
  if (!cond) throw new Error(`assertion failed: ${what}`);
}

// ---- scenarios ----------------------------------------------------------

async function liveScenario(a, b) {
  const alice = `alice-${suffix}`, bob = `bob-${suffix}`, room = `general-${suffix}`;
  await register(a, alice);
  await register(b, bob);
  await createRoom(a, room);
  await joinRoom(b, room);

  log("messages both ways");
  await say(a, "Hello from Alice");
  await seen(b, "Hello from Alice");
  await seen(a, "Hello from Alice");

  log("a reply");
  await messages(b, "Hello from Alice").locator("button.reply").click();
  await say(b, "Hi Alice, Bob here");
  await seen(a, "Hi Alice, Bob here");
  await messages(a, "Hi Alice, Bob here").locator(".reply-to", { hasText: "Hello from Alice" }).waitFor({ timeout });

  log("an edit");
  await messages(a, "Hello from Alice").locator("button.edit").click();
  await say(a, "Hello from Alice (edited)");
  await seen(b, "Hello from Alice (edited)");
  await messages(b, "Hello from Alice (edited)").locator(".edited").waitFor({ timeout });

  log("reactions");
  await messages(b, "Hello from Alice (edited)").locator('button.react[data-key="👍"]').click();
  await messages(a, "Hello from Alice (edited)").locator('button.reaction[data-key="👍"]', { hasText: "👍 1" }).waitFor({ timeout });
  await messages(a, "Hello from Alice (edited)").locator('button.react[data-key="👍"]').click();
  await messages(b, "Hello from Alice (edited)").locator('button.reaction[data-key="👍"]', { hasText: "👍 2" }).waitFor({ timeout });
  await messages(b, "Hello from Alice (edited)").locator('button.reaction.me[data-key="👍"]').click(); // Bob takes his back
  await messages(a, "Hello from Alice (edited)").locator('button.reaction[data-key="👍"]', { hasText: "👍 1" }).waitFor({ timeout });

  log("a delete leaves a tombstone");
  await say(a, "A message to take back");
  await seen(b, "A message to take back");
  await messages(a, "A message to take back").locator("button.delete").click();
  await messages(b, "message deleted").waitFor({ timeout });
  assert((await messages(b, "A message to take back").count()) === 0, "the deleted text is gone from Bob's page");

  log("unread badges");
  const other = `random-${suffix}`;
  await createRoom(a, other);
  await joinRoom(b, other);
  await openRoom(b, room);
  await openRoom(a, other);
  await say(a, "Over here, Bob");
  await say(a, "And again");
  await b.locator("#rooms li.room", { hasText: other }).locator(".badge.unread", { hasText: "2" }).waitFor({ timeout });
  await openRoom(b, other);
  await seen(b, "And again");
  await b.locator("#rooms li.room", { hasText: other }).locator(".badge").waitFor({ state: "detached", timeout });
  // The marker was stored: a fresh count from the API agrees (the page
  // sends it 250 ms after the last message shows).
  const otherId = await roomId(b, other);
  const unreadIn = async () => (await apiCall(await token(b), "GET", "/v1/me/unread")).rooms.find((r) => r.room_id === otherId)?.unread_count ?? 0;
  let left = await unreadIn();
  for (const until = Date.now() + timeout; left !== 0 && Date.now() < until; left = await unreadIn()) await b.waitForTimeout(100);
  assert(left === 0, `Bob's unread count in ${other} is 0 after he read it (${left})`);

  log("history with infinite scroll");
  const hist = `history-${suffix}`;
  await createRoom(a, hist);
  const histId = await roomId(a, hist);
  const tokA = await token(a);
  const total = 130;
  for (let i = 1; i <= total; i++) await apiCall(tokA, "POST", `/v1/rooms/${histId}/messages`, { body: `history ${i}`, client_id: `h-${i}` });
  await joinRoom(b, hist);
  await seen(b, `history ${total}`);
  const first = (await shownBodies(b)).length;
  assert(first >= 50 && first < total, `the first page holds the latest messages only (${first})`);
  const edge = b.locator("#messages .edge", { hasText: "the beginning of the room" });
  for (const until = Date.now() + 30_000; !(await edge.count()) && Date.now() < until;) {
    await b.locator("#messages").evaluate((e) => { e.scrollTop = 0; });
    await b.waitForTimeout(200); // let the page fetch the next older page
  }
  const bodies = (await shownBodies(b)).filter((t) => t.startsWith("history "));
  assert(bodies.length === total, `all ${total} messages shown after scrolling up (${bodies.length})`);
  assert(bodies.every((t, i) => t === `history ${i + 1}`), "in order, once each");

  await openRoom(b, room);
  await openRoom(a, room);

  // Typing, presence and read receipts: the ephemeral events.
  await ephemeralChecks(a, b, alice, bob);

  await say(b, "That is the whole demo 🎉");
  await seen(a, "That is the whole demo 🎉");
}

async function ephemeralChecks(a, b, alice, bob) {
  log("typing");
  await typeUntilShown(b, a, bob, "Bob is typing this");
  await b.locator("#composer textarea").fill("Bob is typing this");
  await b.locator("#composer textarea").press("Enter");
  await seen(a, "Bob is typing this");
  await a.waitForFunction(() => document.querySelector("#typing").textContent === "", null, { timeout }); // his message ends his typing

  log("presence and read receipts");
  await a.locator(`#members li.member.online`, { hasText: bob }).waitFor({ timeout });
  await b.locator(`#members li.member.online`, { hasText: alice }).waitFor({ timeout });
  await say(a, "Did you read this?");
  await seen(b, "Did you read this?");
  await a.locator("#seen", { hasText: `Seen by ${bob}` }).waitFor({ timeout });
}

async function restartScenario(a, b) {
  const alice = `alice-${suffix}`, bob = `bob-${suffix}`, room = `restart-${suffix}`;
  await register(a, alice);
  await register(b, bob);
  await createRoom(a, room);
  await joinRoom(b, room);
  await say(a, "Before the restart");
  await seen(b, "Before the restart");
  const id = await roomId(b, room);
  const tokB = await token(b);

  log("stopping the API");
  const start = Date.now();
  await control("stop-api");
  for (const p of [a, b]) await p.locator('body:not([data-stream="live"])').waitFor({ timeout: 30_000 });
  await say(a, "Sent while the API was down");
  await messages(a, "Sent while the API was down").waitFor({ timeout });
  log("starting the API");
  await control("start-api");
  // Posted before the pages are back: they come in the replay.
  for (let i = 1; i <= 5; i++) await apiCall(tokB, "POST", `/v1/rooms/${id}/messages`, { body: `While you were away ${i}`, client_id: `away-${i}` });
  await live(a);
  await live(b);
  await seen(a, "Sent while the API was down");
  windows.push([start, Date.now()]);
  log(`restart window ${Date.now() - start} ms`);

  for (const p of [a, b]) {
    await seen(p, "Sent while the API was down");
    for (let i = 1; i <= 5; i++) await seen(p, `While you were away ${i}`);
  }
  // The page's retried post races the five: the order is the API's (seq).
  const want = ["Before the restart", "Sent while the API was down", ...[1, 2, 3, 4, 5].map((i) => `While you were away ${i}`)];
  const stored = (await apiCall(tokB, "GET", `/v1/rooms/${id}/messages`)).messages.map((m) => m.body);
  assert(JSON.stringify([...stored].sort()) === JSON.stringify([...want].sort()), `the API stored each message once: ${JSON.stringify(stored)}`);
  for (const p of [a, b]) {
    const got = await shownBodies(p);
    assert(JSON.stringify(got) === JSON.stringify(stored), `page shows every message once, in seq order: ${JSON.stringify(got)}`);
  }

  log("live again after the restart");
  await say(b, "Back to normal");
  await seen(a, "Back to normal");
  await messages(a, "Back to normal").locator('button.react[data-key="🎉"]').click();
  await messages(b, "Back to normal").locator('button.reaction[data-key="🎉"]', { hasText: "🎉 1" }).waitFor({ timeout });
  await typeUntilShown(b, a, bob, "typing after the restart");
  await b.locator("#composer textarea").fill("");

  // The API runs with 30 s access tokens here: the pages refresh their
  // sessions ahead of time, their streams end with reauth at the old
  // token's expiry, and they reopen with a new ticket and the cursor.
  log("waiting for reauth");
  for (const p of [a, b]) await p.locator('body:not([data-reauths="0"])').waitFor({ timeout: 60_000 });
  await live(a);
  await live(b);
  await say(a, "After reauth");
  await seen(b, "After reauth");
  await say(b, "Still here");
  await seen(a, "Still here");
  const before = await token(b);
  assert(before !== tokB, "Bob's page refreshed its session");
}

// ---- main ---------------------------------------------------------------

const scenarios = { live: liveScenario, restart: restartScenario };
if (!scenarios[scenario]) throw new Error(`unknown scenario ${scenario}: want ${Object.keys(scenarios).join(" or ")}`);

const profile = mkdtempSync(join(tmpdir(), "parley-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1100, height: 700 },
});
let failed = null;
let a;
try {
  a = context.pages()[0] ?? (await context.newPage());
  const b = await context.newPage();
  watch(a, "alice");
  watch(b, "bob");
  await scenarios[scenario](a, b);
} catch (e) {
  failed = e;
} finally {
  if (a) await a.screenshot({ path: SCREENSHOT }).catch((e) => log(`screenshot: ${e.message}`));
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  stdin.close();
}
for (const e of errors) log(`console error (${e.who}, ${new Date(e.at).toISOString()}): ${e.text} ${e.url}`);
const bad = unexpectedErrors();
if (failed) {
  console.error(failed.stack || String(failed));
  process.exit(1);
}
if (bad.length) {
  console.error(`${bad.length} console error(s) outside the restart window`);
  process.exit(1);
}
log(`${scenario}: passed; screenshot ${SCREENSHOT}`);
