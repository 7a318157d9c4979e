export { createParleyClient } from "./client.js";
export type { ParleyClient, ParleyClientOptions, Schemas, Session } from "./client.js";
export { ParleyError, unwrap } from "./errors.js";
export type { FetchResult, Problem } from "./errors.js";
export { openRoomStream, openUserStream } from "./stream.js";
export type {
  DurableEvent,
  EphemeralEvent,
  EventSourceConstructor,
  EventSourceLike,
  MemberRead,
  Presence,
  RoomStreamEvent,
  StreamEvent,
  StreamHandle,
  StreamOptions,
  Typing,
  UserStreamEvent,
} from "./stream.js";
export type { components, paths, operations } from "./schema.js";
