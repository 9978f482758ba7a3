package main

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/size"
)

// row is one line of the table.
type row struct {
	scenario, test string
	s              sample
	perFile        bool    // a small-file row: files/s matter
	vsBare         float64 // MB/s over the single bare stream's; 0: not shown
	vsBareN        float64 // MB/s over the bare streams' on as many connections; 0: not shown
}

// report is the table and what it was measured on.
type report struct {
	cfg   config
	start time.Time
	rows  []row
	err   error // why the table is incomplete; nil if it is not
}

func newReport(cfg config) *report { return &report{cfg: cfg, start: time.Now()} }

func (r *report) add(x row) { r.rows = append(r.rows, x) }

// print writes the header lines and the table. With no rows (nothing was
// measured) it writes nothing.
func (r *report) print(w io.Writer) error {
	if len(r.rows) == 0 {
		return nil
	}
	c := r.cfg
	runs := "1 run"
	if c.Runs > 1 {
		runs = fmt.Sprintf("median of %d runs", c.Runs)
	}
	conns := "auto"
	if c.Connections != session.ConnectionsAuto {
		conns = strconv.Itoa(c.Connections)
	}
	fmt.Fprintf(w, "# qftp-bench %s, %s/%s, %d CPUs, %s; %s; MB/s = 10^6 bytes/s\n",
		r.start.UTC().Format("2006-01-02 15:04 UTC"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), runs)
	fmt.Fprintf(w, "# large file %s; %d small files of %s, %d at a time; qftp --connections %s (auto: at most %d)\n",
		size.Format(c.Size), c.Files, size.Format(c.FileSize), c.Jobs, conns, maxConns)
	for _, sc := range c.Scenarios {
		if sc == "lossy" {
			blackout := "no blackout"
			if c.Blackout > 0 {
				blackout = fmt.Sprintf("a %v blackout a third into each get", c.Blackout)
			}
			fmt.Fprintf(w, "# lossy: in-process relay, each direction %v delay, %g%% loss, %g%% reordering, seed %d; %s\n",
				c.Link.Delay, c.Link.Loss*100, c.Link.Reorder*100, c.Seed, blackout)
		}
	}
	if c.BareTime > 0 {
		fmt.Fprintf(w, "# a bare stream stops after %v (--bare-time) and reports its rate so far\n", c.BareTime)
	}
	var tab bytes.Buffer
	tw := tabwriter.NewWriter(&tab, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tTEST\tCONNS\tMB/s\tFILES/s\tVS BARE\tVS BARE×N\tTIME\tNOTE")
	for _, x := range r.rows {
		filesPerSec := "-"
		if x.perFile {
			filesPerSec = fmt.Sprintf("%.0f", x.s.filesPerSec())
		}
		links := "-"
		if x.s.links > 0 {
			links = strconv.Itoa(x.s.links)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\n", x.scenario, x.test, links, x.s.mbps(),
			filesPerSec, times(x.vsBare), times(x.vsBareN), x.s.dur.Round(time.Millisecond), x.s.note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// tabwriter pads an empty last column; trailing blanks only hurt diffs.
	for line := range strings.Lines(tab.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	if r.err != nil {
		_, err := fmt.Fprintf(w, "# INCOMPLETE: %v\n", r.err)
		return err
	}
	return nil
}

// times formats a ratio as "0.85x", or "-" for none.
func times(f float64) string {
	if f == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", f)
}
