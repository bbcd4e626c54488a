package bootfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/pin/tftp/v3"
	"github.com/prometheus/client_golang/prometheus"
)

// TFTPConfig configures the read-only TFTP server.
type TFTPConfig struct {
	Addr  string // listen address, default ":69"
	Files *Files // required
	// MaxTransfers bounds concurrent transfers (default 128); requests
	// beyond it are refused with a TFTP error.
	MaxTransfers int
	// Anticipate is pin/tftp's non-standard send-ahead window in blocks
	// (0 or 1 = lock-step RFC 1350). See docs/netboot.md.
	Anticipate uint
	// Timeout is the per-block retransmission timeout (default 2 s) and
	// Retries how often a block is resent (default 5).
	Timeout time.Duration
	Retries int
	// Dynamic, when set, is asked first for every request, with the
	// cleaned name and the client's address: files made per client (a
	// machine's GRUB configuration) or kept elsewhere. An error wrapping
	// fs.ErrNotExist passes the request on to Files; any other error
	// refuses it with a TFTP access violation.
	Dynamic func(name string, remote netip.Addr) (File, int64, error)
	// OnSent is called after a file was sent completely.
	OnSent     func(remote *net.UDPAddr, file string, bytes int64)
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// withDefaults returns c with its zero fields filled.
func (c TFTPConfig) withDefaults() TFTPConfig {
	if c.Addr == "" {
		c.Addr = ":69"
	}
	if c.MaxTransfers <= 0 {
		c.MaxTransfers = 128
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Retries <= 0 {
		c.Retries = 5
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports what is wrong with c; it changes nothing.
func (c TFTPConfig) Validate() error {
	if c.Files == nil {
		return errors.New("bootfs: tftp: no files")
	}
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			return fmt.Errorf("bootfs: tftp: listen address %q: %w", c.Addr, err)
		}
	}
	return nil
}

// TFTPServer serves Files read-only over TFTP (RFC 1350) with the blksize
// (RFC 2348) and tsize (RFC 2349) options negotiated by pin/tftp.
type TFTPServer struct {
	cfg   TFTPConfig
	slots chan struct{}
	m     tftpMetrics
}

type tftpMetrics struct {
	transfers *prometheus.CounterVec // result=ok|failed
	bytes     prometheus.Counter
	refused   *prometheus.CounterVec // reason=path|missing|denied|write|busy
	malformed prometheus.Counter
}

// NewTFTPServer validates cfg and registers the counters.
func NewTFTPServer(cfg TFTPConfig) (*TFTPServer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &TFTPServer{cfg: cfg, slots: make(chan struct{}, cfg.MaxTransfers)}
	s.m = tftpMetrics{
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metal_tftp_transfers_total", Help: "TFTP read transfers, by result."}, []string{"result"}),
		bytes:     prometheus.NewCounter(prometheus.CounterOpts{Name: "metal_tftp_bytes_sent_total", Help: "File bytes sent over TFTP."}),
		refused:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metal_tftp_requests_refused_total", Help: "TFTP requests refused, by reason (path, missing, denied, write, busy)."}, []string{"reason"}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{Name: "metal_tftp_packets_malformed_total", Help: "Datagrams to the TFTP port that are not valid requests."}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.m.transfers, s.m.bytes, s.m.refused, s.m.malformed} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("bootfs: tftp: register metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Listen opens the UDP socket: IPv6 for an IPv6 host ("[fd00::1]:69",
// "[::]:69"), else IPv4.
func (s *TFTPServer) Listen() (*net.UDPConn, error) {
	return listenUDP(s.cfg.Addr, "udp4")
}

func listenUDP(hostport, fallback string) (*net.UDPConn, error) {
	network := fallback
	if host, _, err := net.SplitHostPort(hostport); err == nil && strings.Contains(host, ":") {
		network = "udp6"
	}
	addr, err := net.ResolveUDPAddr(network, hostport)
	if err != nil {
		return nil, fmt.Errorf("bootfs: tftp: %w", err)
	}
	c, err := net.ListenUDP(network, addr)
	if err != nil {
		return nil, fmt.Errorf("bootfs: tftp: listen: %w", err)
	}
	return c, nil
}

// Run listens and serves until ctx is done. An address without a host
// (":69") is served on IPv4 and, when the host has IPv6, on IPv6 as well
// (a second, v6-only socket: PXEv6 firmware fetches tftp://[addr]/…).
func (s *TFTPServer) Run(ctx context.Context) error {
	c, err := s.Listen()
	if err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(s.cfg.Addr)
	if host != "" {
		return s.Serve(ctx, c)
	}
	c6, err := listenUDP(net.JoinHostPort("::", port), "udp6")
	if err != nil {
		s.cfg.Logger.Info("tftp: no IPv6 socket; serving IPv4 only", "err", err)
		return s.Serve(ctx, c)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, c6); cancel() }()
	err = s.Serve(ctx, c)
	cancel()
	if err6 := <-errc; err == nil {
		err = err6
	}
	return err
}

// Serve serves on conn until ctx is done. Each transfer answers from its
// own ephemeral port (RFC 1350 TIDs), opened in the network namespace of
// the goroutine running Serve.
func (s *TFTPServer) Serve(ctx context.Context, conn *net.UDPConn) error {
	srv := tftp.NewServer(s.read, s.write)
	srv.SetTimeout(s.cfg.Timeout)
	srv.SetRetries(s.cfg.Retries)
	srv.SetAnticipate(s.cfg.Anticipate)
	srv.SetHook(hook{s})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(conn) }()
	s.cfg.Logger.Info("tftp: serving", "addr", conn.LocalAddr())
	select {
	case <-ctx.Done():
		srv.Shutdown()
		conn.Close()
		<-done
		return nil
	case err := <-done:
		conn.Close()
		return fmt.Errorf("bootfs: tftp: serve: %w", err)
	}
}

func (s *TFTPServer) read(name string, rf io.ReaderFrom) error {
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		s.m.refused.WithLabelValues("busy").Inc()
		return errors.New("server busy")
	}
	ot := rf.(tftp.OutgoingTransfer)
	f, size, err := s.open(name, ot.RemoteAddr())
	if err != nil {
		reason := "missing"
		switch {
		case errors.Is(err, ErrBadPath):
			reason = "path"
		case !errors.Is(err, fs.ErrNotExist):
			reason = "denied"
		}
		s.m.refused.WithLabelValues(reason).Inc()
		s.cfg.Logger.Info("tftp: refused", "file", name, "err", err)
		if reason != "missing" {
			return errors.New("access violation")
		}
		return errors.New("file not found")
	}
	defer f.Close()
	ot.SetSize(size)
	n, err := rf.ReadFrom(f)
	if err != nil {
		return err
	}
	s.m.bytes.Add(float64(n))
	if s.cfg.OnSent != nil {
		ra := ot.RemoteAddr()
		s.cfg.OnSent(&ra, name, n)
	}
	return nil
}

// open asks Dynamic (if any), then Files.
func (s *TFTPServer) open(name string, remote net.UDPAddr) (File, int64, error) {
	if s.cfg.Dynamic != nil {
		clean, err := CleanPath(name)
		if err != nil {
			return nil, 0, err
		}
		src, _ := netip.AddrFromSlice(remote.IP)
		f, size, err := s.cfg.Dynamic(clean, src.Unmap())
		if !errors.Is(err, fs.ErrNotExist) {
			return f, size, err
		}
	}
	return s.cfg.Files.Open(name)
}

func (s *TFTPServer) write(name string, _ io.WriterTo) error {
	s.m.refused.WithLabelValues("write").Inc()
	s.cfg.Logger.Info("tftp: write refused", "file", name)
	return errors.New("read-only server: writes refused")
}

type hook struct{ s *TFTPServer }

func (h hook) OnSuccess(st tftp.TransferStats) {
	h.s.m.transfers.WithLabelValues("ok").Inc()
	// The options the client asked for (blksize, windowsize, …) and the
	// time taken: what decides how long a large file takes.
	h.s.cfg.Logger.Debug("tftp: sent", "file", st.Filename, "remote", st.RemoteAddr.String(), "opts", fmt.Sprint(st.Opts),
		"duration", st.Duration.Round(time.Millisecond), "datagrams", st.DatagramsSent)
}

func (h hook) OnFailure(st tftp.TransferStats, err error) {
	if st.Filename == "" {
		if err != nil {
			h.s.m.malformed.Inc()
		}
		return
	}
	h.s.m.transfers.WithLabelValues("failed").Inc()
}
