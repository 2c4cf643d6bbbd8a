package sdpfrag

import (
	"fmt"
	"strconv"
	"strings"
)

// Default m= line fields written for a Media built without them.
const (
	defaultProto  = "UDP/TLS/RTP/SAVPF"
	defaultFormat = "0"
)

// Marshal writes the fragment with CRLF line ends: session-level
// ice-options, ice-ufrag, ice-pwd, other attributes and end-of-candidates,
// then each m= section with mid, ice-ufrag, ice-pwd, candidates, other
// attributes and end-of-candidates. It checks every value first, so that what
// it writes parses back to the same Fragment; errors wrap ErrSyntax or
// ErrLimit.
func (f *Fragment) Marshal() ([]byte, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	var b strings.Builder
	if len(f.ICEOptions) > 0 {
		line(&b, "a=ice-options:"+strings.Join(f.ICEOptions, " "))
	}
	if f.ICEUfrag != "" {
		line(&b, "a=ice-ufrag:"+f.ICEUfrag)
		line(&b, "a=ice-pwd:"+f.ICEPwd)
	}
	writeAttributes(&b, f.Attributes)
	if f.EndOfCandidates {
		line(&b, "a=end-of-candidates")
	}
	for i := range f.Media {
		m := &f.Media[i]
		proto, formats := m.Proto, m.Formats
		if proto == "" {
			proto = defaultProto
		}
		if len(formats) == 0 {
			formats = []string{defaultFormat}
		}
		line(&b, "m="+m.Kind+" "+strconv.Itoa(m.Port)+" "+proto+" "+strings.Join(formats, " "))
		if m.MID != "" {
			line(&b, "a=mid:"+m.MID)
		}
		if m.ICEUfrag != "" {
			line(&b, "a=ice-ufrag:"+m.ICEUfrag)
			line(&b, "a=ice-pwd:"+m.ICEPwd)
		}
		for j := range m.Candidates {
			b.WriteString("a=")
			m.Candidates[j].appendTo(&b)
			b.WriteString("\r\n")
		}
		writeAttributes(&b, m.Attributes)
		if m.EndOfCandidates {
			line(&b, "a=end-of-candidates")
		}
	}
	if b.Len() > MaxSize {
		return nil, fmt.Errorf("%w: fragment would be %d bytes, more than MaxSize %d", ErrLimit, b.Len(), MaxSize)
	}
	return []byte(b.String()), nil
}

func line(b *strings.Builder, s string) {
	b.WriteString(s)
	b.WriteString("\r\n")
}

func writeAttributes(b *strings.Builder, as []Attribute) {
	for _, a := range as {
		if a.Value == "" {
			line(b, "a="+a.Key)
		} else {
			line(b, "a="+a.Key+":"+a.Value)
		}
	}
}

// validate applies the rules of Parse to a Fragment built by hand.
func (f *Fragment) validate() error {
	if err := checkCredentials("session", f.ICEUfrag, f.ICEPwd); err != nil {
		return err
	}
	for _, o := range f.ICEOptions {
		if err := checkToken("ice-options token", o, maxToken); err != nil {
			return err
		}
	}
	if err := checkAttributes(f.Attributes, false); err != nil {
		return err
	}
	if len(f.Media) > MaxMedia {
		return fmt.Errorf("%w: %d m= sections, more than MaxMedia %d", ErrLimit, len(f.Media), MaxMedia)
	}
	if n := f.Candidates(); n > MaxCandidates {
		return fmt.Errorf("%w: %d candidates, more than MaxCandidates %d", ErrLimit, n, MaxCandidates)
	}
	for i := range f.Media {
		m := &f.Media[i]
		level := fmt.Sprintf("m= section %d", i+1)
		if err := checkToken("media kind", m.Kind, maxToken); err != nil {
			return err
		}
		if m.Port < 0 || m.Port > 65535 {
			return fmt.Errorf("%w: %s port %d out of 0..65535", ErrSyntax, level, m.Port)
		}
		if m.Proto != "" {
			if err := checkToken("media proto", m.Proto, maxToken); err != nil {
				return err
			}
		}
		for _, fm := range m.Formats {
			if err := checkToken("media format", fm, maxToken); err != nil {
				return err
			}
		}
		if m.MID != "" {
			if err := checkToken("mid", m.MID, maxToken); err != nil {
				return err
			}
		}
		if err := checkCredentials(level, m.ICEUfrag, m.ICEPwd); err != nil {
			return err
		}
		for j := range m.Candidates {
			if err := m.Candidates[j].validate(); err != nil {
				return err
			}
		}
		if err := checkAttributes(m.Attributes, true); err != nil {
			return err
		}
	}
	return nil
}

func checkCredentials(level, ufrag, pwd string) error {
	if err := pairCheck(level, ufrag, pwd); err != nil {
		return err
	}
	if ufrag == "" {
		return nil
	}
	if err := checkICEChars("ice-ufrag", ufrag, minUfrag, maxUfrag); err != nil {
		return err
	}
	return checkICEChars("ice-pwd", pwd, minPwd, maxPwd)
}

// checkAttributes rejects attributes Parse would not leave uninterpreted at
// that level, and values it would reject.
func checkAttributes(as []Attribute, media bool) error {
	iceOptions := 0
	for _, a := range as {
		if err := checkToken("attribute name", a.Key, maxToken); err != nil {
			return err
		}
		if strings.ContainsRune(a.Key, ':') {
			return fmt.Errorf("%w: attribute name %q contains ':'", ErrSyntax, clip(a.Key))
		}
		if err := checkValue(a.Key, a.Value); err != nil {
			return err
		}
		switch a.Key {
		case "ice-ufrag", "ice-pwd", "end-of-candidates", "mid", "candidate":
			return fmt.Errorf("%w: a=%s belongs in its own field, not in Attributes", ErrSyntax, a.Key)
		case "ice-options":
			if !media {
				return fmt.Errorf("%w: a=ice-options belongs in ICEOptions, not in Attributes", ErrSyntax)
			}
			if iceOptions++; iceOptions > 1 {
				return fmt.Errorf("%w: second a=ice-options in one m= section", ErrSyntax)
			}
		}
	}
	return nil
}
