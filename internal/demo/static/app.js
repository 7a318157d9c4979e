// The demo's page: log in, rooms with unread badges, one user stream for
// every room, history with infinite scroll, posting (with client_id),
// edits, deletes, reactions, replies, read markers, typing and presence.
import { Api, ApiError, newClientId } from "./api.js";
import { UserStream } from "./stream.js";

const $ = (sel) => document.querySelector(sel);
const api = new Api(document.querySelector('meta[name="parley-api"]').content);
const quickReactions = ["👍", "❤️", "😂", "🎉"];
const pageSize = 50;
const typingShownFor = 4000; // ms a typing event is shown (the API sends at most one per 2 s)
const typingEvery = 2000; // ms between our own typing calls while the user types

let state; // see reset
let stream = null;

function reset() {
  state = {
    rooms: new Map(), // id -> room state, see roomState
    roomsLoaded: false,
    early: [], // events that came before the room list
    joining: new Map(), // room id -> {events that came while we fetch that room, done}
    active: null,
    presence: new Map(), // user id -> online, from presence events
    lastTyping: 0,
    mode: null, // {kind: "reply" | "edit", message}
  };
}

function roomState(room) {
  return {
    room,
    seq: room.last_seq, // the last seq applied (events at or below it are known)
    unread: room.unread_count ?? 0,
    readSent: room.last_read_seq ?? 0,
    loaded: false,
    hasMore: false,
    loadingOlder: false,
    messages: new Map(), // id -> Message
    elements: new Map(), // id -> <li>
    pending: new Map(), // client_id -> <li> of a post in flight
    replyCache: new Map(), // id -> Message outside the loaded history
    members: null, // user id -> Member, once loaded
    typing: new Map(), // user id -> timer
  };
}

// el builds an element: el("li", {class: "x", dataset: {id}}, child, "text").
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "dataset") Object.assign(e.dataset, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  e.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return e;
}

let toastTimer = 0;
function toast(text) {
  const t = $("#toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
}

// guard runs an async action, showing its failure instead of leaving an
// unhandled rejection on the console.
// It calls fn at once, so that an event handler's preventDefault still
// counts.
function guard(fn) {
  const fail = (e) => toast(e instanceof ApiError ? e.message : String(e));
  return (...args) => {
    try {
      Promise.resolve(fn(...args)).catch(fail);
    } catch (e) {
      fail(e);
    }
  };
}

const me = () => api.user;
const stamp = (ts) => (ts ? Date.parse(ts) : 0);
const time = (ts) => new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
const nameOf = (room, userId) => room?.members?.get(userId)?.user.display_name ?? "someone";

// ---- log in -------------------------------------------------------------

function showLogin(message) {
  $("#chat").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
  document.title = "Parley demo";
}

$("#login-form").addEventListener("submit", guard(async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  const action = ev.submitter?.value || "login";
  const username = form.username.value.trim();
  const password = form.password.value;
  $("#login-error").textContent = "";
  try {
    if (action === "register") await api.register(username, password);
    else await api.login(username, password);
  } catch (e) {
    const why = {
      401: "Wrong username or password.",
      409: "That username is taken: log in instead.",
      429: "Too many attempts: wait a little.",
    }[e.status];
    $("#login-error").textContent = why || e.message;
    return;
  }
  form.password.value = "";
  enterChat();
}));

$("#logout").addEventListener("click", guard(async () => {
  leaveChat();
  await api.logout();
  showLogin();
}));

api.onLogout = (message) => {
  leaveChat();
  showLogin(message);
};

function leaveChat() {
  if (stream) stream.stop();
  stream = null;
  for (const r of state.rooms.values()) for (const t of r.typing.values()) clearTimeout(t);
  reset();
  $("#rooms").replaceChildren();
  $("#public-rooms").replaceChildren();
  $("#messages").replaceChildren();
  $("#members").replaceChildren();
}

function enterChat() {
  reset();
  $("#login").hidden = true;
  $("#chat").hidden = false;
  $("#me-name").textContent = me().display_name;
  $("#me-name").title = "@" + me().username;
  renderRoomHead();
  // The stream comes first: its ready marks the moment from which every
  // event reaches us, and the room list read after it has everything
  // before; events of both are told apart by seq.
  stream = new UserStream(api, { onEvent, onReady: guard(onReady), onState });
  stream.start();
}

