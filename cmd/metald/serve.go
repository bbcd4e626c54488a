package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/metal-iaas/metal/internal/agentboot"
	"github.com/metal-iaas/metal/internal/api"
	"github.com/metal-iaas/metal/internal/dashboard"
	"github.com/metal-iaas/metal/internal/images"
	"github.com/metal-iaas/metal/internal/jobs"
	"github.com/metal-iaas/metal/internal/metadata"
	"github.com/metal-iaas/metal/internal/netboot"
	"github.com/metal-iaas/metal/internal/oci"
	"github.com/metal-iaas/metal/internal/power"
	"github.com/metal-iaas/metal/internal/redfish"
	"github.com/metal-iaas/metal/internal/retention"
	"github.com/metal-iaas/metal/internal/server"
	"github.com/metal-iaas/metal/internal/version"
	"github.com/metal-iaas/metal/pkg/bmc"
	"github.com/metal-iaas/metal/pkg/imaging"
)

func newServeCmd() *cobra.Command {
	var cfg Config
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run metald: the HTTP API, and DHCP/TFTP when enabled",
		Long: `Run metald in the foreground until SIGINT or SIGTERM.

The inventory lives in SQLite at <data-dir>/metald.db, next to the key
(secret.key, mode 0600) that seals BMC credentials; with --db postgres://…
it lives in PostgreSQL, shared by every metald given the same URL and the
same secret.key (see docs/postgres.md). Every flag can also be
set through its METALD_* environment variable; an explicit flag wins.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg = cfg.withDefaults()
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
			return serve(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", "./metald-data", "directory for the database, keys and images")
	f.StringVar(&cfg.DB, "db", "", "PostgreSQL URL (postgres://user@/dbname?host=/run/postgresql) shared by several metalds; empty uses SQLite in --data-dir")
	f.StringVar(&cfg.HTTP, "http", ":8080", "HTTP listen address (API, boot scripts, images, metrics)")
	f.StringVar(&cfg.TFTP, "tftp", "", "TFTP listen address; default :69 when --dhcp-mode is proxy or full, else none (\"off\" disables it)")
	f.StringVar(&cfg.TFTPRoot, "tftp-root", "", "extra directory served read-only over TFTP")
	f.StringVar(&cfg.DHCPMode, "dhcp-mode", "off", "DHCP mode: off, proxy (beside an existing DHCP server) or full (authoritative)")
	f.StringVar(&cfg.Interface, "interface", "", "network interface for DHCP")
	f.StringVar(&cfg.AdvertiseURL, "advertise-url", "", "base URL machines use to reach metald, e.g. http://10.0.0.1:8080")
	f.StringVar(&cfg.ImageURL, "image-url", "", "base URL agents download /images/<name> and /chunks/ from, e.g. a caching proxy in front of metald (default --advertise-url)")
	f.StringVar(&cfg.Unknown, "unknown", "ignore", "what to do with unknown MACs: ignore or discover")
	f.StringVar(&cfg.DHCPRange, "dhcp-range", "", "address pool for unknown machines in full mode, START-END")
	f.DurationVar(&cfg.DHCPLease, "dhcp-lease", time.Hour, "lease time in full mode")
	f.StringVar(&cfg.DHCPRouter, "dhcp-router", "", "default gateway handed out (option 3)")
	f.StringSliceVar(&cfg.DHCPDNS, "dhcp-dns", nil, "DNS servers handed out (option 6), comma-separated")
	f.StringVar(&cfg.DHCPDomain, "dhcp-domain", "", "domain name handed out (option 15)")
	f.StringVar(&cfg.DHCP6Mode, "dhcp6-mode", "off", "DHCPv6 on --interface: off, proxy (boot file URLs only) or full (stateful addresses from --dhcp6-range, persisted leases); router advertisements (M/O flags, prefix) stay the router's or radvd's job")
	f.StringVar(&cfg.DHCP6Range, "dhcp6-range", "", "IPv6 address pool in --dhcp6-mode full, START-END")
	f.StringSliceVar(&cfg.DHCP6DNS, "dhcp6-dns", nil, "IPv6 DNS servers handed out (DHCPv6 option 23), comma-separated")
	f.StringVar(&cfg.LogFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&cfg.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.Int64Var(&cfg.MaxImageSize, "max-image-size", imaging.DefaultMaxVirtualSize, "refuse images whose virtual disk is larger (bytes)")
	f.Int64Var(&cfg.MaxImageBuffer, "max-image-buffer", imaging.DefaultMaxBuffer, "memory an image may need for data that precedes its metadata (bytes)")
	f.BoolVar(&cfg.Peers, "peers", true, "agents of a wave (machines writing the same image) share verified chunks peer to peer; metald, the tracker, serves a chunk only when no peer can (docs/fleet.md)")
	f.IntVar(&cfg.PeerPort, "peer-port", 0, "TCP port agents serve chunks to their peers on (0: any free port, announced to metald)")
	f.Int64Var(&cfg.PeerUploadRate, "peer-upload-rate", 0, "bytes a second an agent serves to its peers at most (0: no bound but the link)")
	f.IntVar(&cfg.PeerConns, "peer-conns", 4, "chunk requests an agent serves at once (and the tracker assigns to it)")
	f.IntVar(&cfg.SeedSlots, "seed-slots", 4, "chunks metald serves at once to one wave while peers share the rest")
	f.Int64Var(&cfg.ChunkSize, "chunk-size", imaging.DefaultChunkSize, "bytes of raw disk per chunk of the images described from now on (a multiple of 4096, 64 KiB to 1 GiB): smaller spreads faster between peers, larger means fewer requests")
	f.BoolVar(&cfg.ImageChunks, "image-chunks", true, "describe uploads as verified chunks that agents fetch (zeros never sent; --delta skips what the disk holds); false: agents stream the image file")
	f.StringVar(&cfg.ImageStore, "image-store", "", "oci://HOST[:PORT]/PREFIX: keep every image's file in this registry repository (one tag per image), shared by the metalds that use it and one database; the image directory becomes a cache (docs/oci.md); credentials from metald's auth file (REGISTRY_AUTH_FILE, ~/.docker/config.json)")
	f.BoolVar(&cfg.ImageStorePlainHTTP, "image-store-plain-http", false, "talk to --image-store without TLS")
	f.DurationVar(&cfg.ImageStoreSync, "image-store-sync", images.DefaultSyncInterval, "with --image-store: how often the image library is read back from the store (also before image list and when an image asked for is not known)")
	f.Int64Var(&cfg.ImageCacheSize, "image-cache-size", 0, "with --image-store: bytes of image files kept here at most, least recently served evicted first (0: unbounded)")
	f.StringSliceVar(&cfg.ImageFormats, "image-formats", nil, "allowed image formats and compressions (default: all), e.g. qcow2,vmdk,ova,gzip")
	f.IntVar(&cfg.BMCConcurrency, "bmc-concurrency", bmc.DefaultConcurrency, "BMC operations in flight at once, over all machines")
	f.DurationVar(&cfg.BMCTimeout, "bmc-timeout", bmc.DefaultTimeout, "time limit of one BMC operation, retries included")
	f.DurationVar(&cfg.PowerPoll, "power-poll", 5*time.Minute, "how often to poll every machine's power state (jittered; 0 disables)")
	f.StringVar(&cfg.AgentDir, "agent-dir", "", "directory with the stage-2 agent's vmlinuz and initrd (default <data-dir>/agent)")
	f.DurationVar(&cfg.BootTimeout, "boot-timeout", 15*time.Minute, "how long a job waits for the agent to register after the power cycle")
	f.DurationVar(&cfg.ProgressTimeout, "progress-timeout", 5*time.Minute, "how long a job tolerates silence from a working agent")
	f.BoolVar(&cfg.BootEFI, "boot-efi", false, "ask BMCs for UEFI boot with boot-device changes")
	f.StringVar(&cfg.UEFIBoot, "uefi-boot", "ipxe", "what UEFI x86-64 PXE firmware boots: ipxe, or shim for Secure Boot (Debian's signed shim → GRUB → kernel, over TFTP; per machine: metalctl machine edit --uefi-boot)")
	f.StringVar(&cfg.ShimDir, "shim-dir", "", "directory with shimx64.efi and grubx64.efi for --uefi-boot shim (scripts/fetch-shim.sh; default --agent-dir)")
	f.DurationVar(&cfg.Shutdown, "shutdown-timeout", 10*time.Second, "how long to drain requests on shutdown")
	f.IntVar(&cfg.HTTPMaxConns, "http-max-conns", server.DefaultMaxConns, "open connections each HTTP(S) listener accepts at most (-1: no cap)")
	f.BoolVar(&cfg.TLSAuto, "tls-auto", false, "serve HTTPS with a certificate from metald's own CA in <data-dir>/tls (created once; metald ca prints it)")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "serve HTTPS with this certificate (PEM chain; with --tls-key)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "private key of --tls-cert (PEM)")
	f.StringVar(&cfg.HTTPS, "https", ":8443", "HTTPS listen address with TLS (agent API, images; the API too without --api-listen); --http then serves boot files and metadata only")
	f.StringVar(&cfg.APIListen, "api-listen", "", "separate listen address for /api/v1, the dashboard, Redfish and /metrics (HTTPS with TLS), e.g. on a management network")
	f.StringVar(&cfg.EventRetention, "event-retention", "30d", "how long events are kept: days (30d) or a duration (720h); 0 keeps them forever")
	f.IntVar(&cfg.EventMaxRows, "event-max-rows", retention.DefaultMaxRows, "how many events are kept at most, the oldest pruned first; 0: no limit")
	return cmd
}

// serve runs every service until ctx ends or one fails.
func serve(ctx context.Context, cfg Config) error {
	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	nbCfg, err := cfg.netbootConfig()
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	store, err := openInventory(ctx, cfg.DB, cfg.DataDir)
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	defer store.Close()

	bootURL, agentURL, err := cfg.machineURLs(nbCfg.AdvertiseURL)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	nbCfg.AdvertiseURL, nbCfg.AgentURL = bootURL, agentURL
	tlsConf, caPEM, err := cfg.tlsSetup(agentURL, log)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	srvCfg := server.Config{Addr: cfg.HTTP, TLS: tlsConf, HTTPSAddr: cfg.httpsAddr(), APIAddr: cfg.APIListen,
		MaxConns: cfg.HTTPMaxConns, ShutdownTimeout: cfg.Shutdown}
	if err := srvCfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	srv := server.New(srvCfg, log)
	srv.Registry().MustRegister(server.NewMachineStateCollector(store))
	apiSrv := api.New(store, log)
	apiSrv.Routes(srv.Router())
	imgCfg := images.Config{Dir: filepath.Join(cfg.DataDir, "images"), NoChunks: !cfg.ImageChunks, ChunkSize: cfg.ChunkSize, Imaging: imaging.Options{
		MaxVirtualSize: cfg.MaxImageSize, MaxBuffer: cfg.MaxImageBuffer, Allowed: cfg.ImageFormats,
	}, CacheBytes: cfg.ImageCacheSize, SyncInterval: cfg.ImageStoreSync}
	if cfg.ImageStore != "" {
		if imgCfg.ImageStore, err = oci.NewStore(cfg.ImageStore, oci.Options{PlainHTTP: cfg.ImageStorePlainHTTP}); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	imgs, err := images.New(imgCfg, store, log.With("service", "images"))
	if err != nil {
		return err
	}
	imgs.Routes(srv.Router(), apiSrv.Auth(), apiSrv.Fail)
	srv.Mount("/images/", imgs)
	srv.Mount("/chunks/", imgs.ChunkHandler())
	srv.Registry().MustRegister(imgs.ChunkCollector())
	srv.Registry().MustRegister(imgs.StoreCollectors()...)
	bmcMgr, err := bmc.NewManager(bmc.Config{Concurrency: cfg.BMCConcurrency, Timeout: cfg.BMCTimeout}, log.With("service", "bmc"))
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	pw := power.New(store, bmcMgr, cfg.PowerPoll, log.With("service", "power"))
	pw.Routes(srv.Router(), apiSrv.Auth(), apiSrv.Fail)
	agentFiles, err := agentboot.New(cfg.agentDir(), caPEM, log.With("service", "agentboot"))
	if err != nil {
		return err
	}
	nbCfg.AgentFiles = agentFiles // GRUB loads the agent over TFTP
	nb, err := netboot.New(nbCfg, netbootInventory{store: store}, srv.Registry(), log.With("service", "netboot"))
	if err != nil {
		return err
	}
	md := metadata.New(metadata.Config{Network: metadataNetwork(nbCfg, nb.Subnet())}, store, srv.Registry(), log.With("service", "metadata"))
	md.Routes(srv.Router())
	js := jobs.New(jobs.Config{AdvertiseURL: nbCfg.AgentURL, ImageURL: cfg.ImageURL, DiscoverUnknown: cfg.Unknown == "discover",
		Guard: jobs.AgentGuard{LeaseBound: nbCfg.Mode == netboot.ModeFull || nbCfg.DHCP6.Mode == netboot.ModeFull, Metrics: srv.Registry()}, Manifests: imgs, Images: imgs,
		BootTimeout: cfg.BootTimeout, ProgressTimeout: cfg.ProgressTimeout, EFI: cfg.BootEFI, Seeds: md,
		StopGrace: cfg.Shutdown, Swarm: swarmConfig(cfg, srv.Registry())}, store, pw, log.With("service", "jobs"))
	js.Routes(srv.Router(), apiSrv.Auth(), apiSrv.Fail)
	js.AgentRoutes(srv.Router())
	dashboard.Routes(srv.Router())
	rfCtl := &redfish.PowerController{Power: redfishPower{pw: pw}}
	redfish.New(redfish.Config{}, redfishSystems{store: store, ctl: rfCtl}, rfCtl, redfishAuth{store: store},
		log.With("service", "redfish")).Routes(srv.Router())
	agentFiles.Mount(srv.Mount)
	nb.Routes(srv.Router())
	retCfg, err := cfg.retentionConfig()
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	evRetention := retention.New(retCfg, store, srv.Registry(), log.With("service", "retention"))
	if err := srv.Listen(); err != nil {
		return err
	}
	dbKind, dbWhere, dbSchema := describeDB(cfg.DB, cfg.DataDir)
	log.Info("metald starting", "version", version.Version, "data_dir", cfg.DataDir, "http", srv.Addr().String(),
		"dhcp_mode", cfg.DHCPMode, "tftp", cfg.TFTP, "advertise_url", nbCfg.AdvertiseURL,
		"db", dbKind, "db_at", dbWhere, "schema", dbSchema)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error { return nb.Run(gctx) })
	g.Go(func() error { return pw.Run(gctx) })
	g.Go(func() error { return js.Run(gctx) })
	g.Go(func() error { return imgs.Run(gctx) })
	g.Go(func() error { return evRetention.Run(gctx) })
	// Every service's Run returns only once its background work did
	// (jobs waits for its steps), so the deferred store.Close runs after
	// the last use of the store.
	err = g.Wait()
	if ctx.Err() != nil {
		log.Info("metald stopped", "reason", context.Cause(ctx))
	}
	return err
}
