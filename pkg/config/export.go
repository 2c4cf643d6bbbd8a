package config

import "github.com/whepcast/whepcast/pkg/export"

// Export maps the WHEP settings onto the export.Config of the clip exports
// served beside WHEP.
func (w WHEP) Export() export.Config {
	return export.Config{MaxExports: w.MaxExports}
}
