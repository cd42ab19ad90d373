// A Prometheus exporter for a Locust master, built here because the image the
// operator's config names by default (containersol/locust_exporter) cannot be
// fetched on this machine: neither its registry nor its Go module is reachable.
//
// It is a stand-in with the same interface, not a copy: the same flags and
// environment variables (LOCUST_EXPORTER_URI, LOCUST_EXPORTER_WEB_LISTEN_ADDRESS,
// LOCUST_EXPORTER_WEB_TELEMETRY_PATH, LOCUST_EXPORTER_TIMEOUT), the same port
// (9646) and the same metric names, filled from the master's /stats/requests.
// Standard library only, so it builds offline into a static binary.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

var version = "dev"

type requestStat struct {
	Method             string  `json:"method"`
	Name               string  `json:"name"`
	NumRequests        float64 `json:"num_requests"`
	NumFailures        float64 `json:"num_failures"`
	AvgResponseTime    float64 `json:"avg_response_time"`
	MinResponseTime    float64 `json:"min_response_time"`
	MaxResponseTime    float64 `json:"max_response_time"`
	CurrentRps         float64 `json:"current_rps"`
	CurrentFailPerSec  float64 `json:"current_fail_per_sec"`
	MedianResponseTime float64 `json:"median_response_time"`
	AvgContentLength   float64 `json:"avg_content_length"`
}

type stats struct {
	Stats  []requestStat `json:"stats"`
	Errors []struct {
		Method      string  `json:"method"`
		Name        string  `json:"name"`
		Error       string  `json:"error"`
		Occurrences float64 `json:"occurrences"`
	} `json:"errors"`
	TotalRps    float64            `json:"total_rps"`
	FailRatio   float64            `json:"fail_ratio"`
	State       string             `json:"state"`
	UserCount   float64            `json:"user_count"`
	Percentiles map[string]float64 `json:"current_response_time_percentiles"`
	Workers     []struct {
		ID        string  `json:"id"`
		State     string  `json:"state"`
		UserCount float64 `json:"user_count"`
	} `json:"workers"`
}

// metrics writes the Prometheus text exposition format, one HELP/TYPE per family.
type metrics struct {
	b    strings.Builder
	seen map[string]bool
}

