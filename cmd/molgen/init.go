package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/molgen/molgen/internal/acl"
	"github.com/molgen/molgen/internal/app"
	"github.com/molgen/molgen/internal/load"
	"github.com/molgen/molgen/internal/placementfile"
	"github.com/molgen/molgen/runtime/placement"
	"github.com/molgen/molgen/templates"
)

func runInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("init", stderr, "[-o placement.yaml] [-placement FILE] [-deploy DIR] [-f] [packages]")
	out := fs.String("o", "placement.yaml", "write a placement skeleton listing every service and main to `file` (unless -placement is given)")
	placementFile := fs.String("placement", "", "an existing placement `file` to write deploy files for")
	deploy := fs.String("deploy", "", "write per-node deploy files (systemd units, compose.yaml, Kubernetes manifests, Kafka ACLs) to `directory`")
	principal := fs.String("principal", acl.DefaultPrincipal, "each node's Kafka principal in the ACLs of -deploy; {app} and {node} are replaced")
	bin := fs.String("bin", "/opt/molgen/bin", "directory the node binaries are installed in, for the deploy files")
	registry := fs.String("registry", "registry.example.com", "container registry of the node images, for the Kubernetes manifests (image REGISTRY/APP-NODE:latest)")
	appName := fs.String("app", "", "app name for a new placement (default: the module's last path element)")
	force := fs.Bool("f", false, "overwrite existing files")
	tags := fs.String("tags", "", "build tags (comma-separated)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	a, _, err := app.Analyze(load.Config{Patterns: fs.Args(), Tags: *tags}, "", stderr)
	if err != nil {
		return err
	}
	file := *placementFile
	if file == "" {
		file = *out
		name := *appName
		if name == "" {
			name = defaultApp(a.Module)
		}
		data := templates.Placement{File: filepath.ToSlash(file), App: name, Module: a.Module, Services: a.ServiceNames(), Mains: a.MainNames()}
		data.Names = append(append([]string{}, data.Services...), data.Mains...)
		src, err := templates.Render("placement.yaml.tmpl", data)
		if err != nil {
			return err
		}
		if err := writeNew(file, src, *force, stdout); err != nil {
			return err
		}
	}
	if *deploy == "" {
		return nil
	}
	pl, err := placementfile.Load(file, a.ServiceNames(), a.MainNames())
	if err != nil {
		return err
	}
	l := app.NewLayout(a, pl)
	d := deployData(pl, filepath.ToSlash(file), *bin)
	keys := signingKeys(l, pl)
	unitBrokers := strings.Join(pl.Kafka.Brokers, ",")
	if unitBrokers == "" {
		unitBrokers = "127.0.0.1:9092"
	}
	for _, n := range l.Nodes {
		node := templates.Node{App: pl.App, Node: n.Name, Placement: d.Placement, Brokers: unitBrokers, BinDir: *bin, Services: n.Services, Mains: n.Mains, Keys: keys[n.Name]}
		d.Nodes = append(d.Nodes, node)
		src, err := templates.Render("systemd.service.tmpl", node)
		if err != nil {
			return err
		}
		if err := writeNew(filepath.Join(*deploy, "systemd", n.Name+"@.service"), src, *force, stdout); err != nil {
			return err
		}
	}
	src, err := templates.Render("compose.yaml.tmpl", d)
	if err != nil {
		return err
	}
	if err := writeNew(filepath.Join(*deploy, "compose.yaml"), src, *force, stdout); err != nil {
		return err
	}
	k8s := filepath.Join(*deploy, "kubernetes")
	kd := d
	if kd.Brokers == "" || loopback(kd.Brokers) {
		// A pod's 127.0.0.1 is its own: name the cluster's Kafka service
		// (kafka-config.yaml says to change it).
		kd.Brokers = "kafka:9092"
	}
	if src, err = templates.Render("kafka-config.yaml.tmpl", kd); err != nil {
		return err
	}
	if err := writeNew(filepath.Join(k8s, "kafka-config.yaml"), src, *force, stdout); err != nil {
		return err
	}
	for _, n := range d.Nodes {
		name := dnsLabel(pl.App + "-" + n.Node)
		k := templates.Kubernetes{Deploy: kd, Node: n, Name: name, Image: strings.TrimSuffix(*registry, "/") + "/" + name + ":latest", Replicas: 2}
		if len(n.Mains) > 0 {
			k.Replicas = 1
		}
		if src, err = templates.Render("kubernetes.yaml.tmpl", k); err != nil {
			return err
		}
		if err := writeNew(filepath.Join(k8s, n.Node+".yaml"), src, *force, stdout); err != nil {
			return err
		}
	}
	if err := writeSigningKeys(*deploy, pl, filepath.ToSlash(file), keys, stdout); err != nil {
		return err
	}
	return writeACLs(l, filepath.ToSlash(file), filepath.Join(*deploy, "kafka"), *principal, *force, stdout, stderr)
}

