package sdpfrag

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// casesParseMarshal feeds TestParse, TestMarshal and the FuzzParse seeds.
// out is what Marshal writes for want (the canonical form of in).
var casesParseMarshal = []struct {
	name string
	in   string
	want *Fragment
	out  string
}{
	{
		name: "medooze trickle",
		in: "a=ice-ufrag:EsAw\r\n" +
			"a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n" +
			"m=audio 9 RTP/AVP 0\r\n" +
			"a=mid:0\r\n" +
			"a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n" +
			"a=candidate:473322822 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active generation 0 ufrag EsAw network-id 1\r\n" +
			"a=end-of-candidates\r\n",
		want: &Fragment{
			ICEUfrag: "EsAw",
			ICEPwd:   "P2uYro0UCOQ4zxjKXaWCBui1",
			Media: []Media{{
				Kind: "audio", Port: 9, Proto: "RTP/AVP", Formats: []string{"0"}, MID: "0",
				Candidates: []Candidate{
					{
						Foundation: "1387637174", Component: 1, Transport: "udp", Priority: 2122260223,
						Address: "192.0.2.1", Port: 61764, Type: "host",
						Extensions: []Extension{{"generation", "0"}, {"ufrag", "EsAw"}, {"network-id", "1"}},
					},
					{
						Foundation: "473322822", Component: 1, Transport: "tcp", Priority: 1518280447,
						Address: "192.0.2.1", Port: 9, Type: "host",
						Extensions: []Extension{{"tcptype", "active"}, {"generation", "0"}, {"ufrag", "EsAw"}, {"network-id", "1"}},
					},
				},
				EndOfCandidates: true,
			}},
		},
	},
	{
		name: "ice restart, credentials only, LF line ends",
		in:   "a=ice-ufrag:ZZZZ\na=ice-pwd:abcdefghijklmnopqrstuvwx\n",
		want: &Fragment{ICEUfrag: "ZZZZ", ICEPwd: "abcdefghijklmnopqrstuvwx"},
		out:  "a=ice-ufrag:ZZZZ\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n",
	},
	{
		name: "server answer with options, group, srflx and media-level credentials",
		in: "a=ice-options:trickle ice2\r\n" +
			"a=group:BUNDLE 0 1\r\n" +
			"m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n" +
			"a=mid:0\r\n" +
			"a=ice-ufrag:abcdefgh\r\n" +
			"a=ice-pwd:0123456789+/0123456789+/\r\n" +
			"a=candidate:2 1 UDP 1694498815 203.0.113.7 8189 typ srflx raddr 10.0.0.2 rport 8189\r\n" +
			"a=rtcp-mux\r\n" +
			"m=audio 0 UDP/TLS/RTP/SAVPF 111\r\n" +
			"a=mid:1\r\n",
		want: &Fragment{
			ICEOptions: []string{"trickle", "ice2"},
			Attributes: []Attribute{{Key: "group", Value: "BUNDLE 0 1"}},
			Media: []Media{
				{
					Kind: "video", Port: 9, Proto: "UDP/TLS/RTP/SAVPF", Formats: []string{"96", "97"}, MID: "0",
					ICEUfrag: "abcdefgh", ICEPwd: "0123456789+/0123456789+/",
					Candidates: []Candidate{{
						Foundation: "2", Component: 1, Transport: "UDP", Priority: 1694498815,
						Address: "203.0.113.7", Port: 8189, Type: "srflx",
						Extensions: []Extension{{"raddr", "10.0.0.2"}, {"rport", "8189"}},
					}},
					Attributes: []Attribute{{Key: "rtcp-mux"}},
				},
				{Kind: "audio", Port: 0, Proto: "UDP/TLS/RTP/SAVPF", Formats: []string{"111"}, MID: "1"},
			},
		},
	},
	{
		name: "mdns and ipv6 candidates, session end-of-candidates, blank lines",
		in: "\r\na=end-of-candidates\r\n\r\n" +
			"m=video 9 UDP/TLS/RTP/SAVPF 0\r\n" +
			"a=candidate:3 1 udp 2113937151 4b4f2a5e-1f1f-4c3d-9a3e-1234567890ab.local 50000 typ host\r\n" +
			"a=candidate:4 1 udp 2113937150 fe80::1%eth0 50001 typ host\r\n",
		want: &Fragment{
			EndOfCandidates: true,
			Media: []Media{{
				Kind: "video", Port: 9, Proto: "UDP/TLS/RTP/SAVPF", Formats: []string{"0"},
				Candidates: []Candidate{
					{Foundation: "3", Component: 1, Transport: "udp", Priority: 2113937151,
						Address: "4b4f2a5e-1f1f-4c3d-9a3e-1234567890ab.local", Port: 50000, Type: "host"},
					{Foundation: "4", Component: 1, Transport: "udp", Priority: 2113937150,
						Address: "fe80::1%eth0", Port: 50001, Type: "host"},
				},
			}},
		},
		out: "a=end-of-candidates\r\n" +
			"m=video 9 UDP/TLS/RTP/SAVPF 0\r\n" +
			"a=candidate:3 1 udp 2113937151 4b4f2a5e-1f1f-4c3d-9a3e-1234567890ab.local 50000 typ host\r\n" +
			"a=candidate:4 1 udp 2113937150 fe80::1%eth0 50001 typ host\r\n",
	},
	{
		name: "empty",
		in:   "",
		want: &Fragment{},
	},
	{
		name: "attribute with an empty value is written without colon",
		in:   "a=x-flag:\r\n",
		want: &Fragment{Attributes: []Attribute{{Key: "x-flag"}}},
		out:  "a=x-flag\r\n",
	},
}

