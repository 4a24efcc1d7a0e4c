package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/molgen/molgen/internal/short"
	"github.com/molgen/molgen/runtime/placement"
)

// The parts of a Compose file and of Kubernetes objects that molgen
// writes. Files are decoded with unknown fields refused, so a misspelt key
// in a template fails here.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Volumes     []string          `yaml:"volumes"`
	Environment map[string]string `yaml:"environment"`
	EnvFile     string            `yaml:"env_file"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	StopSignal      string `yaml:"stop_signal"`
	StopGracePeriod string `yaml:"stop_grace_period"`
	Restart         string `yaml:"restart"`
}

type k8sMeta struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

type k8sConfigMap struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   k8sMeta           `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
}

type k8sDeployment struct {
	APIVersion string  `yaml:"apiVersion"`
	Kind       string  `yaml:"kind"`
	Metadata   k8sMeta `yaml:"metadata"`
	Spec       struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata k8sMeta `yaml:"metadata"`
			Spec     struct {
				TerminationGracePeriodSeconds int            `yaml:"terminationGracePeriodSeconds"`
				Containers                    []k8sContainer `yaml:"containers"`
				Volumes                       []struct {
					Name   string `yaml:"name"`
					Secret struct {
						SecretName string `yaml:"secretName"`
					} `yaml:"secret"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			ConfigMapKeyRef *struct{ Name, Key string } `yaml:"configMapKeyRef"`
			SecretKeyRef    *struct{ Name, Key string } `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	VolumeMounts   []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
	InitialDelaySeconds int `yaml:"initialDelaySeconds"`
	PeriodSeconds       int `yaml:"periodSeconds"`
	FailureThreshold    int `yaml:"failureThreshold"`
}

func decodeStrict(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v\n%s", file, err, data)
	}
}

// TestInitDeployFilesForTheBlog: molgen init -deploy writes, for the blog
// under each committed placement, a compose.yaml with a Kafka service that
// every node reaches by name after its healthcheck passes, and per node a
// Kubernetes Deployment with the brokers from a ConfigMap, the HTTP
// endpoint, readiness and liveness probes on it, and a grace period that
// covers a drain. With Docker Compose installed, 'docker compose config'
// checks the file too.
func TestInitDeployFilesForTheBlog(t *testing.T) {
	short.Skip(t, "loads the blog example once per placement")
	inBlog(t)
	for _, name := range []string{"monolith", "microservices", "mixed", "all-remote"} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join("placements", name+".yaml")
			pl, err := placement.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if status, _, stderr := molgen("init", "-placement", file, "-deploy", dir, "./..."); status != 0 {
				t.Fatalf("init: %d %s", status, stderr)
			}
			needsKafka := len(pl.Nodes) > 1 || !pl.PreferLocal
			checkCompose(t, dir, pl, needsKafka, nil)
			checkKubernetes(t, dir, pl, nil)
			checkKafkaACLFiles(t, dir, pl, needsKafka)
		})
	}
}

// TestInitDeployFilesForASecuredCluster: with kafka.tls and kafka.sasl the
// nodes go to the placement's (managed) cluster: no Kafka service in
// compose.yaml; the password comes from the environment variable the
// placement names (in Kubernetes from a Secret), and the TLS files are
// mounted where the placement expects them.
func TestInitDeployFilesForASecuredCluster(t *testing.T) {
	short.Skip(t, "loads the blog example")
	inBlog(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "secured.yaml")
	src := `app: blog
kafka:
  brokers: [b-1.kafka.example.com:9096, b-2.kafka.example.com:9096]
  partitions: 12
  tls: {ca_file: /etc/molgen/kafka-ca.pem, cert_file: /etc/molgen/client.pem, key_file: /etc/molgen/client-key.pem}
  sasl: {mechanism: SCRAM-SHA-512, username: blog, password_env: BLOG_KAFKA_PASSWORD}
nodes:
  content: [users, posts]
  edge: [gateway, demo]
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	pl, err := placement.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "deploy")
	if status, _, stderr := molgen("init", "-placement", file, "-deploy", out, "./..."); status != 0 {
		t.Fatalf("init: %d %s", status, stderr)
	}
	files := []string{"/etc/molgen/kafka-ca.pem", "/etc/molgen/client.pem", "/etc/molgen/client-key.pem"}
	checkCompose(t, out, pl, true, files)
	checkKubernetes(t, out, pl, files)
	script := checkKafkaACLFiles(t, out, pl, true)
	if !strings.Contains(string(script), `# WARNING: the placement's kafka.sasl.username "blog" is shared by every node`) {
		t.Errorf("acls.sh does not warn that every node shares the placement's SASL user:\n%s", script)
	}
}