function onState(s) {
  document.body.dataset.stream = s;
  document.body.dataset.reauths = String(stream?.reauths ?? 0);
  const label = { live: "● live", connecting: "○ connecting…", down: "○ reconnecting…", off: "" }[s];
  $("#stream-status").textContent = label;
  $("#stream-status").className = "status " + s;
}

async function onReady(first) {
  if (first) {
    await loadRooms();
  } else {
    // Back after a drop: the replay brought every durable event we
    // missed; presence and typing are not replayed, so read them again.
    await reconcileUnread();
    const room = state.rooms.get(state.active);
    if (room) await loadMembers(room);
  }
  await loadPublicRooms();
}

// ---- rooms --------------------------------------------------------------

async function loadRooms() {
  let cursor = "";
  do {
    const page = await api.call("GET", `/v1/rooms?scope=joined&limit=100${cursor ? "&cursor=" + encodeURIComponent(cursor) : ""}`);
    for (const r of page.rooms) if (!state.rooms.has(r.id)) state.rooms.set(r.id, roomState(r));
    cursor = page.next_cursor || "";
  } while (cursor);
  state.roomsLoaded = true;
  for (const [type, data] of state.early.splice(0)) onEvent(type, data);
  renderRooms();
  const saved = sessionStorage.getItem("parley.active");
  const pick = state.rooms.has(saved) ? saved : state.rooms.keys().next().value;
  if (pick) await selectRoom(pick);
}

async function reconcileUnread() {
  const u = await api.call("GET", "/v1/me/unread");
  const counts = new Map(u.rooms.map((r) => [r.room_id, r.unread_count]));
  for (const [id, r] of state.rooms) r.unread = counts.get(id) ?? 0;
  const active = state.rooms.get(state.active);
  if (active) markRead(active);
  renderRooms();
}

async function loadPublicRooms() {
  const page = await api.call("GET", "/v1/rooms?scope=public&limit=100");
  const list = $("#public-rooms");
  const others = page.rooms.filter((r) => !state.rooms.has(r.id));
  list.replaceChildren(...others.map((r) => el("li", { class: "room", dataset: { roomId: r.id } },
    el("span", { class: "name" }, r.name),
    el("span", { class: "muted" }, ` ${r.member_count} ${r.member_count === 1 ? "member" : "members"}`),
    el("button", { class: "join", onclick: guard(() => joinRoom(r.id)) }, "Join"))));
  if (others.length === 0) list.append(el("li", { class: "muted" }, "none to join"));
}

$("#refresh-public").addEventListener("click", guard(loadPublicRooms));
window.addEventListener("focus", () => { if (stream) guard(loadPublicRooms)(); });

async function joinRoom(id) {
  await api.call("POST", `/v1/rooms/${id}/join`);
  await ensureRoom(id);
  await selectRoom(id);
  await loadPublicRooms();
}

$("#create-room").addEventListener("submit", guard(async (ev) => {
  ev.preventDefault();
  const name = ev.target.name.value.trim();
  if (!name) return;
  const room = await api.call("POST", "/v1/rooms", { name, visibility: "public" });
  ev.target.name.value = "";
  await ensureRoom(room.id, room);
  await selectRoom(room.id);
}));

// ensureRoom adds a room we just joined or created (once, however many
// ask); the stream's events for it that arrive meanwhile wait in
// state.joining.
function ensureRoom(id, room) {
  if (state.rooms.has(id)) return Promise.resolve();
  if (state.joining.has(id)) return state.joining.get(id).done;
  const wait = { events: [], done: null };
  state.joining.set(id, wait);
  wait.done = (async () => {
    try {
      room ??= await api.call("GET", `/v1/rooms/${id}`);
      state.rooms.set(id, roomState(room));
    } finally {
      state.joining.delete(id);
      for (const [type, data] of wait.events) onEvent(type, data);
    }
    renderRooms();
  })();
  return wait.done;
}

