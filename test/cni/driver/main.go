// cni-driver: drives CNI plugins through the real CNI library (libcni), as a container runtime
// does, for weft's tests and benchmarks. Built by the tests with Debian's golang-go against
// Debian's golang-github-appc-cni-dev (libcni 1.1.2), GOPATH=/usr/share/gocode GO111MODULE=off.
//
//	cni-driver add|check|del -conflist F -id ID -netns PATH [-ifname eth0] [-args K=V;...] [-caps JSON]
//	cni-driver gc -conflist F -valid ID/IFNAME,...      (CNI_COMMAND=GC, spec 1.1)
//	cni-driver status -conflist F                        (CNI_COMMAND=STATUS, spec 1.1)
//	  (GC and STATUS skip the plugins whose VERSION does not list 1.1.0, and say which)
//	cni-driver bench -conflist F -netns P1,P2,...        ADD each, then DEL each, timed
//
// libcni 1.1.2 predates GC and STATUS, so those go through its pkg/invoke with the command set by
// hand and the plugin's config at cniVersion 1.1.0, carrying cni.dev/valid-attachments.
// Every answer is one JSON line on stdout: {"ok":true,...} or {"ok":false,"code":N,"msg":...}.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
)

type answer map[string]interface{}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cni-driver add|check|del|gc|status|bench [flags]")
		os.Exit(2)
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	conflist := fs.String("conflist", "", "network configuration list file")
	id := fs.String("id", "", "container id")
	netns := fs.String("netns", "", "network namespace path(s)")
	ifname := fs.String("ifname", "eth0", "interface name")
	args := fs.String("args", "", "CNI_ARGS as K=V;K=V")
	caps := fs.String("caps", "", "capability args (runtimeConfig), JSON object")
	valid := fs.String("valid", "", "GC: attachments to keep, ID/IFNAME,...")
	path := fs.String("path", "/usr/lib/cni:/opt/cni/bin", "CNI_PATH")
	cache := fs.String("cache", "", "libcni cache directory")
	timeout := fs.Duration("timeout", 120*time.Second, "deadline for the whole command")
	_ = fs.Parse(os.Args[2:])

	list, err := libcni.ConfListFromFile(*conflist)
	if err != nil {
		fail(err)
	}
	paths := strings.Split(*path, ":")
	cni := libcni.NewCNIConfigWithCacheDir(paths, *cache, nil)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	rt := &libcni.RuntimeConf{ContainerID: *id, NetNS: *netns, IfName: *ifname, Args: parseArgs(*args)}
	if *caps != "" {
		if err := json.Unmarshal([]byte(*caps), &rt.CapabilityArgs); err != nil {
			fail(fmt.Errorf("-caps: %w", err))
		}
	}

	switch cmd {
	case "add":
		result, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		// The result as the plugin's version gave it, and converted to 1.0.0 by the library.
		raw, _ := json.Marshal(result)
		say(answer{"ok": true, "result": json.RawMessage(raw)})
	case "check":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
		say(answer{"ok": true})
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
		say(answer{"ok": true})
	case "gc", "status":
		keep := []map[string]string{}
		for _, a := range strings.Split(*valid, ",") {
			if a == "" {
				continue
			}
			parts := strings.SplitN(a, "/", 2)
			if len(parts) != 2 {
				fail(fmt.Errorf("-valid %q: want ID/IFNAME", a))
			}
			keep = append(keep, map[string]string{"containerID": parts[0], "ifname": parts[1]})
		}
		skipped := []string{}
		for _, plugin := range list.Plugins {
			exe, err := invoke.FindInPath(plugin.Network.Type, paths)
			if err != nil {
				fail(err)
			}
			// A plugin older than spec 1.1 does not know the command: skip it, as a runtime would.
			info, err := invoke.GetVersionInfo(ctx, exe, nil)
			if err != nil {
				fail(err)
			}
			speaks := false
			for _, v := range info.SupportedVersions() {
				speaks = speaks || v == "1.1.0"
			}
			if !speaks {
				skipped = append(skipped, plugin.Network.Type)
				continue
			}
			conf := map[string]interface{}{}
			if err := json.Unmarshal(plugin.Bytes, &conf); err != nil {
				fail(err)
			}
			conf["cniVersion"] = "1.1.0"
			conf["name"] = list.Name
			if cmd == "gc" {
				conf["cni.dev/valid-attachments"] = keep
			}
			stdin, _ := json.Marshal(conf)
			if err := invoke.ExecPluginWithoutResult(ctx, exe, stdin, &invoke.Args{Command: strings.ToUpper(cmd), Path: *path}, nil); err != nil {
				fail(err)
			}
		}
		say(answer{"ok": true, "skipped": skipped})
	case "bench":
		namespaces := strings.Split(*netns, ",")
		add := make([]float64, 0, len(namespaces))
		del := make([]float64, 0, len(namespaces))
		for i, ns := range namespaces {
			rt := &libcni.RuntimeConf{ContainerID: fmt.Sprintf("%04d%s", i, *id), NetNS: ns, IfName: *ifname, Args: rt.Args}
			start := time.Now()
			if _, err := cni.AddNetworkList(ctx, list, rt); err != nil {
				fail(err)
			}
			add = append(add, float64(time.Since(start).Microseconds())/1000)
		}
		for i, ns := range namespaces {
			rt := &libcni.RuntimeConf{ContainerID: fmt.Sprintf("%04d%s", i, *id), NetNS: ns, IfName: *ifname, Args: rt.Args}
			start := time.Now()
			if err := cni.DelNetworkList(ctx, list, rt); err != nil {
				fail(err)
			}
			del = append(del, float64(time.Since(start).Microseconds())/1000)
		}
		say(answer{"ok": true, "addMs": add, "delMs": del})
	default:
		fmt.Fprintf(os.Stderr, "cni-driver: unknown command %q\n", cmd)
		os.Exit(2)
	}
}

func parseArgs(s string) [][2]string {
	var out [][2]string
	for _, kv := range strings.Split(s, ";") {
		if kv == "" {
			continue
		}
		parts := strings.SplitN(kv, "=", 2)
		if len(parts) == 2 {
			out = append(out, [2]string{parts[0], parts[1]})
		}
	}
	return out
}

// fail reports a plugin's CNI error with its code (999 for an error that carries none).
func fail(err error) {
	var cniErr *types.Error
	if errors.As(err, &cniErr) {
		say(answer{"ok": false, "code": cniErr.Code, "msg": cniErr.Msg, "details": cniErr.Details, "error": err.Error()})
	} else {
		say(answer{"ok": false, "code": 999, "msg": err.Error(), "error": err.Error()})
	}
	os.Exit(0)
}

func say(a answer) {
	out, _ := json.Marshal(a)
	fmt.Println(string(out))
}
