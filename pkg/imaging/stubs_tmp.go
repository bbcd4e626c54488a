package imaging

import "io"

func openVMDK(r io.Reader, o Options) (Stream, error)                 { return nil, ErrUnsupported }
func openVHD(r io.Reader, o Options) (Stream, error)                  { return nil, ErrUnsupported }
func openFixedVHD(r io.Reader, size int64, o Options) (Stream, error) { return nil, ErrUnsupported }
func openVHDX(r io.Reader, o Options) (Stream, error)                 { return nil, ErrUnsupported }
func openOVA(r io.Reader, o Options) (Stream, error)                  { return nil, ErrUnsupported }
