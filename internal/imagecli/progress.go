package imagecli

import (
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/metal-iaas/metal/pkg/imaging"
)

// progressBar draws conversion progress on a terminal.
type progressBar struct {
	bar *progressbar.ProgressBar
}

// newProgressBar returns nil unless w is a terminal: piped or redirected
// stderr stays quiet.
func newProgressBar(w io.Writer, total int64) *progressBar {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	if total <= 0 {
		total = -1
	}
	return &progressBar{bar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription("converting"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(0),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionOnCompletion(func() { f.WriteString("\n") }),
	)}
}

func (p *progressBar) update(pr imaging.Progress) {
	_ = p.bar.Set64(pr.Position)
}

func (p *progressBar) finish() {
	_ = p.bar.Finish()
}
