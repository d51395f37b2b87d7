package node

import "slices"

// rpcNamespace is the namespace of the vflux admin API.
const rpcNamespace = "vflux"

// warnExposedAdminAPI logs a warning for each HTTP or WebSocket endpoint that
// serves the vflux admin API. That API mints tokens (addBalance) and its
// endpoints have no authentication: go-ethereum's JWT endpoint serves only the
// Authenticated "eth"/"engine" APIs and cannot carry it, so only IPC (the
// default), an SSH tunnel or an authenticating reverse proxy keep it safe.
// It must run after the stack opened its endpoints (Start), so the logged
// address carries the real port.
func (s *Service) warnExposedAdminAPI() {
	cfg := s.stack.Config()
	const msg = "The vflux admin API (it mints tokens) is reachable WITHOUT AUTHENTICATION: keep it on IPC, or reach it through an SSH tunnel or an authenticating reverse proxy"
	if cfg.HTTPHost != "" && servesNamespace(cfg.HTTPModules, rpcNamespace) {
		s.log.Warn(msg, "transport", "http", "endpoint", s.stack.HTTPEndpoint())
	}
	if cfg.WSHost != "" && servesNamespace(cfg.WSModules, rpcNamespace) {
		s.log.Warn(msg, "transport", "ws", "endpoint", s.stack.WSEndpoint())
	}
}

// servesNamespace reports whether an HTTP or WebSocket endpoint with this
// module list serves namespace ns: go-ethereum serves every API when the list
// is empty.
func servesNamespace(modules []string, ns string) bool {
	return len(modules) == 0 || slices.Contains(modules, ns)
}