// writeACLs writes dir/acls.sh and dir/kafka-users.yaml: the Kafka ACLs of
// each node (internal/acl), for kafka-acls.sh and as Strimzi KafkaUsers.
// Principals that cannot name a KafkaUser leave kafka-users.yaml out, with
// a warning.
func writeACLs(l *app.Layout, file, dir, principal string, force bool, stdout, stderr io.Writer) error {
	plan, err := acl.Derive(l, acl.Options{Principal: principal})
	if err != nil {
		return err
	}
	for _, w := range plan.Warnings {
		fmt.Fprintf(stderr, "molgen init: warning: %s\n", w)
	}
	src, err := renderACLs(aclFormats["script"], plan, file)
	if err != nil {
		return err
	}
	script := filepath.Join(dir, "acls.sh")
	if err := writeNew(script, src, force, stdout); err != nil {
		return err
	}
	if err := os.Chmod(script, 0o755); err != nil {
		return err
	}
	src, err = renderACLs(aclFormats["strimzi"], plan, file)
	if err != nil {
		fmt.Fprintf(stderr, "molgen init: warning: not writing kafka-users.yaml: %v\n", err)
		return nil
	}
	return writeNew(filepath.Join(dir, "kafka-users.yaml"), src, force, stdout)
}

// Deploy-file constants: the node's HTTP port, its drain bound (the
// runtime's DrainTimeout) and the Kafka image of compose.yaml.
const (
	httpPort     = 8080
	drainSeconds = 30
	graceSeconds = drainSeconds + 15
	kafkaImage   = "apache/kafka:4.4.0" // the version CI tests against (scripts/kafka/pom.xml)
)

// deployData is what the deploy templates need to know of a placement.
func deployData(pl *placement.Placement, file, bin string) templates.Deploy {
	d := templates.Deploy{App: pl.App, Placement: file, BinDir: bin, Partitions: pl.Kafka.Partitions,
		HTTPPort: httpPort, DrainSeconds: drainSeconds, GraceSeconds: graceSeconds, KafkaImage: kafkaImage}
	needsKafka := len(pl.Nodes) > 1 || !pl.PreferLocal
	if needsKafka {
		d.Brokers = strings.Join(pl.Kafka.Brokers, ",")
	}
	secured := pl.Kafka.TLS != nil || pl.Kafka.SASL != nil
	// A local Kafka for the nodes, unless they go to a secured (managed)
	// cluster.
	d.Kafka = needsKafka && !secured
	if s := pl.Kafka.SASL; s != nil {
		d.PasswordEnv = s.PasswordEnv
		if d.PasswordEnv == "" {
			d.PasswordEnv = placement.DefaultPasswordEnv
		}
	}
	if t := pl.Kafka.TLS; t != nil {
		for _, f := range []string{t.CAFile, t.CertFile, t.KeyFile} {
			if f != "" {
				d.TLSFiles = append(d.TLSFiles, templates.File{Path: f, Key: dnsLabel(filepath.Base(f))})
			}
		}
	}
	return d
}

// loopback reports whether every broker of list is on a loopback host.
func loopback(list string) bool {
	for _, b := range strings.Split(list, ",") {
		host, _, _ := strings.Cut(b, ":")
		if host != "localhost" && !strings.HasPrefix(host, "127.") && host != "[::1]" {
			return false
		}
	}
	return true
}

var notDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// dnsLabel makes s a valid Kubernetes name: lower case, digits and '-'.
func dnsLabel(s string) string {
	s = strings.Trim(notDNS.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	return s
}

// writeNew writes a file, refusing to replace one unless force is set.
func writeNew(file string, data []byte, force bool, stdout io.Writer) error {
	if _, err := os.Stat(file); err == nil && !force {
		return fmt.Errorf("molgen init: %s exists; pass -f to overwrite it", file)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", file)
	return nil
}

var nonApp = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func defaultApp(module string) string {
	name := nonApp.ReplaceAllString(path.Base(module), "-")
	if name == "" || name == "." {
		return "app"
	}
	return name
}
