import type { components } from "./schema.js";

/** An RFC 9457 problem body, as Parley sends it. */
export type Problem = components["schemas"]["ErrorModel"];

/**
 * A call the server refused: the HTTP status and the problem body. Every
 * helper of this package throws it; `unwrap` turns an openapi-fetch result
 * into data or a thrown ParleyError.
 */
export class ParleyError extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly errors: NonNullable<Problem["errors"]>;
  /** Retry-After in milliseconds (429 and 503), 0 if none. */
  readonly retryAfterMs: number;

  constructor(status: number, problem: Problem | undefined, headers?: Headers) {
    const title = problem?.title ?? `HTTP ${status}`;
    super(problem?.detail ? `${status} ${title}: ${problem.detail}` : `${status} ${title}`);
    this.name = "ParleyError";
    this.status = status;
    this.title = title;
    this.detail = problem?.detail ?? "";
    this.errors = problem?.errors ?? [];
    this.retryAfterMs = retryAfterMs(headers?.get("Retry-After") ?? null);
  }

  /** Reads a refused response's problem body (it consumes the body). */
  static async from(response: Response): Promise<ParleyError> {
    let problem: Problem | undefined;
    try {
      problem = (await response.json()) as Problem;
    } catch {
      problem = undefined;
    }
    return new ParleyError(response.status, problem, response.headers);
  }
}

/** Retry-After (whole seconds, or an HTTP date) in milliseconds. */
function retryAfterMs(v: string | null): number {
  if (!v) return 0;
  const n = Number(v.trim());
  if (Number.isInteger(n) && n >= 0) return n * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? 0 : Math.max(0, t - Date.now());
}

/** What an openapi-fetch call resolves to. */
export interface FetchResult<T, E> {
  data?: T;
  error?: E;
  response: Response;
}

/**
 * Awaits an openapi-fetch call and returns its data, or throws the
 * refusal as a ParleyError. Calls answered with 204 return undefined.
 */
export async function unwrap<T, E>(call: Promise<FetchResult<T, E>>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) {
    throw new ParleyError(response.status, error as Problem | undefined, response.headers);
  }
  return data as T;
}
