package sdpfrag

// Fragment is a parsed application/trickle-ice-sdpfrag body, such as:
//
//	a=ice-ufrag:EsAw                  (session or media level)
//	a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1
//	a=ice-options:trickle
//	a=group:BUNDLE 0 1
//	m=audio 9 RTP/AVP 0
//	a=mid:0
//	a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw
//	a=end-of-candidates
type Fragment struct {
	// ICEUfrag and ICEPwd are the session-level ICE credentials, empty when
	// absent. A fragment that carries credentials carries both.
	ICEUfrag string
	ICEPwd   string
	// ICEOptions are the tokens of a session-level a=ice-options line.
	ICEOptions []string
	// EndOfCandidates is set by a session-level a=end-of-candidates.
	EndOfCandidates bool
	// Attributes are the other session-level attributes (such as
	// a=group:BUNDLE 0 1), in order.
	Attributes []Attribute
	// Media are the m= sections, in order.
	Media []Media
}

// Media is one m= section of a fragment.
type Media struct {
	// Kind, Port, Proto and Formats are the fields of the m= line
	// ("m=audio 9 RTP/AVP 0"). Marshal writes "UDP/TLS/RTP/SAVPF" for an
	// empty Proto and "0" for empty Formats.
	Kind    string
	Port    int
	Proto   string
	Formats []string
	// MID is the value of a=mid, empty when absent.
	MID string
	// ICEUfrag and ICEPwd are media-level credentials, empty when absent.
	ICEUfrag string
	ICEPwd   string
	// Candidates are the a=candidate lines, in order.
	Candidates []Candidate
	// EndOfCandidates is set by a=end-of-candidates in this section.
	EndOfCandidates bool
	// Attributes are the other attributes of the section, in order.
	Attributes []Attribute
}

// Attribute is an a= line the package does not interpret: "a=Key:Value", or
// "a=Key" when Value is empty.
type Attribute struct {
	Key   string
	Value string
}

// Credentials returns the ICE credentials that apply to the fragment: the
// session-level ones, or else those of the first m= section that has them.
// Both are empty when the fragment carries none.
func (f *Fragment) Credentials() (ufrag, pwd string) {
	if f.ICEUfrag != "" {
		return f.ICEUfrag, f.ICEPwd
	}
	for i := range f.Media {
		if f.Media[i].ICEUfrag != "" {
			return f.Media[i].ICEUfrag, f.Media[i].ICEPwd
		}
	}
	return "", ""
}

// Candidates returns the number of candidates in all m= sections.
func (f *Fragment) Candidates() int {
	n := 0
	for i := range f.Media {
		n += len(f.Media[i].Candidates)
	}
	return n
}

// Attribute returns the value of the first session-level attribute named
// key, and whether there is one.
func (f *Fragment) Attribute(key string) (string, bool) {
	for _, a := range f.Attributes {
		if a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}
