package sdpfrag

import (
	"fmt"
	"strconv"
	"strings"
)

// Candidate is the value of an a=candidate attribute (RFC 8839 section 5.1):
//
//	candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> *(<name> <value>)
type Candidate struct {
	Foundation string
	Component  int
	// Transport is written as received ("udp", "UDP", "tcp").
	Transport string
	Priority  uint32
	// Address is an IP address or a host name (such as an mDNS ".local" name).
	Address string
	Port    int
	// Type is host, srflx, prflx, relay or another token.
	Type string
	// Extensions are the name/value pairs after the type, in order
	// (raddr, rport, generation, ufrag, tcptype, network-id, ...).
	Extensions []Extension
}

// Extension is one name/value pair of a candidate.
type Extension struct {
	Name  string
	Value string
}

// Extension returns the value of the first extension named name, and
// whether there is one.
func (c *Candidate) Extension(name string) (string, bool) {
	for _, e := range c.Extensions {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// Ufrag returns the value of the candidate's "ufrag" extension, empty when
// absent.
func (c *Candidate) Ufrag() string {
	v, _ := c.Extension("ufrag")
	return v
}

// String returns the attribute value, "candidate:..." as an
// RTCIceCandidateInit.candidate holds it.
func (c *Candidate) String() string {
	var b strings.Builder
	c.appendTo(&b)
	return b.String()
}

func (c *Candidate) appendTo(b *strings.Builder) {
	b.WriteString("candidate:")
	b.WriteString(c.Foundation)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(c.Component))
	b.WriteByte(' ')
	b.WriteString(c.Transport)
	b.WriteByte(' ')
	b.WriteString(strconv.FormatUint(uint64(c.Priority), 10))
	b.WriteByte(' ')
	b.WriteString(c.Address)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(c.Port))
	b.WriteString(" typ ")
	b.WriteString(c.Type)
	for _, e := range c.Extensions {
		b.WriteByte(' ')
		b.WriteString(e.Name)
		b.WriteByte(' ')
		b.WriteString(e.Value)
	}
}

// ParseCandidate parses a candidate attribute value, with or without its
// "candidate:" prefix. Errors wrap ErrSyntax.
func ParseCandidate(s string) (Candidate, error) {
	s = strings.TrimPrefix(s, "candidate:")
	f := strings.Split(s, " ")
	if len(f) < 8 {
		return Candidate{}, fmt.Errorf("%w: candidate has %d fields, want at least 8", ErrSyntax, len(f))
	}
	var c Candidate
	var err error
	if err = checkICEChars("candidate foundation", f[0], 1, maxFoundation); err != nil {
		return Candidate{}, err
	}
	c.Foundation = f[0]
	comp, err := parseDecimal("candidate component", f[1], 1, 256)
	if err != nil {
		return Candidate{}, err
	}
	c.Component = int(comp)
	if err = checkToken("candidate transport", f[2], maxToken); err != nil {
		return Candidate{}, err
	}
	c.Transport = f[2]
	prio, err := parseDecimal("candidate priority", f[3], 0, 1<<32-1)
	if err != nil {
		return Candidate{}, err
	}
	c.Priority = uint32(prio)
	if err = checkAddress(f[4]); err != nil {
		return Candidate{}, err
	}
	c.Address = f[4]
	port, err := parseDecimal("candidate port", f[5], 0, 65535)
	if err != nil {
		return Candidate{}, err
	}
	c.Port = int(port)
	if f[6] != "typ" {
		return Candidate{}, fmt.Errorf("%w: candidate field 7 is %q, want \"typ\"", ErrSyntax, clip(f[6]))
	}
	if err = checkToken("candidate type", f[7], maxToken); err != nil {
		return Candidate{}, err
	}
	c.Type = f[7]
	ext := f[8:]
	if len(ext)%2 != 0 {
		return Candidate{}, fmt.Errorf("%w: candidate extension %q has no value", ErrSyntax, clip(ext[len(ext)-1]))
	}
	for i := 0; i < len(ext); i += 2 {
		if err = checkToken("candidate extension name", ext[i], maxToken); err != nil {
			return Candidate{}, err
		}
		if err = checkToken("candidate extension value", ext[i+1], maxToken); err != nil {
			return Candidate{}, err
		}
		c.Extensions = append(c.Extensions, Extension{Name: ext[i], Value: ext[i+1]})
	}
	return c, nil
}

// validate checks a candidate built by hand before Marshal writes it, with
// the rules of ParseCandidate.
func (c *Candidate) validate() error {
	if err := checkICEChars("candidate foundation", c.Foundation, 1, maxFoundation); err != nil {
		return err
	}
	if c.Component < 1 || c.Component > 256 {
		return fmt.Errorf("%w: candidate component %d out of 1..256", ErrSyntax, c.Component)
	}
	if err := checkToken("candidate transport", c.Transport, maxToken); err != nil {
		return err
	}
	if err := checkAddress(c.Address); err != nil {
		return err
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("%w: candidate port %d out of 0..65535", ErrSyntax, c.Port)
	}
	if err := checkToken("candidate type", c.Type, maxToken); err != nil {
		return err
	}
	for _, e := range c.Extensions {
		if err := checkToken("candidate extension name", e.Name, maxToken); err != nil {
			return err
		}
		if err := checkToken("candidate extension value", e.Value, maxToken); err != nil {
			return err
		}
	}
	return nil
}
