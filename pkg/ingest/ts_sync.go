package ingest

import (
	"bytes"
	"fmt"
	"io"
)

const (
	packetSize = 188
	syncByte   = 0x47
	// syncCheckSize is how much of a body checkSync reads: enough for three
	// sync bytes at 188-byte spacing whatever the offset of the first.
	syncCheckSize = 3 * packetSize
)

// checkSync reads the first syncCheckSize bytes of r (fewer when r ends
// first) and fails with ErrNotTS unless they hold a full packet whose sync
// byte is followed by one every 188 bytes, within the bytes read. It returns
// a reader of the whole stream, the bytes read included.
func checkSync(r io.Reader) (io.Reader, error) {
	head := make([]byte, syncCheckSize)
	n, err := io.ReadFull(r, head)
	head = head[:n]
	switch {
	case err == io.EOF:
		return nil, fmt.Errorf("%w: the body is empty", ErrNotTS)
	case err != nil && err != io.ErrUnexpectedEOF:
		return nil, err
	}
	if !inSync(head) {
		return nil, fmt.Errorf("%w: no sync byte (0x47) at 188-byte spacing in the first %d bytes", ErrNotTS, n)
	}
	return io.MultiReader(bytes.NewReader(head), r), nil
}

// inSync reports whether b holds a full packet from an offset below 188,
// with a sync byte at that offset and every 188 bytes after it in b.
func inSync(b []byte) bool {
	for off := 0; off < packetSize && off+packetSize <= len(b); off++ {
		ok := true
		for i := off; i < len(b); i += packetSize {
			if b[i] != syncByte {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
