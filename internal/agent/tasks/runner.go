package tasks

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// Runner runs provision and wipe tasks. It satisfies agent.TaskRunner.
type Runner struct {
	// DevDir holds the disk device nodes ("/dev"); tests point it at a
	// directory of regular files.
	DevDir string
	// SysRoot is the sysfs mount ("/sys"), for partitions.
	SysRoot string
	// Disks lists the disks (hwinfo.Disks in production).
	Disks func() []agentapi.Disk
	HTTP  *http.Client
	// Resume tunes the image download (and the retries of a chunked
	// one); its Client defaults to HTTP.
	Resume ResumeOptions
	// Chunks tunes a provision by chunks (an image with a manifest).
	Chunks ChunkOptions
	// Swarm reaches metald's chunk tracker for a task whose image has
	// Swarm set; nil fetches every chunk from metald.
	Swarm SwarmClient
	Log   *slog.Logger
}

func (r *Runner) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// RunTask runs t and returns its result (TaskID and timing are the
// caller's).
func (r *Runner) RunTask(ctx context.Context, t agentapi.Task, report func(agentapi.Progress)) agentapi.Result {
	var res agentapi.Result
	var err error
	switch t.Kind {
	case agentapi.TaskProvision:
		res, err = r.Provision(ctx, t, report)
	case agentapi.TaskWipe:
		res, err = r.Wipe(ctx, t, report)
	default:
		err = fmt.Errorf("task kind %q is not a disk task", t.Kind)
	}
	if err != nil {
		res.Success = false
		res.Error = err.Error()
	} else {
		res.Success = true
	}
	return res
}

func (r *Runner) devPath(name string) string {
	dir := r.DevDir
	if dir == "" {
		dir = "/dev"
	}
	return filepath.Join(dir, name)
}

// progressFrom fills rate and ETA.
func progressFrom(phase agentapi.Phase, read, written, total int64, start time.Time) agentapi.Progress {
	p := agentapi.Progress{Phase: phase, BytesRead: read, BytesWritten: written, Total: total, ETASeconds: -1, Time: time.Now()}
	if el := time.Since(start).Seconds(); el > 0 {
		p.RateBytesPerSec = float64(written) / el
		if p.RateBytesPerSec > 0 && total > 0 {
			p.ETASeconds = float64(total-written) / p.RateBytesPerSec
		}
	}
	return p
}
