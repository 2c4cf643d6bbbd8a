// Package sdpfrag reads and writes SDP fragments of the media type
// application/trickle-ice-sdpfrag (RFC 8840, section 9), the body of a WHIP
// or WHEP PATCH request and of the answer to an ICE restart: only the SDP
// lines that trickle ICE needs (credentials, options, BUNDLE group, media
// sections with their mid, candidates, end-of-candidates; see Fragment).
// Every ICE attribute is checked against the grammar of RFC 8839; other
// attributes are kept as they are, so that a fragment survives Parse and
// Marshal unchanged.
//
// Input is untrusted: Parse enforces MaxSize, MaxLineLength, MaxMedia and
// MaxCandidates and says which limit was hit (errors wrap ErrLimit); any
// other defect wraps ErrSyntax and names the line. Neither ever panics.
package sdpfrag

// MediaType is the Content-Type of a fragment.
const MediaType = "application/trickle-ice-sdpfrag"

// Limits applied by Parse.
const (
	// MaxSize is the largest fragment accepted, in bytes.
	MaxSize = 64 * 1024
	// MaxLineLength is the longest line accepted, in bytes, without its end.
	MaxLineLength = 4096
	// MaxMedia is the largest number of m= sections accepted.
	MaxMedia = 32
	// MaxCandidates is the largest number of a=candidate lines accepted in
	// the whole fragment.
	MaxCandidates = 256
)

// Length limits of RFC 8839 for ICE credentials.
const (
	minUfrag = 4
	maxUfrag = 256
	minPwd   = 22
	maxPwd   = 256
	// maxFoundation is the foundation length limit (RFC 8839 section 5.1).
	maxFoundation = 32
	// maxAddress bounds a candidate's connection address (an IP or an FQDN).
	maxAddress = 255
	// maxToken bounds other single-token values (mid, kinds, types).
	maxToken = 256
)
