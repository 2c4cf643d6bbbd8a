package broker

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/whepcast/whepcast/pkg/ingest"
	"github.com/whepcast/whepcast/pkg/lifecycle"
)

// streamLifecycle bounds the broker's media streams (package lifecycle):
// the admission of new streams (--max-streams, --storage-budget) and the
// removal of ended ones after their retention (--max-age).
type streamLifecycle struct {
	admission *lifecycle.Admission
	reclaimer *lifecycle.Reclaimer
}

// startLifecycle sets b.life up (no I/O); the reclaimer runs under b.run. The
// ingest publications (b.reg) may be created after it: they are looked up
// when a publisher ends or a sweep runs.
func (b *Broker) startLifecycle(_ context.Context, metrics *ingest.Metrics) error {
	js, err := jetstream.New(b.nc)
	if err != nil {
		return fmt.Errorf("broker: stream lifecycle: %w", err)
	}
	ac := lifecycle.AdmissionConfig{
		MaxStreams:    b.cfg.MaxStreams,
		StorageBudget: b.cfg.StorageBudget,
		// Ended streams free their messages within their retention.
		RetryAfter: b.cfg.MaxAge,
		Successor:  b.successorWaiting,
	}
	if ac.StorageBudget > 0 {
		ac.Usage = lifecycle.StorageUsage(js)
		ac.Exists = lifecycle.StreamExists(js)
	}
	adm, err := lifecycle.NewAdmission(ac)
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	rec, err := lifecycle.NewReclaimer(js, lifecycle.ReclaimerConfig{
		Retention:       b.cfg.MaxAge,
		CatalogReplicas: b.cfg.Replicas,
		Live:            adm.Live,
		OnRemove:        metrics.DeleteStream,
		Logger:          b.log.With("component", "lifecycle"),
	})
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	b.life = &streamLifecycle{admission: adm, reclaimer: rec}
	b.log.Info("stream lifecycle", "retention", b.cfg.MaxAge, "max_streams", b.cfg.MaxStreams, "storage_budget", b.cfg.StorageBudget)
	return nil
}

// successorWaiting reports whether a publication of stream waits to take
// it over (lifecycle.AdmissionConfig.Successor).
func (b *Broker) successorWaiting(stream string) bool {
	if b.reg == nil {
		return false
	}
	for _, p := range b.reg.Live() {
		if p.Stream == stream && p.Waiting {
			return true
		}
	}
	return false
}
