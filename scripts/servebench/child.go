package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"
)

// child is a running server and its JSON-RPC session.
type child struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	errBuf *lockedBuffer

	wmu     sync.Mutex
	mu      sync.Mutex
	pending map[int64]chan reply
	id      atomic.Int64
	done    chan struct{}
}

type reply struct {
	result json.RawMessage
	err    error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (b *bench) spawn(s setup) (*child, error) {
	return b.spawnExe(b.exe, append([]string{"serve"}, s.args...), env(s.home))
}

// spawnExe starts exe with args and environ, speaking JSON-RPC on its
// standard input and output.
func (b *bench) spawnExe(exe string, args, environ []string) (*child, error) {
	cmd := exec.Command(exe, args...)
	cmd.Env = environ
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, in: in, errBuf: &lockedBuffer{}, pending: map[int64]chan reply{}, done: make(chan struct{})}
	cmd.Stderr = c.errBuf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go c.read(bufio.NewReaderSize(out, 1<<20))
	return c, nil
}

func (c *child) stderr() string { return c.errBuf.String() }

// read dispatches the server's replies to their callers until stdout ends.
func (c *child) read(r *bufio.Reader) {
	defer close(c.done)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			var m struct {
				ID     *int64          `json:"id"`
				Method string          `json:"method"`
				Result json.RawMessage `json:"result"`
				Error  *struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			if json.Unmarshal(line, &m) == nil && m.ID != nil {
				if m.Method != "" {
					// A request from the server (this client offers no
					// capabilities): refuse it.
					c.send(map[string]any{"jsonrpc": "2.0", "id": *m.ID, "error": map[string]any{"code": -32601, "message": "not supported"}})
					continue
				}
				c.mu.Lock()
				ch := c.pending[*m.ID]
				delete(c.pending, *m.ID)
				c.mu.Unlock()
				if ch != nil {
					rep := reply{result: m.Result}
					if m.Error != nil {
						rep.err = errors.New(m.Error.Message)
					}
					ch <- rep
				}
			}
		}
		if err != nil {
			c.mu.Lock()
			for id, ch := range c.pending {
				ch <- reply{err: fmt.Errorf("the server closed stdout: %v", err)}
				delete(c.pending, id)
			}
			c.pending = nil
			c.mu.Unlock()
			return
		}
	}
}

func (c *child) send(msg any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err = c.in.Write(append(b, '\n'))
	return err
}

func (c *child) call(method string, params any) (json.RawMessage, error) {
	id := c.id.Add(1)
	ch := make(chan reply, 1)
	c.mu.Lock()
	if c.pending == nil {
		c.mu.Unlock()
		return nil, errors.New("the server closed stdout")
	}
	c.pending[id] = ch
	c.mu.Unlock()
	if err := c.send(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params}); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r.result, r.err
	case <-time.After(5 * time.Minute):
		return nil, fmt.Errorf("%s: no reply in 5 minutes", method)
	}
}

func (c *child) initialize() (json.RawMessage, error) {
	res, err := c.call("initialize", map[string]any{
		"protocolVersion": "2025-06-18",
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "servebench", "version": "1"},
	})
	if err != nil {
		return nil, err
	}
	return res, c.send(map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"})
}

func (c *child) tool(name string, args map[string]any) (json.RawMessage, error) {
	return c.call("tools/call", map[string]any{"name": name, "arguments": args})
}

// close ends the session the way a host does, by closing stdin, and waits
// for the process.
func (c *child) close() error {
	c.in.Close()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
	}
	return c.cmd.Wait()
}
