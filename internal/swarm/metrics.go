package swarm

import "github.com/prometheus/client_golang/prometheus"

// Collector exposes the tracker's counts: metald_swarm_chunks_assigned_total
// by source (peer or metald), metald_swarm_peers_dropped_total and
// metald_swarm_members by nothing (all waves).
func (t *Tracker) Collector() prometheus.Collector { return collector{t} }

type collector struct{ t *Tracker }

var (
	descAssigned = prometheus.NewDesc("metald_swarm_chunks_assigned_total",
		"Chunks the tracker assigned to agents, by where they were to fetch them from.", []string{"source"}, nil)
	descDropped = prometheus.NewDesc("metald_swarm_peers_dropped_total",
		"Peers dropped from their wave for serving bad data or failing fetches.", nil, nil)
	descMembers = prometheus.NewDesc("metald_swarm_members",
		"Agents currently in a wave.", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descAssigned
	ch <- descDropped
	ch <- descMembers
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.t.Stats()
	ch <- prometheus.MustNewConstMetric(descAssigned, prometheus.CounterValue, float64(st.FromPeers), "peer")
	ch <- prometheus.MustNewConstMetric(descAssigned, prometheus.CounterValue, float64(st.FromMetald), "metald")
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(st.Dropped))
	n := 0
	for _, m := range c.t.Members() {
		n += m
	}
	ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(n))
}
