package dhcp

import "github.com/prometheus/client_golang/prometheus"

// metrics are the server's Prometheus counters.
type metrics struct {
	received  *prometheus.CounterVec // by message type
	replies   *prometheus.CounterVec // by message type
	malformed prometheus.Counter
	dropped   *prometheus.CounterVec // by reason
	errors    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	return newMetricsFor(reg, "dhcp", "DHCPv4")
}

// newMetricsFor names the counters metal_<sub>_… for protocol proto.
func newMetricsFor(reg prometheus.Registerer, sub, proto string) (*metrics, error) {
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metal_" + sub + "_packets_received_total",
			Help: "Well-formed " + proto + " packets received, by message type.",
		}, []string{"type"}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metal_" + sub + "_replies_sent_total",
			Help: proto + " replies sent, by message type.",
		}, []string{"type"}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "metal_" + sub + "_packets_malformed_total",
			Help: "Datagrams dropped because they are not valid " + proto + " requests.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metal_" + sub + "_packets_dropped_total",
			Help: "Valid packets dropped without handling, by reason.",
		}, []string{"reason"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "metal_" + sub + "_handler_errors_total",
			Help: "Requests whose handler or reply send failed.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.received, m.replies, m.malformed, m.dropped, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
