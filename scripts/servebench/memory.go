package main

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// idle starts the server, waits until the tools that need the ledger and
// the key have answered, lets it sit for two seconds and reads its memory.
func (b *bench) idle(s setup) error {
	t0 := time.Now()
	c, err := b.spawn(s)
	if err != nil {
		return err
	}
	defer c.close()
	if _, err := c.initialize(); err != nil {
		return fmt.Errorf("%s: %w\n%s", s.name, err, c.stderr())
	}
	if _, err := c.call("tools/list", map[string]any{}); err != nil {
		return err
	}
	for _, tool := range []string{"x402_spending", "x402_wallet"} {
		if _, err := c.tool(tool, map[string]any{}); err != nil {
			return fmt.Errorf("%s: %s: %w\n%s", s.name, tool, err, c.stderr())
		}
	}
	ready := time.Since(t0)
	time.Sleep(2 * time.Second)
	m, err := c.memory()
	if err != nil {
		return err
	}
	fmt.Printf("idle RSS, %s: %s (goal ≤ %d MB)\n\tpeak %s; ready (x402_wallet answered) %s after spawn%s%s\n",
		s.name, m, rssGoalMB, mb(m.hwm), ms(ready), unlockNote(c.stderr()), m.breakdown())
	holdFor(c)
	return nil
}

// unlockNote is the unlock time the server logged, if it logs one.
func unlockNote(stderr string) string {
	i := strings.Index(stderr, "unlock=")
	if i < 0 {
		return ""
	}
	v := stderr[i+len("unlock="):]
	if j := strings.IndexAny(v, " \n"); j >= 0 {
		v = v[:j]
	}
	return "; keystore unlock " + v + " (server's log)"
}

// memory is a process's resident memory in bytes: rss in all, of which
// anon is its own (heap, stacks) and file the pages of the binary it has
// touched (clean, shared with the page cache: the kernel can drop them),
// and hwm the most it ever had. sections says which parts of the binary
// are resident.
type memory struct {
	rss, anon, file, hwm int64
	sections             string
}

func (m memory) String() string {
	return fmt.Sprintf("%s: %s anonymous, %s of the binary's pages", mb(m.rss), mb(m.anon), mb(m.file))
}

// breakdown is the sections line, if there is one, as a line of its own.
func (m memory) breakdown() string {
	if m.sections == "" {
		return ""
	}
	return "\n\t" + m.sections
}

// sections sums the resident pages of pid that lie in each part of the
// binary exe (/proc/PID/pagemap's present bit), next to the part's size.
// A page fault maps the pages around it too (64 KiB on Linux), so a
// part's resident size is the windows of it touched, not the bytes read.
func sections(pid int, exe string) (string, error) {
	f, err := elf.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	pm, err := os.Open(fmt.Sprintf("/proc/%d/pagemap", pid))
	if err != nil {
		return "", err
	}
	defer pm.Close()
	const page = 4096
	groups := []string{".text", ".rodata", ".gopclntab", "data"}
	var res, size [4]int64
	for _, sec := range f.Sections {
		if sec.Flags&elf.SHF_ALLOC == 0 || sec.Addr == 0 {
			continue
		}
		g := slices.Index(groups, sec.Name)
		if g < 0 {
			g = 3 // .typelink, .itablink, .noptrdata, .data, .bss ...
		}
		size[g] += int64(sec.Size)
		lo, hi := sec.Addr/page, (sec.Addr+sec.Size+page-1)/page
		buf := make([]byte, 8*(hi-lo))
		if _, err := pm.ReadAt(buf, int64(lo*8)); err != nil {
			return "", err
		}
		for i := 0; i < len(buf); i += 8 {
			if binary.LittleEndian.Uint64(buf[i:])>>63 == 1 {
				res[g] += page
			}
		}
	}
	var parts []string
	for i, g := range groups {
		parts = append(parts, fmt.Sprintf("%s %s of %s", g, mb(res[i]), mb(size[i])))
	}
	return "binary resident: " + strings.Join(parts, ", "), nil
}

func (c *child) memory() (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return memory{}, fmt.Errorf("reading the server's memory (Linux /proc): %w", err)
	}
	var m memory
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			m.rss = kb << 10
		case "VmHWM:":
			m.hwm = kb << 10
		case "RssAnon:":
			m.anon = kb << 10
		case "RssFile:":
			m.file = kb << 10
		}
	}
	// The breakdown is best effort: without it the figures stand.
	m.sections, _ = sections(c.cmd.Process.Pid, c.cmd.Path)
	return m, nil
}
