package imaging

import (
	"io"
	"sync/atomic"
	"time"
)

// CountingReader counts the bytes read through it. Put it around the input
// given to Open and pass it as WriteOptions.Input so progress reports show
// how much of the (possibly compressed) image has been consumed.
type CountingReader struct {
	r io.Reader
	n atomic.Int64
}

// NewCountingReader wraps r.
func NewCountingReader(r io.Reader) *CountingReader { return &CountingReader{r: r} }

func (c *CountingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Count returns the bytes read so far; safe for concurrent use.
func (c *CountingReader) Count() int64 { return c.n.Load() }

// Progress is a snapshot of a running Write.
type Progress struct {
	// BytesRead is what the input reader delivered (0 without
	// WriteOptions.Input).
	BytesRead int64 `json:"bytes_read"`
	// Position is how far into the raw disk the writer has got.
	Position int64 `json:"position"`
	// BytesWritten counts data bytes written to the target (zeros written
	// or offloaded to BLKZEROOUT are in ZeroBytes).
	BytesWritten int64 `json:"bytes_written"`
	ZeroBytes    int64 `json:"zero_bytes"`
	// Total is the virtual size, -1 when the input doesn't declare it.
	Total int64 `json:"total"`
	// Rate is Position advanced per second since the start.
	Rate float64 `json:"rate"`
	// ETA estimates the remaining time; zero when unknown.
	ETA     time.Duration `json:"eta"`
	Elapsed time.Duration `json:"elapsed"`
	Done    bool          `json:"done"`
}

type progressTicker struct {
	fn       func(Progress)
	interval time.Duration
	start    time.Time
	last     time.Time
	in       *CountingReader
}

func (p *progressTicker) report(pr Progress, force bool) {
	if p.fn == nil {
		return
	}
	now := time.Now()
	if !force && now.Sub(p.last) < p.interval {
		return
	}
	p.last = now
	pr.Elapsed = now.Sub(p.start)
	if p.in != nil {
		pr.BytesRead = p.in.Count()
	}
	if s := pr.Elapsed.Seconds(); s > 0 {
		pr.Rate = float64(pr.Position) / s
	}
	if pr.Total > 0 && pr.Rate > 0 && pr.Position < pr.Total {
		pr.ETA = time.Duration(float64(pr.Total-pr.Position) / pr.Rate * float64(time.Second))
	}
	p.fn(pr)
}