function removeRoom(id) {
  const r = state.rooms.get(id);
  if (!r) return;
  for (const t of r.typing.values()) clearTimeout(t);
  state.rooms.delete(id);
  if (state.active === id) {
    state.active = null;
    const next = state.rooms.keys().next().value;
    if (next) guard(selectRoom)(next);
    else renderActive();
  }
  renderRooms();
  guard(loadPublicRooms)();
}

function renderRooms() {
  const list = $("#rooms");
  list.replaceChildren(...[...state.rooms.values()].map((r) => el("li", {
    class: "room" + (r.room.id === state.active ? " active" : ""),
    dataset: { roomId: r.room.id },
    onclick: guard(() => selectRoom(r.room.id)),
  }, el("span", { class: "name" }, r.room.name), r.unread > 0 ? el("span", { class: "badge unread" }, String(r.unread)) : null)));
  if (state.rooms.size === 0) list.append(el("li", { class: "muted" }, "no rooms yet: create or join one"));
  const total = [...state.rooms.values()].reduce((n, r) => n + r.unread, 0);
  $("#unread-total").hidden = total === 0;
  $("#unread-total").textContent = String(total);
  document.title = (total ? `(${total}) ` : "") + "Parley demo";
}

async function selectRoom(id) {
  const room = state.rooms.get(id);
  if (!room) return;
  state.active = id;
  sessionStorage.setItem("parley.active", id);
  setMode(null);
  renderRooms();
  renderActive();
  // Members every time: presence missed while the room was in the
  // background (or the stream was down) is not replayed.
  await loadMembers(room);
  if (!room.loaded) await loadLatest(room);
  if (state.active === id) {
    renderActive();
    scrollToBottom();
    await fillView(room);
    markRead(room);
  }
}

async function loadMembers(room) {
  const page = await api.call("GET", `/v1/rooms/${room.room.id}/members`);
  room.members = new Map(page.members.map((m) => [m.user.id, m]));
  for (const m of page.members) state.presence.set(m.user.id, Boolean(m.online));
  if (state.active === room.room.id) { renderMembers(); renderSeen(); }
}

// ---- history ------------------------------------------------------------

// merge keeps the newer of two versions of a message: a tombstone stays a
// tombstone; otherwise the later edit wins.
function merge(room, m) {
  const old = room.messages.get(m.id);
  if (old) {
    if (old.deleted_at && !m.deleted_at) return old;
    if (!m.deleted_at && stamp(old.edited_at) > stamp(m.edited_at)) return old;
    // Stream data lacks "me" on reactions: keep what we knew.
    const mine = new Map(old.reactions.map((r) => [r.key, r.me]));
    m = { ...m, reactions: m.reactions.map((r) => ({ ...r, me: r.me ?? mine.get(r.key) ?? false })) };
  }
  room.messages.set(m.id, m);
  return m;
}

async function loadLatest(room) {
  const page = await api.call("GET", `/v1/rooms/${room.room.id}/messages?limit=${pageSize}`);
  for (const m of page.messages) merge(room, m);
  room.hasMore = page.has_more;
  room.loaded = true;
}

function oldestSeq(room) {
  let min = Infinity;
  for (const m of room.messages.values()) min = Math.min(min, m.seq);
  return min;
}

// loadOlder fetches the page before the oldest message shown, keeping the
// view where it was.
async function loadOlder(room) {
  if (!room.hasMore || room.loadingOlder) return;
  room.loadingOlder = true;
  const box = $("#messages");
  try {
    const page = await api.call("GET", `/v1/rooms/${room.room.id}/messages?limit=${pageSize}&before=${oldestSeq(room)}`);
    room.hasMore = page.has_more;
    if (state.active !== room.room.id) {
      for (const m of page.messages) merge(room, m);
      return;
    }
    const fromBottom = box.scrollHeight - box.scrollTop;
    for (const m of page.messages) renderMessage(room, merge(room, m));
    renderHistoryEdge(room);
    box.scrollTop = box.scrollHeight - fromBottom;
  } finally {
    room.loadingOlder = false;
  }
}

// fillView loads older pages until the list scrolls or history ends.
async function fillView(room) {
  const box = $("#messages");
  while (state.active === room.room.id && room.hasMore && box.scrollHeight <= box.clientHeight + 10) {
    await loadOlder(room);
  }
}

