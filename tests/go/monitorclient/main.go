// SPDX-License-Identifier: Apache-2.0

// monitorclient plays today's autoscaler-agent against a running
// vm-informant with the agent's own websocket library, nhooyr.io/websocket,
// dialled with default options (it offers permessage-deflate, as the agent
// does).  It walks the "Done when" scenario and checks every
// answer; the cgroup and meminfo files it is given are the fake ones of the
// test (it plays the hypervisor and the workload too).  Exit 0 when every
// check passed; one line per step on stdout.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"nhooyr.io/websocket"
	"nhooyr.io/websocket/wsjson"
)

const (
	mib       = uint64(1) << 20
	gib       = uint64(1) << 30
	sysBuffer = 100 * mib // the daemon's defaults
	oomBuffer = 100 * mib
)

// The agent's message layout: Go marshals struct fields in this order.
type agentMsg struct {
	Content interface{} `json:"content"`
	Type    string      `json:"type"`
	Id      uint64      `json:"id"`
}

type allocation struct {
	Cpu float64 `json:"cpu"`
	Mem uint64  `json:"mem"`
}

var (
	addr     = flag.String("addr", "127.0.0.1:10301", "informant address")
	cgroup   = flag.String("cgroup", "", "the fake cgroup directory")
	meminfo  = flag.String("meminfo", "", "the fake meminfo file")
	ctx      context.Context
	failures int
)

func check(ok bool, what string, args ...interface{}) {
	if ok {
		fmt.Printf("ok   %s\n", fmt.Sprintf(what, args...))
	} else {
		failures++
		fmt.Printf("FAIL %s\n", fmt.Sprintf(what, args...))
	}
}

func must(err error, what string) {
	if err != nil {
		fmt.Printf("FAIL %s: %v\n", what, err)
		os.Exit(1)
	}
}

func write(name, text string) {
	must(os.WriteFile(name, []byte(text), 0o644), "write "+name)
}

func readUint(name string) uint64 {
	b, err := os.ReadFile(filepath.Join(*cgroup, name))
	must(err, "read "+name)
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	must(err, "parse "+name)
	return v
}

func setMemTotal(bytes uint64) {
	kb := bytes / 1024
	write(*meminfo, fmt.Sprintf("MemTotal: %d kB\nMemFree: %d kB\nMemAvailable: %d kB\n",
		kb, kb/2, kb/2))
}

// request sends one message and reads the next one as a generic map, the
// way the agent's dispatcher does.
func request(c *websocket.Conn, m agentMsg) map[string]interface{} {
	must(wsjson.Write(ctx, c, m), "send "+m.Type)
	return next(c)
}

func next(c *websocket.Conn) map[string]interface{} {
	var got map[string]interface{}
	must(wsjson.Read(ctx, c, &got), "read")
	return got
}

func limits(vm uint64) (uint64, uint64) {
	return vm - sysBuffer, vm - sysBuffer - oomBuffer
}

func main() {
	flag.Parse()
	var cancel context.CancelFunc
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, resp, err := websocket.Dial(ctx, "ws://"+*addr+"/monitor", nil)
	must(err, "dial")
	defer c.Close(websocket.StatusNormalClosure, "done")
	check(resp.Header.Get("Sec-WebSocket-Extensions") == "",
		"permessage-deflate offered and declined")

	must(wsjson.Write(ctx, c, map[string]uint32{"min": 1, "max": 1}), "send version range")
	var version map[string]interface{}
	must(wsjson.Read(ctx, c, &version), "read version")
	check(version["version"] == float64(1) && len(version) == 1, "handshake: %v", version)

	got := request(c, agentMsg{struct{}{}, "HealthCheck", 2})
	check(got["type"] == "HealthCheck" && got["id"] == float64(2), "health check: %v", got)

	setMemTotal(8 * gib)
	got = request(c, agentMsg{map[string]allocation{"granted": {1.5, 8 * gib}},
		"UpscaleNotification", 4})
	check(got["type"] == "UpscaleConfirmation" && got["id"] == float64(4),
		"upscale confirmed: %v", got)
	max, high := limits(8 * gib)
	check(readUint("memory.max") == max && readUint("memory.high") == high,
		"upscale: memory.max %d, memory.high %d (want %d, %d)",
		readUint("memory.max"), readUint("memory.high"), max, high)

	write(filepath.Join(*cgroup, "memory.current"), fmt.Sprint(7*gib))
	got = request(c, agentMsg{map[string]allocation{"target": {1, 4 * gib}},
		"DownscaleRequest", 6})
	check(got["type"] == "DownscaleResult" && got["Ok"] == false && got["id"] == float64(6),
		"downscale refused: %v", got)
	check(readUint("memory.max") == max, "refused downscale leaves memory.max")
	write(filepath.Join(*cgroup, "memory.current"), fmt.Sprint(1*gib))
	got = request(c, agentMsg{map[string]allocation{"target": {1, 4 * gib}},
		"DownscaleRequest", 8})
	check(got["type"] == "DownscaleResult" && got["Ok"] == true, "downscale accepted: %v", got)
	max, high = limits(4 * gib)
	check(readUint("memory.max") == max && readUint("memory.high") == high,
		"downscale: memory.max %d, memory.high %d (want %d, %d)",
		readUint("memory.max"), readUint("memory.high"), max, high)

	write(filepath.Join(*cgroup, "memory.current"), fmt.Sprint(high))
	write(filepath.Join(*cgroup, "memory.events"), "low 0\nhigh 1\nmax 0\noom 0\noom_kill 0\n")
	got = next(c)
	id, _ := got["id"].(float64)
	check(got["type"] == "UpscaleRequest" && uint64(id)%2 == 1,
		"UpscaleRequest with an odd id after memory.high: %v", got)

	must(c.Write(ctx, websocket.MessageText, []byte("not a message")), "send garbage")
	got = next(c)
	check(got["type"] == "InvalidMessage" && got["id"] == float64(0) && got["error"] != "",
		"garbage answered with InvalidMessage: %v", got)
	got = request(c, agentMsg{struct{}{}, "HealthCheck", 10})
	check(got["type"] == "HealthCheck" && got["id"] == float64(10),
		"the session lives on after garbage: %v", got)

	raw, _ := json.Marshal(agentMsg{struct{}{}, "HealthCheck", 12})
	check(string(raw) == `{"content":{},"type":"HealthCheck","id":12}`, "agent layout %s", raw)
	must(c.Close(websocket.StatusNormalClosure, "done"), "close handshake")
	fmt.Printf("monitorclient: %d failed\n", failures)
	if failures > 0 {
		os.Exit(1)
	}
}
