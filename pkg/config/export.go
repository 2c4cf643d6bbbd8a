package config

import "github.com/whepcast/whepcast/pkg/export"

// Config maps the export settings onto the export.Config of the clip
// exports a whep-node serves beside WHEP.
func (e Export) Config() export.Config {
	return export.Config{MaxExports: e.MaxExports}
}
