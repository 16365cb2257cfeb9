package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/datarights/datarights/jobs"
)

// client says who is calling, for the self-service limits. The peer's
// address is the client's, unless the peer is a trusted proxy: then
// X-Forwarded-For is read from the right (each proxy appends the address it
// saw), skipping trusted proxies, and the first other address is the
// client. Anything left of it was written by the client and proves nothing.
func (s *server) client(r *http.Request) jobs.Client {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return jobs.Client{}
	}
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return jobs.Client{IP: peer}
	}
	hops := r.Header.Values("X-Forwarded-For")
	var addrs []string
	for _, h := range hops {
		addrs = append(addrs, strings.Split(h, ",")...)
	}
	for i := len(addrs) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(addrs[i]))
		if err != nil {
			// A malformed hop: nothing left of it can be trusted, and the
			// proxy that appended it is the last address we can vouch for.
			return jobs.Client{IP: peer}
		}
		a = a.Unmap()
		if !s.trusted(a) {
			return jobs.Client{IP: a}
		}
		peer = a
	}
	return jobs.Client{IP: peer}
}

func (s *server) trusted(a netip.Addr) bool {
	for _, p := range s.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientFunc is client for another handler (the privacy center): the same
// reading of the peer and X-Forwarded-For, so the self-service limits count
// the same client whichever door it uses.
func ClientFunc(trusted []netip.Prefix) func(*http.Request) jobs.Client {
	s := &server{Deps: Deps{TrustedProxies: trusted}}
	return s.client
}
