// Package templates holds the text templates for the non-Go files molgen
// writes: the placement skeleton of 'molgen init' and per-node deploy files
// (systemd units, a Compose file, Kubernetes manifests, Kafka ACLs).
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"strconv"
	"strings"
	"text/template"

	"github.com/molgen/molgen/internal/acl"
)

//go:embed *.tmpl
var files embed.FS

var funcs = template.FuncMap{
	"join": strings.Join,
	// hasEnvKey reports whether a node reads a signing key from its
	// environment.
	"hasEnvKey": func(keys []Key) bool {
		for _, k := range keys {
			if k.Env != "" {
				return true
			}
		}
		return false
	},
	// sh quotes a word for bash.
	"sh": func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" },
	// q quotes a YAML scalar (a JSON string is one).
	"q": strconv.Quote,
	"flow": func(items []string) string {
		quoted := make([]string, len(items))
		for i, s := range items {
			if s == "*" {
				s = `"*"`
			}
			quoted[i] = s
		}
		return "[" + strings.Join(quoted, ", ") + "]"
	},
}

var all = template.Must(template.New("").Funcs(funcs).ParseFS(files, "*.tmpl"))

// Render executes the template name (e.g. "placement.yaml.tmpl") with data.
func Render(name string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := all.ExecuteTemplate(&b, name, data); err != nil {
		return nil, fmt.Errorf("rendering %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// Placement is the data of placement.yaml.tmpl.
type Placement struct {
	File     string
	App      string
	Module   string
	Services []string
	Mains    []string
	Names    []string // services then mains
}

// Node is the data of the deploy templates, one per node.
type Node struct {
	App, Node, Placement string
	Brokers              string
	BinDir               string
	Services, Mains      []string
	// Keys are the signing keys the node needs (placement
	// security.signing): the app's, and those of the services with keys
	// of their own that it hosts or calls over Kafka.
	Keys []Key
}

// Key is one signing key of a node: where the node reads it (an
// environment variable or a file) and its key in the Secret and the
// environment file that hold the app's keys.
type Key struct {
	// Env is the environment variable the node reads the key from; File
	// the file (one of them is set).
	Env, File string
	// Name names the key in the Secret <app>-signing and in
	// signing.env's comments: "app", or "service-<name>".
	Name string
}

// Deploy is the data of compose.yaml.tmpl and kafka-config.yaml.tmpl.
type Deploy struct {
	App, Placement string
	// Brokers are the placement's brokers when a node needs Kafka, else
	// empty.
	Brokers string
	BinDir  string
	Nodes   []Node
	// Kafka includes a Kafka service in compose.yaml: some node needs
	// Kafka and the placement asks for no TLS or SASL (a managed cluster).
	Kafka bool
	// KafkaImage is the image of that service.
	KafkaImage string
	// Partitions of each request topic (placement kafka.partitions).
	Partitions int
	// PasswordEnv is the environment variable that holds the SASL
	// password (empty without kafka.sasl).
	PasswordEnv string
	// TLSFiles are the files kafka.tls names, mounted into containers.
	TLSFiles []File
	// HTTPPort is the port of a node's /metrics, /healthz and /readyz.
	HTTPPort int
	// DrainSeconds bounds a node's drain; GraceSeconds is how long the
	// orchestrator waits after SIGTERM (the drain and a margin).
	DrainSeconds, GraceSeconds int
}

// File is a file a node reads, and the key it has in a Kubernetes Secret.
type File struct{ Path, Key string }

// Kubernetes is the data of kubernetes.yaml.tmpl, one per node.
type Kubernetes struct {
	Deploy
	Node Node
	// Name is the Deployment's name: app and node, as a DNS label.
	Name string
	// Image is the container image of the node.
	Image    string
	Replicas int
}

// KeyFiles are the node's signing keys read from files.
func (k Kubernetes) KeyFiles() []Key {
	var out []Key
	for _, key := range k.Node.Keys {
		if key.File != "" {
			out = append(out, key)
		}
	}
	return out
}

// Signing is the data of signing-secret.yaml.tmpl and signing.env.tmpl:
// the app's signing keys, made by molgen init.
type Signing struct {
	App, Placement string
	Keys           []SigningKey
}

// SigningKey is one key of Signing: its name, where nodes read it, and
// its value (base64).
type SigningKey struct {
	Key
	Value string
}

// KafkaACLs is the data of acls.sh.tmpl and kafka-users.yaml.tmpl.
type KafkaACLs struct {
	*acl.Plan
	// Placement is the placement file, for the header.
	Placement string
	// Users names each node's Strimzi KafkaUser, by node (only
	// kafka-users.yaml.tmpl uses it).
	Users map[string]string
}
