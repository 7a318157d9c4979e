// Package api is Parley's Go client, generated from the checked-in
// openapi.yaml by oapi-codegen (make openapi). It is what users of other
// languages get from their own generators; internal/e2e/client tests that it
// works against a real server.
package api

//go:generate go tool oapi-codegen -generate types,client -package api -o client.gen.go ../openapi.yaml