// casesParseError are inputs Parse must reject, and the error they wrap.
var casesParseError = []struct {
	name string
	in   string
	err  error
	msg  string
}{
	{"c= line", "c=IN IP4 0.0.0.0\r\n", ErrSyntax, `line 1: sdpfrag: syntax error: line type "c="`},
	{"not an sdp line", "hello\r\n", ErrSyntax, "is not an SDP line"},
	{"ufrag too short", "a=ice-ufrag:abc\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n", ErrSyntax, "ice-ufrag is 3 characters"},
	{"pwd too short", "a=ice-ufrag:abcd\r\na=ice-pwd:short\r\n", ErrSyntax, "ice-pwd is 5 characters"},
	{"ufrag bad char", "a=ice-ufrag:ab-cd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n", ErrSyntax, "outside A-Z"},
	{"ufrag without pwd", "a=ice-ufrag:abcd\r\n", ErrSyntax, "only one of a=ice-ufrag and a=ice-pwd"},
	{"pwd without ufrag in media", "m=audio 9 RTP/AVP 0\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\nm=video 9 RTP/AVP 0\r\n", ErrSyntax, "m= section 1 has only one"},
	{"second ufrag", "a=ice-ufrag:abcd\r\na=ice-ufrag:efgh\r\n", ErrSyntax, "second a=ice-ufrag"},
	{"mid at session level", "a=mid:0\r\n", ErrSyntax, "a=mid before any m= line"},
	{"candidate at session level", "a=candidate:1 1 udp 1 1.2.3.4 5 typ host\r\n", ErrSyntax, "before any m= line"},
	{"short m line", "m=audio 9\r\n", ErrSyntax, "want at least 4"},
	{"bad media port", "m=audio 70000 RTP/AVP 0\r\n", ErrSyntax, "media port"},
	{"candidate too few fields", "m=audio 9 RTP/AVP 0\r\na=candidate:1 1 udp 1 1.2.3.4 5 typ\r\n", ErrSyntax, "has 7 fields"},
	{"candidate no typ", "m=audio 9 RTP/AVP 0\r\na=candidate:1 1 udp 1 1.2.3.4 5 type host\r\n", ErrSyntax, `want "typ"`},
	{"candidate bad port", "m=audio 9 RTP/AVP 0\r\na=candidate:1 1 udp 1 1.2.3.4 65536 typ host\r\n", ErrSyntax, "candidate port"},
	{"candidate priority overflow", "m=audio 9 RTP/AVP 0\r\na=candidate:1 1 udp 4294967296 1.2.3.4 5 typ host\r\n", ErrSyntax, "candidate priority"},
	{"candidate component 0", "m=audio 9 RTP/AVP 0\r\na=candidate:1 0 udp 1 1.2.3.4 5 typ host\r\n", ErrSyntax, "candidate component"},
	{"candidate odd extension", "m=audio 9 RTP/AVP 0\r\na=candidate:1 1 udp 1 1.2.3.4 5 typ host generation\r\n", ErrSyntax, "has no value"},
	{"candidate bad address", "m=audio 9 RTP/AVP 0\r\na=candidate:1 1 udp 1 1.2.3.4/8 5 typ host\r\n", ErrSyntax, "candidate address"},
	{"candidate double space", "m=audio 9 RTP/AVP 0\r\na=candidate:1 1 udp 1  1.2.3.4 5 typ host\r\n", ErrSyntax, "candidate"},
	{"control byte", "a=x:\x01\r\n", ErrSyntax, "not printable"},
	{"trailing space value", "a=group:BUNDLE 0 \r\n", ErrSyntax, "ends with a space"},
	{"end-of-candidates value", "a=end-of-candidates:1\r\n", ErrSyntax, "takes no value"},
	{"empty attribute name", "a=:x\r\n", ErrSyntax, "empty attribute name"},
	{"long line", "a=x:" + strings.Repeat("y", MaxLineLength) + "\r\n", ErrLimit, "line 1 is 4100 bytes"},
	{"too large", strings.Repeat("a=x\r\n", MaxSize/5+1), ErrLimit, "more than MaxSize"},
	{"too many media", strings.Repeat("m=audio 9 RTP/AVP 0\r\n", MaxMedia+1), ErrLimit, "MaxMedia"},
	{"too many candidates", "m=audio 9 RTP/AVP 0\r\n" + strings.Repeat("a=candidate:1 1 udp 1 1.2.3.4 5 typ host\r\n", MaxCandidates+1), ErrLimit, "MaxCandidates"},
}