$("#messages").addEventListener("scroll", guard(async () => {
  const room = state.rooms.get(state.active);
  const box = $("#messages");
  if (room && box.scrollTop < 120) await loadOlder(room);
  if (room && nearBottom()) markRead(room);
}));

const nearBottom = () => { const b = $("#messages"); return b.scrollHeight - b.scrollTop - b.clientHeight < 80; };
const scrollToBottom = () => { const b = $("#messages"); b.scrollTop = b.scrollHeight; };

// ---- read markers -------------------------------------------------------

let readTimer = 0;
function markRead(room) {
  if (state.active !== room.room.id || document.visibilityState !== "visible") return;
  if (room.unread !== 0) { room.unread = 0; renderRooms(); }
  clearTimeout(readTimer);
  readTimer = setTimeout(guard(async () => {
    const seq = room.seq;
    if (seq <= room.readSent) return;
    room.readSent = seq;
    await api.call("PUT", `/v1/rooms/${room.room.id}/read`, { seq });
  }), 250);
}

document.addEventListener("visibilitychange", () => {
  const room = state?.rooms.get(state.active);
  if (room && nearBottom()) markRead(room);
});

// ---- events -------------------------------------------------------------

function onEvent(type, data) {
  if (!state.roomsLoaded) { state.early.push([type, data]); return; }
  if (type === "presence") return onPresence(data);
  if (state.joining.has(data.room_id)) { state.joining.get(data.room_id).events.push([type, data]); return; }
  const room = state.rooms.get(data.room_id);
  if (type === "member.joined" && data.user.id === me().id && !room) {
    guard(ensureRoom)(data.room_id);
    return;
  }
  if (!room) return;
  if (type === "typing") return onTyping(room, data);
  if (type === "member.read") return onMemberRead(room, data);
  // Durable: applied once, in seq order; a replay after a reconnect or the
  // overlap with the room list brings nothing twice.
  if (data.seq <= room.seq) return;
  room.seq = data.seq;
  const active = state.active === room.room.id;
  switch (type) {
    case "message": {
      const m = data;
      const pending = room.pending.get(m.client_id);
      if (room.loaded) {
        if (pending) { pending.remove(); room.pending.delete(m.client_id); }
        const wasNear = nearBottom();
        const shown = merge(room, m);
        if (active) { renderMessage(room, shown); if (wasNear || m.author.id === me().id) scrollToBottom(); }
      }
      stopTyping(room, m.author.id);
      if (m.author.id !== me().id) {
        if (active && document.visibilityState === "visible") markRead(room);
        else { room.unread++; renderRooms(); }
      }
      break;
    }
    case "message.edited":
      if (room.loaded && room.messages.has(data.message.id) && active) renderMessage(room, merge(room, data.message));
      else if (room.loaded && room.messages.has(data.message.id)) merge(room, data.message);
      break;
    case "message.deleted": {
      const m = room.messages.get(data.message_id);
      if (m) {
        const t = merge(room, { ...m, body: "", reactions: [], deleted_at: m.deleted_at || new Date().toISOString() });
        if (active) renderMessage(room, t);
      }
      break;
    }
    case "reaction.added":
    case "reaction.removed": {
      const m = room.messages.get(data.message_id);
      if (!m) break;
      let reactions = m.reactions.filter((r) => r.key !== data.key || data.count > 0);
      const mine = data.user_id === me().id ? type === "reaction.added" : undefined;
      const known = reactions.find((r) => r.key === data.key);
      if (known) reactions = reactions.map((r) => r.key === data.key ? { ...r, count: data.count, me: mine ?? r.me } : r);
      else if (data.count > 0) reactions = [...reactions, { key: data.key, count: data.count, me: mine ?? false }];
      room.messages.set(m.id, { ...m, reactions });
      if (active) renderMessage(room, room.messages.get(m.id));
      break;
    }
    case "member.joined":
      room.room.member_count++;
      if (room.members) {
        room.members.set(data.user.id, { user: data.user, role: "member", joined_at: data.created_at, last_read_seq: data.seq, online: state.presence.get(data.user.id) ?? false });
        // Presence is announced when a user's first stream opens, not when
        // they join: the member list says whether the newcomer is online.
        guard(loadMembers)(room);
      }
      if (active) { renderMembers(); renderRoomHead(); }
      break;
    case "member.left":
      if (data.user_id === me().id) return removeRoom(room.room.id);
      room.room.member_count = Math.max(0, room.room.member_count - 1);
      room.members?.delete(data.user_id);
      stopTyping(room, data.user_id);
      if (active) { renderMembers(); renderRoomHead(); renderSeen(); }
      break;
    case "room.updated":
      room.room = { ...room.room, name: data.name, topic: data.topic, member_count: data.member_count };
      renderRooms();
      if (active) renderRoomHead();
      break;
    case "room.deleted":
      removeRoom(room.room.id);
      toast(`The room ${room.room.name} was deleted.`);
      break;
  }
  if (active && type === "message") renderSeen();
}

