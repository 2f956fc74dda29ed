// The ipaddr filter family (Ansible's ansible.utils.ipaddr), on net/netip.

package template

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ipaddrFilter is the common part of ansible.utils.ipaddr: the value when
// it is an address or network (false when not), or one of its parts.
func ipaddrFilter(v any, query string) (any, error) {
	if l, ok := v.([]any); ok {
		var out []any
		for _, x := range l {
			r, err := ipaddrFilter(x, query)
			if err != nil {
				return nil, err
			}
			if r != false {
				out = append(out, r)
			}
		}
		return out, nil
	}
	s := strings.TrimSpace(Text(v))
	var pfx netip.Prefix
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return false, nil
		}
		pfx = p
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return false, nil
		}
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	switch query {
	case "", "bool":
		if query == "bool" {
			return true, nil
		}
		return s, nil
	case "address":
		return pfx.Addr().String(), nil
	case "network":
		return pfx.Masked().Addr().String(), nil
	case "prefix":
		return pfx.Bits(), nil
	case "netmask":
		if !pfx.Addr().Is4() {
			return nil, errors.New("ipaddr('netmask'): not an IPv4 network")
		}
		m := net.CIDRMask(pfx.Bits(), 32)
		return net.IP(m).String(), nil
	case "net", "cidr", "subnet":
		return pfx.Masked().String(), nil
	case "host":
		return pfx.String(), nil
	case "private":
		if pfx.Addr().IsPrivate() {
			return s, nil
		}
		return false, nil
	case "public":
		if !pfx.Addr().IsPrivate() && !pfx.Addr().IsLoopback() && !pfx.Addr().IsLinkLocalUnicast() {
			return s, nil
		}
		return false, nil
	}
	return nil, fmt.Errorf("ipaddr(%q) is not supported: address, network, prefix, netmask, net, host, private, public, bool", query)
}