func TestParse(t *testing.T) {
	for _, c := range casesParseMarshal {
		t.Run(c.name, func(t *testing.T) {
			got, err := Parse([]byte(c.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Parse:\n got %#v\nwant %#v", got, c.want)
			}
		})
	}
}

func TestParseError(t *testing.T) {
	for _, c := range casesParseError {
		t.Run(c.name, func(t *testing.T) {
			got, err := Parse([]byte(c.in))
			if !errors.Is(err, c.err) {
				t.Fatalf("Parse error = %v (fragment %+v), want %v", err, got, c.err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("Parse error %q does not contain %q", err, c.msg)
			}
			if got != nil {
				t.Fatalf("Parse returned a fragment with an error: %+v", got)
			}
		})
	}
}

func TestMarshal(t *testing.T) {
	for _, c := range casesParseMarshal {
		t.Run(c.name, func(t *testing.T) {
			want := c.out
			if want == "" {
				want = c.in
			}
			got, err := c.want.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if string(got) != want {
				t.Fatalf("Marshal:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestMarshalDefaults(t *testing.T) {
	f := &Fragment{
		ICEUfrag: "abcd", ICEPwd: "abcdefghijklmnopqrstuvwx",
		Media: []Media{{Kind: "video", Port: 9, MID: "0", Candidates: []Candidate{{
			Foundation: "1", Component: 1, Transport: "udp", Priority: 2130706431,
			Address: "127.0.0.1", Port: 8189, Type: "host",
		}}, EndOfCandidates: true}},
	}
	got, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n" +
		"a=candidate:1 1 udp 2130706431 127.0.0.1 8189 typ host\r\na=end-of-candidates\r\n"
	if string(got) != want {
		t.Fatalf("Marshal:\n got %q\nwant %q", got, want)
	}
}

func TestMarshalRejects(t *testing.T) {
	cand := Candidate{Foundation: "1", Component: 1, Transport: "udp", Address: "1.2.3.4", Port: 1, Type: "host"}
	withCand := func(mod func(*Candidate)) *Fragment {
		c := cand
		mod(&c)
		return &Fragment{Media: []Media{{Kind: "audio", Candidates: []Candidate{c}}}}
	}
	cases := []struct {
		name string
		f    *Fragment
		err  error
	}{
		{"ufrag without pwd", &Fragment{ICEUfrag: "abcd"}, ErrSyntax},
		{"newline in ufrag", &Fragment{ICEUfrag: "ab\r\ncd", ICEPwd: "abcdefghijklmnopqrstuvwx"}, ErrSyntax},
		{"newline in attribute", &Fragment{Attributes: []Attribute{{Key: "x", Value: "1\r\na=ice-ufrag:abcd"}}}, ErrSyntax},
		{"colon in attribute key", &Fragment{Attributes: []Attribute{{Key: "x:y"}}}, ErrSyntax},
		{"interpreted key in attributes", &Fragment{Attributes: []Attribute{{Key: "ice-ufrag", Value: "abcd"}}}, ErrSyntax},
		{"session ice-options in attributes", &Fragment{Attributes: []Attribute{{Key: "ice-options", Value: "trickle"}}}, ErrSyntax},
		{"empty kind", &Fragment{Media: []Media{{}}}, ErrSyntax},
		{"space in kind", &Fragment{Media: []Media{{Kind: "au dio"}}}, ErrSyntax},
		{"space in mid", &Fragment{Media: []Media{{Kind: "audio", MID: "0 1"}}}, ErrSyntax},
		{"bad port", &Fragment{Media: []Media{{Kind: "audio", Port: -1}}}, ErrSyntax},
		{"space in foundation", withCand(func(c *Candidate) { c.Foundation = "1 2" }), ErrSyntax},
		{"space in address", withCand(func(c *Candidate) { c.Address = "1.2.3.4 5" }), ErrSyntax},
		{"component 0", withCand(func(c *Candidate) { c.Component = 0 }), ErrSyntax},
		{"port too large", withCand(func(c *Candidate) { c.Port = 65536 }), ErrSyntax},
		{"empty extension value", withCand(func(c *Candidate) { c.Extensions = []Extension{{Name: "ufrag"}} }), ErrSyntax},
		{"too many media", &Fragment{Media: make([]Media, MaxMedia+1)}, ErrLimit},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := c.f.Marshal()
			if !errors.Is(err, c.err) {
				t.Fatalf("Marshal = %q, %v; want error %v", b, err, c.err)
			}
		})
	}
}

func TestCandidateString(t *testing.T) {
	s := "candidate:842163049 1 udp 1677729535 198.51.100.3 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag sXP5 network-cost 999"
	c, err := ParseCandidate(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.String(); got != s {
		t.Fatalf("String = %q, want %q", got, s)
	}
	if c.Ufrag() != "sXP5" {
		t.Fatalf("Ufrag = %q", c.Ufrag())
	}
	if v, ok := c.Extension("rport"); !ok || v != "0" {
		t.Fatalf("rport = %q %v", v, ok)
	}
	if _, ok := c.Extension("tcptype"); ok {
		t.Fatal("tcptype found")
	}
	// Without the prefix too.
	c2, err := ParseCandidate(strings.TrimPrefix(s, "candidate:"))
	if err != nil || !reflect.DeepEqual(c, c2) {
		t.Fatalf("ParseCandidate without prefix = %+v, %v", c2, err)
	}
}

func TestCredentials(t *testing.T) {
	f := &Fragment{Media: []Media{{Kind: "audio"}, {Kind: "video", ICEUfrag: "mmmm", ICEPwd: "p"}}}
	if u, p := f.Credentials(); u != "mmmm" || p != "p" {
		t.Fatalf("media credentials = %q %q", u, p)
	}
	f.ICEUfrag, f.ICEPwd = "ssss", "q"
	if u, p := f.Credentials(); u != "ssss" || p != "q" {
		t.Fatalf("session credentials = %q %q", u, p)
	}
	if u, p := (&Fragment{}).Credentials(); u != "" || p != "" {
		t.Fatalf("no credentials = %q %q", u, p)
	}
	f.Attributes = []Attribute{{Key: "group", Value: "BUNDLE 0"}}
	if v, ok := f.Attribute("group"); !ok || v != "BUNDLE 0" {
		t.Fatalf("Attribute = %q %v", v, ok)
	}
}

func FuzzParse(f *testing.F) {
	for _, c := range casesParseMarshal {
		f.Add([]byte(c.in))
	}
	for _, c := range casesParseError {
		if len(c.in) < 1024 {
			f.Add([]byte(c.in))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		frag, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrLimit) {
				t.Fatalf("Parse error %v wraps neither ErrSyntax nor ErrLimit", err)
			}
			return
		}
		out, err := frag.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed fragment: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse of Marshal output %q: %v", out, err)
		}
		if !reflect.DeepEqual(frag, again) {
			t.Fatalf("round trip changed the fragment:\n%#v\n%#v", frag, again)
		}
		out2, err := again.Marshal()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("Marshal not stable: %q vs %q (%v)", out, out2, err)
		}
	})
}
