package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// How runs are counted. A server logs `msg="serving a request"` at debug
// level with the request's method, partition and offset each time it
// starts a request, and `msg="skipping a request whose deadline has
// passed"` with the same attributes when that request turns out to be
// expired (it does not run). So the runs of one request (partition,
// offset) are its serving lines minus its skipping lines, over every
// instance that ever served the topic.
//
// Which call a request belongs to is read back from Kafka: every Concat
// call of the load has unique arguments, and every Where call a unique
// duration, so each record of the request topic names its call. A call
// whose request ran twice (at-least-once redelivery), or whose request the
// caller wrote twice, has re-runs; a failed call may have run or not, and
// the read-back tells which.
//
// A broker that loses its data starts offsets again at 0: the runs and the
// records of each "epoch" (the time before and after the loss) are kept
// apart, by the time of the log line and by reading the topic back before
// the loss.

// reqKey names one request record.
type reqKey struct {
	epoch     int
	partition int
	offset    int64
}

// logRun is what one log line says about a request.
type logRun struct {
	key     reqKey
	method  string
	skipped bool // the "skipping" line of an expired request
}

// parseServerLog reads the request lines of service calc from a node log;
// cuts are the times at which the broker lost its data.
func parseServerLog(path string, cuts []time.Time) ([]logRun, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []logRun
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		serving := strings.Contains(line, `msg="serving a request"`)
		skipped := strings.Contains(line, `msg="skipping a request whose deadline has passed"`)
		if !serving && !skipped || attr(line, "service") != "calc" {
			continue
		}
		p, err1 := strconv.Atoi(attr(line, "partition"))
		o, err2 := strconv.ParseInt(attr(line, "offset"), 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		epoch := 0
		if len(cuts) > 0 {
			t, err := time.Parse(time.RFC3339Nano, attr(line, "time"))
			if err != nil {
				continue
			}
			for _, c := range cuts {
				if !t.Before(c) {
					epoch++
				}
			}
		}
		out = append(out, logRun{key: reqKey{epoch, p, o}, method: attr(line, "method"), skipped: skipped})
	}
	return out, sc.Err()
}

// attr returns the value of key=value in a slog text line (unquoted).
func attr(line, key string) string {
	i := 0
	for {
		j := strings.Index(line[i:], key+"=")
		if j < 0 {
			return ""
		}
		j += i
		if j == 0 || line[j-1] == ' ' {
			v := line[j+len(key)+1:]
			if strings.HasPrefix(v, `"`) {
				if s, err := strconv.QuotedPrefix(v); err == nil {
					u, _ := strconv.Unquote(s)
					return u
				}
				return ""
			}
			if k := strings.IndexByte(v, ' '); k >= 0 {
				v = v[:k]
			}
			return v
		}
		i = j + 1
	}
}

// record is one request read back from the request topic.
type record struct {
	key    reqKey
	method string
	call   int    // the load call it belongs to; 0 if none
	tag    string // for requests of no call: their first argument's prefix
	// rid is the request's id as its caller wrote it (molgen-id; the
	// comparator's id): one call writes one id, which a retry of the
	// write (the producer's) must not write twice. molgen's
	// //molgen:retry resends share an id on purpose: the load's methods
	// (Concat, Where) have none (TestLoadMethodsHaveNoRetry).
	rid string
}

// readRequests reads every record of the request topic and names the
// call of each: Concat's first argument is "<prefix>.<id>.a", Where's
// duration whereBase+id.
func readRequests(brokers []string, topic, prefix string, epoch, maxID int) ([]record, error) {
	msgs, err := readTopic(brokers, topic)
	if err != nil {
		return nil, err
	}
	out := make([]record, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, identify(m, prefix, epoch, maxID))
	}
	return out, nil
}

// identify names the call of a molgen request record.
func identify(m *kgo.Record, prefix string, epoch, maxID int) record {
	return identifyAs(m, header(m, "molgen-method"), header(m, "molgen-id"), prefix, epoch, maxID)
}

// identifyFranz names the call of a request record of the comparator,
// whose values are encoded as molgen's.
func identifyFranz(m *kgo.Record, prefix string, maxID int) record {
	return identifyAs(m, header(m, fhMethod), header(m, fhID), prefix, 0, maxID)
}