// checkKafkaACLFiles checks kafka/acls.sh (executable, bash -n, a rule for
// every node that uses Kafka) and kafka/kafka-users.yaml (strict YAML, the
// same rules) and returns the script.
func checkKafkaACLFiles(t *testing.T, dir string, pl *placement.Placement, needsKafka bool) []byte {
	t.Helper()
	file := filepath.Join(dir, "kafka", "acls.sh")
	script, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("%s is not executable", file)
	}
	bashSyntax(t, script)
	var nodes []string
	for _, n := range pl.Nodes {
		has := strings.Contains(string(script), "add --allow-principal 'User:molgen-"+pl.App+"-"+n.Name+"' ")
		if has != needsKafka {
			t.Errorf("acls.sh: rules for node %s: %t, want %t", n.Name, has, needsKafka)
		}
		if needsKafka {
			nodes = append(nodes, n.Name)
		}
	}
	users, err := os.ReadFile(filepath.Join(dir, "kafka", "kafka-users.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	checkKafkaUsers(t, users, script, nodes)
	return script
}

func checkCompose(t *testing.T, dir string, pl *placement.Placement, needsKafka bool, tlsFiles []string) {
	t.Helper()
	file := filepath.Join(dir, "compose.yaml")
	var c composeFile
	decodeStrict(t, file, &c)
	secured := pl.Kafka.TLS != nil || pl.Kafka.SASL != nil
	localKafka := needsKafka && !secured
	want := len(pl.Nodes)
	if localKafka {
		want++
		k, ok := c.Services["kafka"]
		if !ok || !strings.HasPrefix(k.Image, "apache/kafka:") || k.Healthcheck == nil || len(k.Healthcheck.Test) == 0 {
			t.Errorf("no Kafka service with a healthcheck: %+v", k)
		}
		if k.Environment["KAFKA_PROCESS_ROLES"] != "broker,controller" || k.Environment["KAFKA_ADVERTISED_LISTENERS"] != "PLAINTEXT://kafka:9092" {
			t.Errorf("the Kafka service is not a single KRaft node advertising kafka:9092: %v", k.Environment)
		}
	} else if _, ok := c.Services["kafka"]; ok {
		t.Errorf("a Kafka service, though no node needs one or the placement names a secured cluster")
	}
	if len(c.Services) != want {
		t.Errorf("%d services, want %d", len(c.Services), want)
	}
	for _, n := range pl.Nodes {
		s, ok := c.Services[n.Name]
		if !ok {
			t.Errorf("no service for node %s", n.Name)
			continue
		}
		if !slices.Equal(s.Command, []string{"/app/" + n.Name}) || !slices.Contains(s.Volumes, "/opt/molgen/bin/"+n.Name+":/app/"+n.Name+":ro") {
			t.Errorf("node %s: command %v, volumes %v", n.Name, s.Command, s.Volumes)
		}
		brokers := s.Environment["MOLGEN_KAFKA_BROKERS"]
		switch {
		case localKafka:
			if brokers != "kafka:9092" || s.DependsOn["kafka"].Condition != "service_healthy" {
				t.Errorf("node %s: brokers %q, depends_on %+v; want kafka:9092 once healthy", n.Name, brokers, s.DependsOn)
			}
		case needsKafka:
			if brokers != strings.Join(pl.Kafka.Brokers, ",") {
				t.Errorf("node %s: brokers %q, want the placement's", n.Name, brokers)
			}
		default:
			if brokers != "" {
				t.Errorf("node %s of a monolith: brokers %q", n.Name, brokers)
			}
		}
		if s.Environment["MOLGEN_HTTP_ADDR"] != ":8080" || s.StopSignal != "SIGTERM" {
			t.Errorf("node %s: env %v, stop signal %q", n.Name, s.Environment, s.StopSignal)
		}
		if d, err := time.ParseDuration(s.StopGracePeriod); err != nil || d <= 30*time.Second {
			t.Errorf("node %s: stop_grace_period %q does not cover a 30s drain", n.Name, s.StopGracePeriod)
		}
		if pl.Kafka.SASL != nil {
			env := pl.Kafka.SASL.PasswordEnv
			if v := s.Environment[env]; !strings.HasPrefix(v, "${"+env+":?") {
				t.Errorf("node %s: %s = %q, want it from the environment of compose", n.Name, env, v)
			}
		}
		for _, f := range tlsFiles {
			if !slices.Contains(s.Volumes, f+":"+f+":ro") {
				t.Errorf("node %s: %s not mounted: %v", n.Name, f, s.Volumes)
			}
		}
	}
	if out, err := exec.Command("docker", "compose", "version").CombinedOutput(); err == nil {
		cmd := exec.Command("docker", "compose", "-f", file, "config", "-q")
		cmd.Env = append(os.Environ(), "BLOG_KAFKA_PASSWORD=x")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("docker compose config: %v\n%s", err, out)
		}
	} else {
		t.Logf("no docker compose (%s): checked by parsing only", strings.TrimSpace(string(out)))
	}
}

