package sdpfrag

import (
	"bytes"
	"fmt"
	"strings"
)

// Parse parses an application/trickle-ice-sdpfrag body. It accepts lines
// ended by CRLF or LF and only the line types "a=" and "m="; blank lines are
// skipped. ICE credentials must be ice-chars of legal length, candidates
// have their fields and extension pairs checked (RFC 8839). Errors wrap
// ErrLimit or ErrSyntax and name the offending line (1-based).
func Parse(b []byte) (*Fragment, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: fragment is %d bytes, more than MaxSize %d", ErrLimit, len(b), MaxSize)
	}
	p := parser{f: &Fragment{}}
	lineNo := 0
	for len(b) > 0 {
		lineNo++
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue
		}
		if len(line) > MaxLineLength {
			return nil, fmt.Errorf("%w: line %d is %d bytes, more than MaxLineLength %d", ErrLimit, lineNo, len(line), MaxLineLength)
		}
		if err := p.line(string(line)); err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	return p.f, nil
}

type parser struct {
	f          *Fragment
	media      *Media // current m= section, nil at session level
	candidates int
	// seen* catch a second ice-ufrag/ice-pwd/mid/ice-options at one level.
	seen map[string]bool
}

func (p *parser) line(l string) error {
	if len(l) < 2 || l[1] != '=' {
		return fmt.Errorf("%w: %q is not an SDP line", ErrSyntax, clip(l))
	}
	switch l[0] {
	case 'm':
		return p.mLine(l[2:])
	case 'a':
		return p.attribute(l[2:])
	default:
		return fmt.Errorf("%w: line type %q does not belong in a fragment (only a= and m=)", ErrSyntax, l[:2])
	}
}

func (p *parser) mLine(v string) error {
	if err := p.closeLevel(); err != nil {
		return err
	}
	if len(p.f.Media) >= MaxMedia {
		return fmt.Errorf("%w: more than MaxMedia %d m= sections", ErrLimit, MaxMedia)
	}
	f := strings.Split(v, " ")
	if len(f) < 4 {
		return fmt.Errorf("%w: m= line %q has %d fields, want at least 4 (kind port proto format)", ErrSyntax, clip(v), len(f))
	}
	m := Media{Kind: f[0], Proto: f[2], Formats: f[3:]}
	if err := checkToken("media kind", m.Kind, maxToken); err != nil {
		return err
	}
	port, err := parseDecimal("media port", f[1], 0, 65535)
	if err != nil {
		return err
	}
	m.Port = int(port)
	if err := checkToken("media proto", m.Proto, maxToken); err != nil {
		return err
	}
	for _, fm := range m.Formats {
		if err := checkToken("media format", fm, maxToken); err != nil {
			return err
		}
	}
	p.f.Media = append(p.f.Media, m)
	p.media = &p.f.Media[len(p.f.Media)-1]
	p.seen = nil
	return nil
}

func (p *parser) attribute(v string) error {
	key, value, _ := strings.Cut(v, ":")
	if err := checkToken("attribute name", key, maxToken); err != nil {
		return err
	}
	if err := checkValue(key, value); err != nil {
		return err
	}
	switch key {
	case "ice-ufrag", "ice-pwd", "mid", "ice-options":
		if p.seen[key] {
			return fmt.Errorf("%w: second a=%s at the same level", ErrSyntax, key)
		}
		if p.seen == nil {
			p.seen = make(map[string]bool)
		}
		p.seen[key] = true
	}
	m := p.media
	switch key {
	case "ice-ufrag":
		if err := checkICEChars("ice-ufrag", value, minUfrag, maxUfrag); err != nil {
			return err
		}
		if m == nil {
			p.f.ICEUfrag = value
		} else {
			m.ICEUfrag = value
		}
	case "ice-pwd":
		if err := checkICEChars("ice-pwd", value, minPwd, maxPwd); err != nil {
			return err
		}
		if m == nil {
			p.f.ICEPwd = value
		} else {
			m.ICEPwd = value
		}
	case "end-of-candidates":
		if value != "" {
			return fmt.Errorf("%w: a=end-of-candidates takes no value", ErrSyntax)
		}
		if m == nil {
			p.f.EndOfCandidates = true
		} else {
			m.EndOfCandidates = true
		}
	case "ice-options":
		if m != nil {
			m.Attributes = append(m.Attributes, Attribute{Key: key, Value: value})
			break
		}
		for _, o := range strings.Split(value, " ") {
			if err := checkToken("ice-options token", o, maxToken); err != nil {
				return err
			}
			p.f.ICEOptions = append(p.f.ICEOptions, o)
		}
	case "mid":
		if m == nil {
			return fmt.Errorf("%w: a=mid before any m= line", ErrSyntax)
		}
		if err := checkToken("mid", value, maxToken); err != nil {
			return err
		}
		m.MID = value
	case "candidate":
		if m == nil {
			return fmt.Errorf("%w: a=candidate before any m= line", ErrSyntax)
		}
		if p.candidates >= MaxCandidates {
			return fmt.Errorf("%w: more than MaxCandidates %d candidates", ErrLimit, MaxCandidates)
		}
		c, err := ParseCandidate(value)
		if err != nil {
			return err
		}
		p.candidates++
		m.Candidates = append(m.Candidates, c)
	default:
		if m == nil {
			p.f.Attributes = append(p.f.Attributes, Attribute{Key: key, Value: value})
		} else {
			m.Attributes = append(m.Attributes, Attribute{Key: key, Value: value})
		}
	}
	return nil
}

// closeLevel checks the level being left: credentials come in pairs.
func (p *parser) closeLevel() error {
	if p.media == nil {
		return pairCheck("session", p.f.ICEUfrag, p.f.ICEPwd)
	}
	return pairCheck(fmt.Sprintf("m= section %d", len(p.f.Media)), p.media.ICEUfrag, p.media.ICEPwd)
}

func (p *parser) finish() error {
	return p.closeLevel()
}

func pairCheck(level, ufrag, pwd string) error {
	if (ufrag == "") != (pwd == "") {
		return fmt.Errorf("%w: %s has only one of a=ice-ufrag and a=ice-pwd", ErrSyntax, level)
	}
	return nil
}

// checkValue checks an attribute value: visible ASCII and spaces, not
// starting or ending with a space.
func checkValue(key, v string) error {
	for i := 0; i < len(v); i++ {
		if v[i] < ' ' || v[i] > '~' {
			return fmt.Errorf("%w: a=%s value has a byte that is not printable ASCII", ErrSyntax, clip(key))
		}
	}
	if v != strings.TrimSpace(v) {
		return fmt.Errorf("%w: a=%s value starts or ends with a space", ErrSyntax, clip(key))
	}
	return nil
}
