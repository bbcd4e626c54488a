package ovf

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"strings"
	"time"
)

// Certificate is a parsed .cert file of a signed OVF package: a line
// "SHA256(package.mf)= <hex signature>" followed by one or more PEM
// certificates, the signer's first.
//
// Nothing here consults a trust store: VerifySignature proves that the
// manifest was signed by the key in the enclosed certificate, not that the
// certificate belongs to anyone in particular.
type Certificate struct {
	Algo       string    `json:"algo"`
	SignedFile string    `json:"signed_file"`
	Signature  []byte    `json:"-"`
	Subject    string    `json:"subject"`
	Issuer     string    `json:"issuer"`
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
	SelfSigned bool      `json:"self_signed"`
	// Chain holds every enclosed certificate, the signer's first.
	Chain []*x509.Certificate `json:"-"`
}

// ParseCertificate reads a .cert file (at most DefaultMaxManifestSize).
func ParseCertificate(r io.Reader) (*Certificate, error) {
	buf, err := io.ReadAll(io.LimitReader(r, DefaultMaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("ovf: read certificate: %w", err)
	}
	if int64(len(buf)) > DefaultMaxManifestSize {
		return nil, fmt.Errorf("%w: certificate file larger than %d bytes", ErrTooLarge, DefaultMaxManifestSize)
	}
	c := &Certificate{}
	sc := bufio.NewScanner(bytes.NewReader(buf))
	sc.Buffer(make([]byte, 0, 4096), len(buf)+1)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "-----BEGIN") {
			break
		}
		if c.Algo != "" {
			return nil, fmt.Errorf("%w: certificate file has more than one signature line", ErrMalformed)
		}
		if err := c.parseSignatureLine(line); err != nil {
			return nil, err
		}
	}
	if c.Algo == "" {
		return nil, fmt.Errorf("%w: certificate file has no ALGO(file)= signature line", ErrMalformed)
	}
	rest := buf
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		x, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate: %v", ErrMalformed, err)
		}
		c.Chain = append(c.Chain, x)
	}
	if len(c.Chain) == 0 {
		return nil, fmt.Errorf("%w: certificate file holds no PEM certificate", ErrMalformed)
	}
	s := c.Chain[0]
	c.Subject, c.Issuer = s.Subject.String(), s.Issuer.String()
	c.NotBefore, c.NotAfter = s.NotBefore, s.NotAfter
	c.SelfSigned = bytes.Equal(s.RawSubject, s.RawIssuer) && s.CheckSignatureFrom(s) == nil
	return c, nil
}

func (c *Certificate) parseSignatureLine(line string) error {
	open := strings.IndexByte(line, '(')
	eq := strings.LastIndexByte(line, '=')
	left := ""
	if open > 0 && eq > open {
		left = strings.TrimRight(line[:eq], " \t")
	}
	if !strings.HasSuffix(left, ")") || len(left)-1 <= open+1 {
		return fmt.Errorf("%w: certificate signature line %q is not ALGO(file)= hex", ErrMalformed, clip(line))
	}
	c.Algo = normalizeAlgo(line[:open])
	if _, ok := digestSize(c.Algo); !ok {
		return fmt.Errorf("%w: signature digest algorithm %q", ErrUnsupported, c.Algo)
	}
	c.SignedFile = left[open+1 : len(left)-1]
	sig, err := hex.DecodeString(strings.TrimSpace(line[eq+1:]))
	if err != nil || len(sig) == 0 {
		return fmt.Errorf("%w: signature of %q is not hex", ErrMalformed, c.SignedFile)
	}
	c.Signature = sig
	return nil
}

// VerifySignature checks the signature over the signed file's bytes
// (normally the manifest) with the signer certificate's public key (RSA
// PKCS#1 v1.5, ECDSA or Ed25519). It does not check validity dates or
// trust; see Certificate.
func (c *Certificate) VerifySignature(signed []byte) error {
	if len(c.Chain) == 0 {
		return fmt.Errorf("%w: no certificate", ErrMalformed)
	}
	x := c.Chain[0]
	var algo x509.SignatureAlgorithm
	switch x.PublicKey.(type) {
	case *rsa.PublicKey:
		algo = map[string]x509.SignatureAlgorithm{"SHA1": x509.SHA1WithRSA, "SHA256": x509.SHA256WithRSA, "SHA512": x509.SHA512WithRSA}[c.Algo]
	case *ecdsa.PublicKey:
		algo = map[string]x509.SignatureAlgorithm{"SHA1": x509.ECDSAWithSHA1, "SHA256": x509.ECDSAWithSHA256, "SHA512": x509.ECDSAWithSHA512}[c.Algo]
	case ed25519.PublicKey:
		algo = x509.PureEd25519
	default:
		return fmt.Errorf("%w: certificate key type %T", ErrUnsupported, x.PublicKey)
	}
	if err := x.CheckSignature(algo, signed, c.Signature); err != nil {
		return fmt.Errorf("%w: signature over %q does not verify with the enclosed certificate: %v", ErrRefused, c.SignedFile, err)
	}
	return nil
}