func (m *metrics) add(name, typ, help string, value float64, labels ...string) {
	if m.seen == nil {
		m.seen = map[string]bool{}
	}
	if !m.seen[name] {
		m.seen[name] = true
		fmt.Fprintf(&m.b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	m.b.WriteString(name)
	if len(labels) > 0 {
		parts := make([]string, 0, len(labels)/2)
		for i := 0; i+1 < len(labels); i += 2 {
			parts = append(parts, labels[i]+`="`+escape(labels[i+1])+`"`)
		}
		m.b.WriteString("{" + strings.Join(parts, ",") + "}")
	}
	m.b.WriteString(" " + strconv.FormatFloat(value, 'g', -1, 64) + "\n")
}

func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

var runningStates = map[string]float64{"stopped": 0, "ready": 0, "spawning": 1, "hatching": 1, "running": 2}

func render(s *stats, up bool, scrapes float64) string {
	var m metrics
	upValue := 0.0
	if up {
		upValue = 1
	}
	m.add("locust_up", "gauge", "The current health status of the server (1 = UP, 0 = DOWN).", upValue)
	m.add("locust_total_scrapes", "counter", "The total number of scrapes.", scrapes)
	if !up {
		return m.b.String()
	}
	m.add("locust_users", "gauge", "The current number of users.", s.UserCount)
	m.add("locust_running", "gauge", "The current state of the execution (0 = STOPPED 1 = SPAWNING 2 = RUNNING).",
		runningStates[s.State])
	var running, spawning, missing float64
	for _, w := range s.Workers {
		switch w.State {
		case "running":
			running++
		case "spawning", "hatching":
			spawning++
		case "missing":
			missing++
		}
	}
	m.add("locust_workers_count", "gauge", "The current number of workers.", float64(len(s.Workers)))
	m.add("locust_workers_running_count", "gauge", "The current number of running workers.", running)
	m.add("locust_workers_hatching_count", "gauge", "The current number of spawning workers.", spawning)
	m.add("locust_workers_missing_count", "gauge", "The current number of missing workers.", missing)
	m.add("locust_fail_ratio", "gauge", "The current failure ratio.", s.FailRatio)
	keys := make([]string, 0, len(s.Percentiles))
	for k := range s.Percentiles {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		q := strings.TrimPrefix(k, "response_time_percentile_")
		m.add("locust_current_response_time_percentile", "gauge", "The current response time percentile (ms).",
			s.Percentiles[k], "quantile", q)
	}
	for _, r := range s.Stats {
		if r.Name == "Aggregated" || r.Name == "Total" {
			continue
		}
		l := []string{"method", r.Method, "name", r.Name}
		m.add("locust_requests_num_requests", "gauge", "Requests sent.", r.NumRequests, l...)
		m.add("locust_requests_num_failures", "gauge", "Requests failed.", r.NumFailures, l...)
		m.add("locust_requests_avg_response_time", "gauge", "Average response time (ms).", r.AvgResponseTime, l...)
		m.add("locust_requests_min_response_time", "gauge", "Minimum response time (ms).", r.MinResponseTime, l...)
		m.add("locust_requests_max_response_time", "gauge", "Maximum response time (ms).", r.MaxResponseTime, l...)
		m.add("locust_requests_current_rps", "gauge", "Current requests per second.", r.CurrentRps, l...)
		m.add("locust_requests_current_fail_per_sec", "gauge", "Current failures per second.", r.CurrentFailPerSec, l...)
		m.add("locust_requests_median_response_time", "gauge", "Median response time (ms).", r.MedianResponseTime, l...)
		m.add("locust_requests_avg_content_length", "gauge", "Average content length (bytes).", r.AvgContentLength, l...)
	}
	for _, e := range s.Errors {
		m.add("locust_errors", "gauge", "The current number of errors.", e.Occurrences,
			"method", e.Method, "name", e.Name, "error", e.Error)
	}
	for _, w := range s.Workers {
		m.add("locust_worker_detail", "gauge", "The current status of a worker with user count.", w.UserCount,
			"id", w.ID, "state", w.State)
	}
	return m.b.String()
}

func envOr(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return fallback
}

func main() {
	listen := flag.String("web.listen-address", envOr("LOCUST_EXPORTER_WEB_LISTEN_ADDRESS", ":9646"),
		"Address to listen on for telemetry (env LOCUST_EXPORTER_WEB_LISTEN_ADDRESS).")
	path := flag.String("web.telemetry-path", envOr("LOCUST_EXPORTER_WEB_TELEMETRY_PATH", "/metrics"),
		"Path under which to expose metrics (env LOCUST_EXPORTER_WEB_TELEMETRY_PATH).")
	uri := flag.String("locust.uri", envOr("LOCUST_EXPORTER_URI", "http://localhost:8089"),
		"URI of the Locust master (env LOCUST_EXPORTER_URI).")
	timeoutText := flag.String("locust.timeout", envOr("LOCUST_EXPORTER_TIMEOUT", "5s"),
		"Scrape timeout (env LOCUST_EXPORTER_TIMEOUT).")
	showVersion := flag.Bool("version", false, "Print the version and exit.")
	flag.Parse()
	if *showVersion {
		fmt.Printf("locust_exporter %s (locust-operator stand-in)\n", version)
		return
	}
	timeout, err := time.ParseDuration(*timeoutText)
	if err != nil {
		log.Fatalf("--locust.timeout: %v", err)
	}
	client := &http.Client{Timeout: timeout}
	var mu sync.Mutex
	var scrapes float64
	http.HandleFunc(*path, func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		scrapes++
		n := scrapes
		mu.Unlock()
		var s stats
		up := false
		resp, err := client.Get(strings.TrimRight(*uri, "/") + "/stats/requests")
		if err != nil {
			log.Printf("scrape %s: %v", *uri, err)
		} else {
			body, readErr := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode/100 != 2:
				log.Printf("scrape %s: HTTP %d", *uri, resp.StatusCode)
			case readErr != nil:
				log.Printf("scrape %s: %v", *uri, readErr)
			case json.Unmarshal(body, &s) != nil:
				log.Printf("scrape %s: not Locust stats JSON", *uri)
			default:
				up = true
			}
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = io.WriteString(w, render(&s, up, n))
	})
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "<html><body><h1>Locust Exporter</h1><a href='"+*path+"'>Metrics</a></body></html>\n")
	})
	log.Printf("locust_exporter %s listening on %s, scraping %s", version, *listen, *uri)
	log.Fatal(http.ListenAndServe(*listen, nil))
}
