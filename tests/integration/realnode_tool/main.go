// realnode-tool: the one binary of the real-node test image (tests/integration/test_real_node.py).
//
//	realnode-tool echo TEXT...      print TEXT, exit 0
//	realnode-tool exit CODE         exit with CODE
//	realnode-tool serve PORT        HTTP server answering "hello from <hostname>"
//	realnode-tool get URL [SECS]    GET URL (retrying up to SECS, default 30), print the body
//	realnode-tool lookup NAME       resolve NAME via /etc/resolv.conf, print the addresses
//	realnode-tool apiserver         GET /version from the API server through the kubernetes
//	                                Service, with the pod's ServiceAccount token and CA
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(1)
}

func get(client *http.Client, url string, secs int, header http.Header) {
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for {
		req, _ := http.NewRequest("GET", url, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				fmt.Print(string(body))
				return
			}
			err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			fail("GET %s: %v", url, err)
		}
		fmt.Fprintf(os.Stderr, "GET %s: %v (retrying)\n", url, err)
		time.Sleep(time.Second)
	}
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: realnode-tool echo|exit|serve|get|lookup|apiserver ...")
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "echo":
		fmt.Println(strings.Join(args, " "))
	case "exit":
		code, _ := strconv.Atoi(args[0])
		fmt.Printf("exiting with %d\n", code)
		os.Exit(code)
	case "serve":
		host, _ := os.Hostname()
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s\n", host)
		})
		fmt.Printf("serving on :%s\n", args[0])
		fail("%v", http.ListenAndServe(":"+args[0], nil))
	case "get":
		secs := 30
		if len(args) > 1 {
			secs, _ = strconv.Atoi(args[1])
		}
		get(&http.Client{Timeout: 5 * time.Second}, args[0], secs, nil)
	case "lookup":
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupHost(ctx, args[0])
		if err != nil {
			fail("lookup %s: %v", args[0], err)
		}
		fmt.Println(strings.Join(addrs, " "))
	case "apiserver":
		const sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
		token, err := os.ReadFile(sa + "token")
		if err != nil {
			fail("%v", err)
		}
		ca, err := os.ReadFile(sa + "ca.crt")
		if err != nil {
			fail("%v", err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool},
		}}
		url := "https://kubernetes.default.svc/version"
		if len(args) > 0 {
			url = args[0]
		}
		get(client, url, 30, http.Header{"Authorization": {"Bearer " + strings.TrimSpace(string(token))}})
	default:
		fail("unknown command %q", os.Args[1])
	}
}