// identifyAs names the call of a request record of method whose request
// id is rid.
func identifyAs(m *kgo.Record, method, rid, prefix string, epoch, maxID int) record {
	rec := record{key: reqKey{epoch, int(m.Partition), m.Offset}, method: method, rid: rid}
	switch rec.method {
	case "Concat":
		n, k := binary.Uvarint(m.Value)
		if k <= 0 || uint64(len(m.Value)-k) < n {
			rec.tag = "garbage"
			return rec
		}
		a := string(m.Value[k : k+int(n)])
		if len(a) > 64 {
			a = a[:64]
		}
		rest, ok := strings.CutPrefix(a, prefix+".")
		if !ok {
			rec.tag, _, _ = strings.Cut(a, ".")
			return rec
		}
		idText, ok := strings.CutSuffix(rest, ".a")
		if id, err := strconv.Atoi(idText); ok && err == nil {
			rec.call = id
		}
	case "Where":
		d, k := binary.Varint(m.Value)
		if k != len(m.Value) || k <= 0 {
			rec.tag = "garbage"
			return rec
		}
		if id := d - int64(whereBase); id > 0 && id <= int64(maxID) {
			rec.call = int(id)
		}
	}
	return rec
}

// accounting is what the logs and the read-back say about the calls.
type accounting struct {
	runs        map[int]int // call id → times its requests ran
	requests    map[int]int // call id → request records it wrote
	keys        map[int][]reqKey
	runsOf      map[reqKey]int
	unattrRuns  int // runs of Concat/Where requests that name no call of the load
	unreadRuns  int // of these, runs of requests not in the read-back (written while the broker lost them)
	tagRuns     map[string]int
	tagRequests map[string]int
	// jumped counts requests read back that no instance ever took up
	// (not even to skip them as expired) although a later request of
	// their partition was: the consumer went past them.
	jumped int
	// jumpedAt describes the first few of them.
	jumpedAt []string
}

// account matches the servers' runs with the records read back.
func account(records []record, logs []logRun) *accounting {
	a := &accounting{runs: map[int]int{}, requests: map[int]int{}, keys: map[int][]reqKey{}, tagRuns: map[string]int{}, tagRequests: map[string]int{}}
	byKey := map[reqKey]record{}
	for _, r := range records {
		byKey[r.key] = r
		if r.call != 0 {
			a.requests[r.call]++
			a.keys[r.call] = append(a.keys[r.call], r.key)
		} else if r.tag != "" {
			a.tagRequests[r.tag]++
		}
	}
	runs := map[reqKey]int{}
	method := map[reqKey]string{}
	type part struct{ epoch, partition int }
	lastTaken := map[part]int64{}
	for _, l := range logs {
		if l.skipped {
			runs[l.key]--
		} else {
			runs[l.key]++
			method[l.key] = l.method
			pt := part{l.key.epoch, l.key.partition}
			if last, ok := lastTaken[pt]; !ok || l.key.offset > last {
				lastTaken[pt] = l.key.offset
			}
		}
	}
	sorted := append([]record(nil), records...)
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i].key, sorted[j].key
		if a.epoch != b.epoch {
			return a.epoch < b.epoch
		}
		if a.partition != b.partition {
			return a.partition < b.partition
		}
		return a.offset < b.offset
	})
	for _, r := range sorted {
		last, ok := lastTaken[part{r.key.epoch, r.key.partition}]
		if _, taken := method[r.key]; !taken && ok && r.key.offset < last && (r.method == "Concat" || r.method == "Where") {
			a.jumped++
			if len(a.jumpedAt) < 4 {
				a.jumpedAt = append(a.jumpedAt, fmt.Sprintf("p%d/o%d (epoch %d; the partition was served up to o%d)", r.key.partition, r.key.offset, r.key.epoch, last))
			}
		}
	}
	a.runsOf = runs
	for k, n := range runs {
		if n <= 0 {
			continue
		}
		r, ok := byKey[k]
		switch {
		case ok && r.call != 0:
			a.runs[r.call] += n
		case ok && r.tag != "":
			a.tagRuns[r.tag] += n
		case method[k] == "Concat" || method[k] == "Where":
			a.unattrRuns += n
			if !ok {
				a.unreadRuns += n
			}
		}
	}
	return a
}

// describe says where a call's requests went and how often each ran.
func (a *accounting) describe(id int) string {
	keys := a.keys[id]
	if len(keys) == 0 {
		return "request not read back"
	}
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("p%d/o%d (epoch %d) ran %d×", k.partition, k.offset, k.epoch, max(a.runsOf[k], 0)))
	}
	return "request " + strings.Join(parts, ", ")
}
