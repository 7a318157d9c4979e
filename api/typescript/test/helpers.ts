import { randomBytes } from "node:crypto";
import { EventSource } from "eventsource";
import { createParleyClient, type ParleyClient, type EventSourceConstructor } from "../src/index.js";

/** The server under test, started by the Go test that runs these (internal/e2e/typescript). */
export function serverURL(): string {
  const url = process.env["PARLEY_URL"];
  if (!url) throw new Error("PARLEY_URL is not set: run these tests through go test ./internal/e2e/typescript");
  return url;
}

/** The access token lifetime the server was started with, in ms. */
export function accessTTLms(): number {
  return Number(process.env["PARLEY_ACCESS_TTL_MS"] ?? "0");
}

/** A fresh user name for one test. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

/** Registers a fresh user and returns a client of their session. */
export async function registered(prefix: string, onSession?: () => void): Promise<ParleyClient> {
  const c = createParleyClient(onSession ? { baseUrl: serverURL(), onSession } : { baseUrl: serverURL() });
  await c.register({ username: uniqueName(prefix), password: "correct horse battery" });
  return c;
}

/** The npm EventSource polyfill, for Node (tests only). */
export const NodeEventSource: EventSourceConstructor = EventSource;

/** A queue of stream events to await one at a time. */
export class Inbox<T> {
  private items: T[] = [];
  private waiters: ((v: T) => void)[] = [];

  push = (v: T): void => {
    const w = this.waiters.shift();
    if (w) w(v);
    else this.items.push(v);
  };

  next(timeoutMs = 20000): Promise<T> {
    const v = this.items.shift();
    if (v !== undefined) return Promise.resolve(v);
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`nothing within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push((x) => {
        clearTimeout(t);
        resolve(x);
      });
    });
  }

  /** Events waiting, without awaiting more. */
  pending(): number {
    return this.items.length;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
