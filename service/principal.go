package service

import (
	"context"
	"slices"
	"strings"
)

// Binding is one role of the caller with its scope resolved.
type Binding struct {
	ID         string
	Role       string
	RegionID   string
	RegionPath string
	RegionName string
	OrgID      string
	OrgName    string
	OrgPath    string // path of the organization's home region
}

// Principal is the authenticated caller.
type Principal struct {
	UserID    string
	SessionID string
	Bindings  []Binding
}

// HasRole reports whether the caller holds any of roles anywhere.
func (p *Principal) HasRole(roles ...string) bool {
	if p == nil {
		return false
	}
	for _, b := range p.Bindings {
		if slices.Contains(roles, b.Role) {
			return true
		}
	}
	return false
}

// CanRegion reports whether one of roles is bound to a region whose subtree
// contains the region with the given path.
func (p *Principal) CanRegion(path string, roles ...string) bool {
	if p == nil || path == "" {
		return false
	}
	for _, b := range p.Bindings {
		if b.RegionPath != "" && slices.Contains(roles, b.Role) && strings.HasPrefix(path, b.RegionPath) {
			return true
		}
	}
	return false
}

// CanOrg reports whether one of roles is bound to the organization.
func (p *Principal) CanOrg(orgID string, roles ...string) bool {
	if p == nil || orgID == "" {
		return false
	}
	for _, b := range p.Bindings {
		if b.OrgID == orgID && slices.Contains(roles, b.Role) {
			return true
		}
	}
	return false
}

// RegionPaths lists the region scopes of the given roles.
func (p *Principal) RegionPaths(roles ...string) []string {
	var out []string
	for _, b := range p.Bindings {
		if b.RegionPath != "" && slices.Contains(roles, b.Role) {
			out = append(out, b.RegionPath)
		}
	}
	return out
}

// OrgIDs lists the organizations the caller holds one of roles in.
func (p *Principal) OrgIDs(roles ...string) []string {
	var out []string
	for _, b := range p.Bindings {
		if b.OrgID != "" && slices.Contains(roles, b.Role) {
			out = append(out, b.OrgID)
		}
	}
	return out
}

// Roles lists the distinct roles held.
func (p *Principal) Roles() []string {
	var out []string
	for _, b := range p.Bindings {
		if !slices.Contains(out, b.Role) {
			out = append(out, b.Role)
		}
	}
	return out
}

type principalKey struct{}

// WithPrincipal stores the caller in ctx.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller, or nil for anonymous requests.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// RequestMeta is what the audit log records about the request.
type RequestMeta struct {
	RequestID string
	IP        string
	UserAgent string
}

type metaKey struct{}

// WithRequestMeta stores request metadata in ctx.
func WithRequestMeta(ctx context.Context, m RequestMeta) context.Context {
	return context.WithValue(ctx, metaKey{}, m)
}

// RequestMetaFrom returns the request metadata (zero when absent).
func RequestMetaFrom(ctx context.Context) RequestMeta {
	m, _ := ctx.Value(metaKey{}).(RequestMeta)
	return m
}
