package agentapi

import (
	"fmt"
	"net/netip"
	"strings"
)

// PathSwarm is POST (task token) by an agent writing chunks with
// Image.Swarm set: it tells metald, the tracker, which chunks it still
// needs, which it now holds and which sources failed it, and gets the
// next chunks to fetch, each with the peers to fetch it from (none:
// from Image.ChunkURL, metald itself).
const PathSwarm = PathPrefix + "/swarm"

// PeerChunkPath is the path an agent serves its verified chunks under:
// GET PeerChunkPath + digest, with "Authorization: Bearer " + the
// serving agent's SwarmRequest.Token, answers the chunk's raw bytes
// compressed with zstd, like ChunkURL.
const PeerChunkPath = "/chunks/"

// Swarm turns on peer-to-peer chunk sharing for a provision by chunks:
// the agent serves the chunks it has verified to the other machines of
// the wave (those writing the same manifest) and fetches from them the
// chunks metald's tracker says they hold.
type Swarm struct {
	// Port is the TCP port the agent serves chunks on (0: any free one,
	// announced to the tracker).
	Port int `json:"port"`
	// UploadBytesPerSec bounds the rate the agent serves at (0: no bound).
	UploadBytesPerSec int64 `json:"upload_bytes_per_sec,omitempty"`
	// MaxConns bounds the requests it serves at once; more are answered
	// 503 (0: 4).
	MaxConns int `json:"max_conns,omitempty"`
	// LingerSeconds bounds how long an agent that has written every
	// chunk keeps serving the chunks only it holds (SwarmResponse.Stay)
	// before it finishes (0: 30).
	LingerSeconds int `json:"linger_seconds,omitempty"`
}

// SwarmRequest is the body of POST PathSwarm.
type SwarmRequest struct {
	Version int    `json:"version"`
	TaskID  string `json:"task_id"`
	// Port and Token are where and how peers fetch this agent's chunks
	// (sent every time, so that a restarted metald learns them again).
	// Port 0: the agent serves nothing.
	Port  int    `json:"port"`
	Token string `json:"token,omitempty"`
	// Need lists every chunk digest the agent still has to fetch: sent
	// in the first request and whenever the answer says Resend.
	Need []string `json:"need,omitempty"`
	// Have lists the digests verified since the last request (all of
	// them when answering Resend).
	Have []string `json:"have,omitempty"`
	// Want is how many chunks the agent can start fetching now.
	Want int `json:"want"`
	// Failed lists the fetches that failed since the last request.
	Failed []SwarmFailure `json:"failed,omitempty"`
	// Leaving: the agent stops serving (it is done, or gives up).
	Leaving bool `json:"leaving,omitempty"`
}

// SwarmFailure is one failed fetch of a chunk.
type SwarmFailure struct {
	Digest string `json:"digest"`
	// Peer is the peer's "addr:port"; empty for metald.
	Peer string `json:"peer,omitempty"`
	// Corrupt: the peer answered data that is not the chunk (wrong
	// digest, not zstd, too long): the peer is dropped from the wave.
	Corrupt bool `json:"corrupt,omitempty"`
	// Busy: the peer answered 503, serving as many as it may; not held
	// against it.
	Busy  bool   `json:"busy,omitempty"`
	Error string `json:"error"`
}

// SwarmResponse answers a SwarmRequest.
type SwarmResponse struct {
	// Assign are the chunks to fetch now, at most Want of them.
	Assign []SwarmAssignment `json:"assign,omitempty"`
	// RetryAfterMillis: ask again after this long even with nothing
	// finished (the chunks left are being fetched by peers that will
	// hold them soon).
	RetryAfterMillis int `json:"retry_after_ms,omitempty"`
	// Stay: this agent has every chunk it needs, but holds the only
	// copy of chunks others still need: keep serving and ask again
	// after RetryAfterMillis (up to Swarm.LingerSeconds).
	Stay bool `json:"stay,omitempty"`
	// Resend: metald does not know this agent (it restarted): send Need
	// and every digest held again.
	Resend bool `json:"resend,omitempty"`
}

// SwarmAssignment is one chunk to fetch.
type SwarmAssignment struct {
	Digest string `json:"digest"`
	// Peers hold the chunk, best first; empty: fetch it from metald.
	Peers []Peer `json:"peers,omitempty"`
}

// Peer is an agent that serves chunks.
type Peer struct {
	// Addr is "addr:port" ("[v6]:port" for IPv6).
	Addr  string `json:"addr"`
	Token string `json:"token"`
}

// Validate checks a swarm request before the tracker reads it.
func (r *SwarmRequest) Validate() error {
	if r.Version != Version {
		return fmt.Errorf("%w: version %d, want %d", ErrInvalid, r.Version, Version)
	}
	if r.TaskID == "" {
		return fmt.Errorf("%w: swarm request without task_id", ErrInvalid)
	}
	if r.Port < 0 || r.Port > 65535 {
		return fmt.Errorf("%w: swarm port %d", ErrInvalid, r.Port)
	}
	if r.Port != 0 && (len(r.Token) < 16 || len(r.Token) > 128) {
		return fmt.Errorf("%w: swarm token of %d characters, want 16 to 128", ErrInvalid, len(r.Token))
	}
	if r.Want < 0 || r.Want > 64 {
		return fmt.Errorf("%w: swarm want %d, at most 64", ErrInvalid, r.Want)
	}
	for _, list := range [][]string{r.Need, r.Have} {
		for _, d := range list {
			if !IsDigest(d) {
				return fmt.Errorf("%w: swarm chunk %q is not a lower-case hex SHA-256", ErrInvalid, d)
			}
		}
	}
	for _, f := range r.Failed {
		if !IsDigest(f.Digest) {
			return fmt.Errorf("%w: swarm failure for chunk %q: not a lower-case hex SHA-256", ErrInvalid, f.Digest)
		}
		if f.Peer != "" {
			if _, err := netip.ParseAddrPort(f.Peer); err != nil {
				return fmt.Errorf("%w: swarm failure names peer %q: %v", ErrInvalid, f.Peer, err)
			}
		}
	}
	return nil
}

// IsDigest reports whether s is a lower-case hex SHA-256.
func IsDigest(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}