function onTyping(room, { user_id }) {
  if (user_id === me().id) return;
  clearTimeout(room.typing.get(user_id));
  room.typing.set(user_id, setTimeout(() => stopTyping(room, user_id), typingShownFor));
  if (state.active === room.room.id) renderTyping();
}

function stopTyping(room, userId) {
  if (!room.typing.has(userId)) return;
  clearTimeout(room.typing.get(userId));
  room.typing.delete(userId);
  if (state.active === room.room.id) renderTyping();
}

function onMemberRead(room, { user_id, last_read_seq }) {
  const m = room.members?.get(user_id);
  if (m) m.last_read_seq = Math.max(m.last_read_seq ?? 0, last_read_seq);
  if (state.active === room.room.id) renderSeen();
}

function onPresence({ user_id, online }) {
  state.presence.set(user_id, online);
  for (const r of state.rooms.values()) {
    const m = r.members?.get(user_id);
    if (m) m.online = online;
  }
  renderMembers();
}

// ---- the active room ----------------------------------------------------

function renderActive() {
  renderRoomHead();
  renderMembers();
  const room = state.rooms.get(state.active);
  const box = $("#messages");
  box.replaceChildren();
  $("#composer").hidden = !room;
  if (!room) { renderTyping(); renderSeen(); return; }
  room.elements = new Map();
  const sorted = [...room.messages.values()].sort((a, b) => a.seq - b.seq);
  for (const m of sorted) renderMessage(room, m);
  for (const li of room.pending.values()) box.append(li);
  renderHistoryEdge(room);
  renderTyping();
  renderSeen();
}

function renderRoomHead() {
  const room = state?.rooms.get(state.active);
  $("#room-name").textContent = room ? room.room.name : "Pick or create a room";
  $("#room-topic").textContent = room ? `${room.room.topic ? room.room.topic + " · " : ""}${room.room.member_count} members` : "";
}

function renderHistoryEdge(room) {
  const box = $("#messages");
  box.querySelector(".edge")?.remove();
  if (room.loaded) box.prepend(el("li", { class: "edge muted" }, room.hasMore ? "scroll up for older messages" : "the beginning of the room"));
}

function renderMembers() {
  const room = state?.rooms.get(state.active);
  const list = $("#members");
  if (!room?.members) { list.replaceChildren(); return; }
  const members = [...room.members.values()].sort((a, b) => a.user.display_name.localeCompare(b.user.display_name));
  list.replaceChildren(...members.map((m) => {
    const online = m.user.id === me().id ? document.body.dataset.stream === "live" : (state.presence.get(m.user.id) ?? Boolean(m.online));
    return el("li", { class: "member" + (online ? " online" : ""), dataset: { userId: m.user.id, online: String(online) } },
      el("span", { class: "dot", title: online ? "online" : "offline" }),
      el("span", { class: "name" }, m.user.display_name),
      m.role === "owner" ? el("span", { class: "muted" }, " owner") : null);
  }));
}

