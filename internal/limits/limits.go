// Package limits holds a replica's in-process limits: the bound on password
// hashes in progress, the caps on open streams, and the resolution of a
// request's client address (for the login limits, which live in Postgres so
// that they hold across replicas).
package limits
