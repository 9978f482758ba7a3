package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/alecthomas/kong"

	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/size"
	"github.com/qftp/qftp/transport/relay"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // a measurement failed or was interrupted
	exitUsage = 2
)

// scenarios are the links --links may name, in the order they run.
var scenarios = []string{"loopback", "lossy"}

type cli struct {
	Size        byteSize      `default:"256M" help:"Size of the large file for put and get (K, M, G: powers of 1024)."`
	Files       int           `default:"2000" help:"Number of small files uploaded as one tree."`
	FileSize    byteSize      `name:"file-size" default:"16K" help:"Size of each small file."`
	Jobs        int           `default:"64" help:"Small files in flight at once (qftp put -r -j)."`
	Connections string        `default:"auto" help:"QUIC connections qftp spreads a transfer over: a number, or auto."`
	Links       []string      `default:"loopback,lossy" help:"Scenarios to run: loopback, lossy (through the relay), or both."`
	Delay       time.Duration `default:"10ms" help:"One-way delay of the lossy relay, in each direction."`
	Loss        float64       `default:"0.01" help:"Probability that the lossy relay drops a datagram, in each direction."`
	Reorder     float64       `default:"0" help:"Probability that the lossy relay delays a datagram by an extra half delay (reordering)."`
	Blackout    time.Duration `default:"0" help:"If set, the lossy relay drops everything for this long, starting a third of the way through each lossy get."`
	Seed        uint64        `default:"1" help:"Seed of the relay's losses and of the file contents."`
	Runs        int           `default:"1" help:"Runs of each measurement; the table shows the median."`
	BareTime    time.Duration `name:"bare-time" default:"30s" help:"Stop a bare quic-go stream after this long and report its rate so far (0: always send --size); one lossy stream can take minutes for a large --size."`
	Timeout     time.Duration `default:"5m" help:"Time limit of each run of each measurement."`
	Dir         string        `type:"path" placeholder:"DIR" help:"Where to create the temporary work directory (default: the system's temporary directory)."`
}

// byteSize is a flag holding a byte count written like "256M" or "16KiB".
type byteSize int64

// UnmarshalText implements encoding.TextUnmarshaler for kong.
func (b *byteSize) UnmarshalText(text []byte) error {
	n, err := size.Parse(string(text))
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

// Validate checks the flags before any I/O.
func (c *cli) Validate() error {
	switch {
	case c.Size < 1 || c.Size > 1<<40:
		return errors.New("--size must be between 1 byte and 1 TiB")
	case c.Files < 1 || c.Files > 1_000_000:
		return errors.New("--files must be between 1 and 1000000")
	case c.FileSize < 1 || c.FileSize > 1<<30:
		return errors.New("--file-size must be between 1 byte and 1 GiB")
	case int64(c.Files)*int64(c.FileSize) > 64<<30:
		return errors.New("--files × --file-size must be at most 64 GiB")
	case c.Jobs < 1 || c.Jobs > 1024:
		return errors.New("--jobs must be between 1 and 1024")
	case c.Delay < 0 || c.Delay > 10*time.Second:
		return errors.New("--delay must be between 0 and 10s")
	case !(c.Loss >= 0 && c.Loss < 1):
		return errors.New("--loss must be at least 0 and below 1")
	case !(c.Reorder >= 0 && c.Reorder <= 1):
		return errors.New("--reorder must be between 0 and 1")
	case c.Blackout < 0:
		return errors.New("--blackout must not be negative")
	case c.Runs < 1 || c.Runs > 100:
		return errors.New("--runs must be between 1 and 100")
	case c.BareTime < 0:
		return errors.New("--bare-time must not be negative")
	case c.Timeout <= 0:
		return errors.New("--timeout must be positive")
	case c.Blackout >= c.Timeout:
		return errors.New("--blackout must be shorter than --timeout")
	}
	if _, err := c.connections(); err != nil {
		return err
	}
	if len(c.Links) == 0 {
		return errors.New("--links: name at least one of loopback, lossy")
	}
	for _, l := range c.Links {
		if !slices.Contains(scenarios, l) {
			return fmt.Errorf("--links: unknown scenario %q (want loopback, lossy)", l)
		}
	}
	return nil
}

// connections parses --connections.
func (c *cli) connections() (int, error) {
	if c.Connections == "auto" {
		return session.ConnectionsAuto, nil
	}
	n, err := strconv.Atoi(c.Connections)
	if err != nil || n < 1 || n > maxConns {
		return 0, fmt.Errorf("--connections: want auto or 1 to %d", maxConns)
	}
	return n, nil
}

// config turns the validated flags into what bench needs.
func (c *cli) config() config {
	conns, _ := c.connections()
	cfg := config{
		Size: int64(c.Size), Files: c.Files, FileSize: int64(c.FileSize), Jobs: c.Jobs,
		Connections: conns,
		Link:        relay.Link{Delay: c.Delay, Loss: c.Loss, Reorder: c.Reorder},
		Blackout:    c.Blackout, Seed: c.Seed, Runs: c.Runs,
		BareTime: c.BareTime, Timeout: c.Timeout, Dir: c.Dir,
	}
	// Run the scenarios in a fixed order, each once, whatever the flag's order.
	for _, s := range scenarios {
		if slices.Contains(c.Links, s) {
			cfg.Scenarios = append(cfg.Scenarios, s)
		}
	}
	return cfg
}

// run parses args, runs the benchmark, prints the table on stdout and
// returns the exit status. It is main without the process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c cli
	exited := -1
	parser, err := kong.New(&c,
		kong.Name("qftp-bench"),
		kong.Description("Measure qftp put, get and small-file upload against a bare quic-go stream, on loopback and through a lossy relay, and print a table."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exited = code }),
		kong.UsageOnError(),
	)
	if err != nil {
		fmt.Fprintln(stderr, "qftp-bench:", err)
		return exitFail
	}
	_, err = parser.Parse(args)
	if exited >= 0 {
		return exited // --help
	}
	if err != nil {
		fmt.Fprintln(stderr, "qftp-bench:", err)
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	rep, err := bench(ctx, c.config(), log)
	rep.err = err
	if perr := rep.print(stdout); perr != nil && err == nil {
		err = fmt.Errorf("print table: %w", perr)
	}
	if err != nil {
		// An interrupted run is not a failed transfer, but its table is
		// incomplete: a script must not take it for a full result.
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			fmt.Fprintln(stderr, "qftp-bench: interrupted; the table above is incomplete")
			return exitFail
		}
		fmt.Fprintln(stderr, "qftp-bench:", err)
		return exitFail
	}
	return exitOK
}