function renderTyping() {
  const room = state?.rooms.get(state.active);
  const names = room ? [...room.typing.keys()].map((id) => nameOf(room, id)) : [];
  $("#typing").textContent = names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.slice(0, -1).join(", ")} and ${names.at(-1)} are typing…`;
}

function renderSeen() {
  const room = state?.rooms.get(state.active);
  let last = 0;
  if (room) for (const m of room.messages.values()) if (!m.deleted_at) last = Math.max(last, m.seq);
  const who = !room?.members || !last ? [] : [...room.members.values()]
    .filter((m) => m.user.id !== me().id && (m.last_read_seq ?? 0) >= last).map((m) => m.user.display_name);
  $("#seen").textContent = who.length ? `Seen by ${who.join(", ")}` : "";
}

// renderMessage draws (or redraws) one message in seq order.
function renderMessage(room, m) {
  const box = $("#messages");
  const li = messageElement(room, m);
  const old = room.elements.get(m.id);
  room.elements.set(m.id, li);
  if (old) { old.replaceWith(li); return; }
  // Find the first shown message with a larger seq (new ones go last).
  let next = null;
  for (const other of [...box.children].reverse()) {
    if (!other.dataset.seq) { if (other.classList.contains("pending")) next = other; continue; }
    if (Number(other.dataset.seq) > m.seq) next = other; else break;
  }
  box.insertBefore(li, next);
}

function messageElement(room, m) {
  const mine = m.author.id === me().id;
  const owner = room.room.owner_id === me().id;
  const deleted = Boolean(m.deleted_at);
  return el("li", { class: "msg" + (mine ? " mine" : "") + (deleted ? " deleted" : ""), dataset: { id: m.id, seq: String(m.seq), clientId: m.client_id || undefined, author: m.author.username } },
    el("div", { class: "meta" },
      el("span", { class: "author" }, m.author.display_name),
      el("time", { datetime: m.created_at }, time(m.created_at)),
      m.edited_at && !deleted ? el("span", { class: "edited muted" }, "(edited)") : null),
    m.reply_to ? replyQuote(room, m.reply_to) : null,
    el("div", { class: "body" }, deleted ? "message deleted" : m.body),
    deleted ? null : el("div", { class: "reactions" }, m.reactions.map((r) =>
      el("button", { class: "reaction" + (r.me ? " me" : ""), dataset: { key: r.key }, title: r.me ? "remove your reaction" : "react", onclick: guard(() => toggleReaction(room, m.id, r.key)) }, `${r.key} ${r.count}`))),
    deleted ? null : el("div", { class: "actions" },
      quickReactions.filter((k) => !m.reactions.some((r) => r.key === k && r.me)).map((k) =>
        el("button", { class: "react", dataset: { key: k }, title: `react ${k}`, onclick: guard(() => toggleReaction(room, m.id, k)) }, k)),
      el("button", { class: "reply link", onclick: () => setMode({ kind: "reply", message: m }) }, "Reply"),
      mine ? el("button", { class: "edit link", onclick: () => setMode({ kind: "edit", message: m }) }, "Edit") : null,
      mine || owner ? el("button", { class: "delete link", onclick: guard(() => deleteMessage(room, m)) }, "Delete") : null));
}

function replyQuote(room, id) {
  const target = room.messages.get(id) ?? room.replyCache.get(id);
  if (!target) {
    guard(async () => {
      const t = await api.call("GET", `/v1/rooms/${room.room.id}/messages/${id}`);
      room.replyCache.set(id, t);
      if (state.active !== room.room.id) return;
      for (const m of room.messages.values()) if (m.reply_to === id) renderMessage(room, m);
    })();
    return el("div", { class: "reply-to muted", dataset: { replyTo: id } }, "↪ …");
  }
  const text = target.deleted_at ? "message deleted" : target.body.slice(0, 80);
  return el("div", { class: "reply-to muted", dataset: { replyTo: id } }, `↪ ${target.author.display_name}: ${text}`);
}

async function toggleReaction(room, id, key) {
  const m = room.messages.get(id);
  const path = `/v1/rooms/${room.room.id}/messages/${id}/reactions/${encodeURIComponent(key)}`;
  if (m?.reactions.some((r) => r.key === key && r.me)) {
    await api.call("DELETE", path);
    setReaction(room, id, key, (r) => ({ ...r, count: r.count - 1, me: false }));
  } else {
    const r = await api.call("PUT", path);
    setReaction(room, id, key, () => ({ key, count: r.count, me: true }));
  }
}

// setReaction applies our own reaction at once (the stream confirms it).
function setReaction(room, id, key, change) {
  const m = room.messages.get(id);
  if (!m) return;
  const cur = m.reactions.find((r) => r.key === key) ?? { key, count: 0, me: false };
  const next = change(cur);
  const reactions = m.reactions.some((r) => r.key === key) ? m.reactions.map((r) => (r.key === key ? next : r)) : [...m.reactions, next];
  room.messages.set(id, { ...m, reactions: reactions.filter((r) => r.count > 0) });
  if (state.active === room.room.id) renderMessage(room, room.messages.get(id));
}

async function deleteMessage(room, m) {
  await api.call("DELETE", `/v1/rooms/${room.room.id}/messages/${m.id}`);
  const t = merge(room, { ...m, body: "", reactions: [], deleted_at: new Date().toISOString() });
  if (state.active === room.room.id) renderMessage(room, t);
  if (state.mode?.message.id === m.id) setMode(null);
}

// ---- the composer -------------------------------------------------------

const composer = $("#composer");
const input = composer.body;

function setMode(mode) {
  state.mode = mode;
  const box = $("#composer-mode");
  box.hidden = !mode;
  if (!mode) {
    if (box.dataset.kind === "edit") input.value = "";
    box.dataset.kind = "";
    return;
  }
  box.dataset.kind = mode.kind;
  box.querySelector("span").textContent = mode.kind === "edit"
    ? "Editing your message"
    : `Replying to ${mode.message.author.display_name}: ${mode.message.body.slice(0, 60)}`;
  if (mode.kind === "edit") input.value = mode.message.body;
  input.focus();
}

$("#composer-cancel").addEventListener("click", () => setMode(null));

input.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    composer.requestSubmit();
  } else if (ev.key === "Escape") {
    setMode(null);
  }
});

input.addEventListener("input", guard(async () => {
  const room = state.rooms.get(state.active);
  if (!room || !input.value.trim() || state.mode?.kind === "edit") return;
  const now = Date.now();
  if (now - state.lastTyping < typingEvery) return;
  state.lastTyping = now;
  await api.call("POST", `/v1/rooms/${room.room.id}/typing`).catch(() => {}); // best effort
}));

composer.addEventListener("submit", guard(async (ev) => {
  ev.preventDefault();
  const room = state.rooms.get(state.active);
  const body = input.value;
  if (!room || !body.trim()) return;
  const mode = state.mode;
  input.value = "";
  setMode(null);
  state.lastTyping = 0;
  if (mode?.kind === "edit") {
    const m = await api.call("PATCH", `/v1/rooms/${room.room.id}/messages/${mode.message.id}`, { body });
    if (state.active === room.room.id) renderMessage(room, merge(room, m));
    return;
  }
  await send(room, body, mode?.kind === "reply" ? mode.message.id : undefined);
}));

// send shows the message at once as pending and posts it with a client_id,
// retrying through outages; whichever comes first, the answer or the
// stream's event, replaces the pending line.
async function send(room, body, replyTo) {
  const clientId = newClientId();
  const li = el("li", { class: "msg mine pending", dataset: { clientId } },
    el("div", { class: "meta" }, el("span", { class: "author" }, me().display_name), el("span", { class: "state muted" }, "sending…")),
    el("div", { class: "body" }, body));
  room.pending.set(clientId, li);
  if (state.active === room.room.id) { $("#messages").append(li); scrollToBottom(); }
  try {
    const m = await api.post(room.room.id, body, clientId, replyTo, () => { li.querySelector(".state").textContent = "retrying…"; });
    li.remove();
    room.pending.delete(clientId);
    if (room.loaded) {
      const shown = merge(room, m);
      if (state.active === room.room.id) { renderMessage(room, shown); scrollToBottom(); renderSeen(); }
    }
  } catch (e) {
    li.classList.add("failed");
    li.querySelector(".state").textContent = `not sent: ${e.message}`;
    throw e;
  }
}

// ---- start --------------------------------------------------------------

reset();
$("#api-origin").textContent = api.base;
if (api.session) enterChat();
else showLogin();
