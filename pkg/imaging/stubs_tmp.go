package imaging

import "io"

func openOVA(r io.Reader, o Options) (Stream, error) { return nil, ErrUnsupported }