func checkKubernetes(t *testing.T, dir string, pl *placement.Placement, tlsFiles []string) {
	t.Helper()
	k8s := filepath.Join(dir, "kubernetes")
	var cm k8sConfigMap
	decodeStrict(t, filepath.Join(k8s, "kafka-config.yaml"), &cm)
	if cm.Kind != "ConfigMap" || cm.APIVersion != "v1" || cm.Metadata.Name != pl.App+"-kafka" || cm.Data["brokers"] == "" {
		t.Errorf("kafka-config.yaml: %+v", cm)
	}
	if strings.Contains(cm.Data["brokers"], "127.0.0.1") {
		t.Errorf("kafka-config.yaml gives pods a loopback broker: %q", cm.Data["brokers"])
	}
	entries, _ := os.ReadDir(k8s)
	if len(entries) != len(pl.Nodes)+1 {
		t.Errorf("%d files in kubernetes/, want one per node and kafka-config.yaml", len(entries))
	}
	for _, n := range pl.Nodes {
		var d k8sDeployment
		decodeStrict(t, filepath.Join(k8s, n.Name+".yaml"), &d)
		if d.Kind != "Deployment" || d.APIVersion != "apps/v1" || d.Metadata.Name != pl.App+"-"+n.Name || d.Spec.Replicas < 1 {
			t.Errorf("node %s: %s %s %q replicas %d", n.Name, d.APIVersion, d.Kind, d.Metadata.Name, d.Spec.Replicas)
		}
		for k, v := range d.Spec.Selector.MatchLabels {
			if d.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("node %s: the selector %s=%s does not match the pod labels %v", n.Name, k, v, d.Spec.Template.Metadata.Labels)
			}
		}
		if len(d.Spec.Selector.MatchLabels) == 0 || d.Spec.Selector.MatchLabels["app.kubernetes.io/component"] != n.Name {
			t.Errorf("node %s: selector %v", n.Name, d.Spec.Selector.MatchLabels)
		}
		spec := d.Spec.Template.Spec
		if spec.TerminationGracePeriodSeconds <= 30 {
			t.Errorf("node %s: terminationGracePeriodSeconds %d does not cover a 30s drain", n.Name, spec.TerminationGracePeriodSeconds)
		}
		if len(spec.Containers) != 1 {
			t.Fatalf("node %s: %d containers", n.Name, len(spec.Containers))
		}
		c := spec.Containers[0]
		if !slices.Equal(c.Command, []string{"/app/" + n.Name}) || c.Image == "" {
			t.Errorf("node %s: image %q command %v", n.Name, c.Image, c.Command)
		}
		env := map[string]string{}
		for _, e := range c.Env {
			switch {
			case e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil:
				env[e.Name] = "configmap:" + e.ValueFrom.ConfigMapKeyRef.Name + "/" + e.ValueFrom.ConfigMapKeyRef.Key
			case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
				env[e.Name] = "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
			default:
				env[e.Name] = e.Value
			}
		}
		if env["MOLGEN_KAFKA_BROKERS"] != "configmap:"+cm.Metadata.Name+"/brokers" {
			t.Errorf("node %s: MOLGEN_KAFKA_BROKERS %q, want from the ConfigMap", n.Name, env["MOLGEN_KAFKA_BROKERS"])
		}
		if len(c.Ports) != 1 || c.Ports[0].Name != "http" || env["MOLGEN_HTTP_ADDR"] != ":"+itoa(c.Ports[0].ContainerPort) {
			t.Errorf("node %s: ports %+v, MOLGEN_HTTP_ADDR %q", n.Name, c.Ports, env["MOLGEN_HTTP_ADDR"])
		}
		if p := c.ReadinessProbe; p == nil || p.HTTPGet.Path != "/readyz" || p.HTTPGet.Port != "http" {
			t.Errorf("node %s: readiness probe %+v", n.Name, p)
		}
		if p := c.LivenessProbe; p == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port != "http" {
			t.Errorf("node %s: liveness probe %+v", n.Name, p)
		}
		if s := pl.Kafka.SASL; s != nil {
			if env[s.PasswordEnv] != "secret:"+pl.App+"-kafka/password" {
				t.Errorf("node %s: %s = %q, want from the Secret", n.Name, s.PasswordEnv, env[s.PasswordEnv])
			}
		}
		var mounted []string
		for _, m := range c.VolumeMounts {
			if m.Name == "kafka-tls" && m.ReadOnly && m.SubPath != "" {
				mounted = append(mounted, m.MountPath)
			}
		}
		if !slices.Equal(mounted, tlsFiles) {
			t.Errorf("node %s: TLS files mounted %v, want %v", n.Name, mounted, tlsFiles)
		}
		if len(tlsFiles) > 0 && (len(spec.Volumes) != 1 || spec.Volumes[0].Secret.SecretName != pl.App+"-kafka-tls") {
			t.Errorf("node %s: volumes %+v", n.Name, spec.Volumes)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestBlogDeployFilesAreCurrent: examples/blog/deploy holds what molgen
// init writes for the blog's microservices placement.
func TestBlogDeployFilesAreCurrent(t *testing.T) {
	short.Skip(t, "loads the blog example")
	inBlog(t)
	dir := t.TempDir()
	if status, _, stderr := molgen("init", "-placement", "placements/microservices.yaml", "-deploy", dir, "./..."); status != 0 {
		t.Fatalf("init: %d %s", status, stderr)
	}
	err := filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		want, _ := os.ReadFile(path)
		got, err := os.ReadFile(filepath.Join("deploy", rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("deploy/%s is not what molgen init writes: regenerate it (in examples/blog: go run ../../cmd/molgen init -f -placement placements/microservices.yaml -deploy deploy ./...)", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
