// Holds the TypeScript types that openapi-typescript generates from
// openapi.yaml (into gen/, by make lint) against bodies shaped exactly as
// the server sends them: each assignment below fails to type-check if the
// document describes something the server does not send.
import type { components } from "./gen/parley";
import type { components as components30 } from "./gen/parley-3.0";

type Schemas = components["schemas"];

// A problem as Parley writes it: no type (absent means about:blank).
export const notFound: Schemas["ErrorModel"] = { title: "Not Found", status: 404, detail: "no such endpoint" };

// A validation problem, with errors[].
export const invalid: Schemas["ErrorModel"] = {
  title: "Unprocessable Entity",
  status: 422,
  detail: "validation failed",
  errors: [{ message: "expected length >= 3", location: "body.username", value: "al" }],
};

// type stays allowed, for problems relayed from elsewhere.
export const typed: Schemas["ErrorModel"] = { type: "about:blank", title: "Conflict", status: 409 };

// The 3.0.3 document, for older generators, types problems the same way.
export const notFound30: components30["schemas"]["ErrorModel"] = notFound;
