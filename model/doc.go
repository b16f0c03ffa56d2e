// Package model holds the persistent domain types. Models carry no json tags:
// the api package maps them to DTOs so secrets (openid, session_key,
// plaintext personal data) cannot leak by accident.
package model
