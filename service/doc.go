// Package service holds the use cases: login and sessions, roles and scopes,
// the region tree, organizations and invites, and the audit log. Every method
// takes context.Context first; authorization is checked here as well as in
// the HTTP middleware, and anything outside the caller's scope is reported
// as not found so ids cannot be probed.
package service
