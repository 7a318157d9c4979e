// Package api is Parley's Go client. Half of it is generated from the
// checked-in openapi.yaml by oapi-codegen (client.gen.go, make openapi); the
// other half is written by hand on top of it:
//
//   - New, Login and Register build a client that sends a bearer token from
//     a TokenSource and refreshes it once on a 401 (SessionTokens refreshes
//     one at a time: the server treats a second refresh with the same token
//     as reuse and revokes the session);
//   - every refused call comes back as one error type, *Error, carrying the
//     problem body (errors.As, or ErrorStatus);
//   - RoomStream and UserStream read the Server-Sent Event streams as typed
//     Events, and reconnect with Last-Event-ID as the contract describes.
//
// Ids are plain strings throughout (api/oapi-codegen.yaml maps the uuid
// format to string), so an id read from a response goes straight into the
// next call's path.
package api

//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../openapi.yaml
