package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/molgen/molgen/internal/short"
)

// kafkaUser is the part of a Strimzi KafkaUser that molgen writes, decoded
// with unknown fields refused.
type kafkaUser struct {
	APIVersion string  `yaml:"apiVersion"`
	Kind       string  `yaml:"kind"`
	Metadata   k8sMeta `yaml:"metadata"`
	Spec       struct {
		Authentication struct {
			Type string `yaml:"type"`
		} `yaml:"authentication"`
		Authorization struct {
			Type string       `yaml:"type"`
			ACLs []strimziACL `yaml:"acls"`
		} `yaml:"authorization"`
	} `yaml:"spec"`
}

type strimziACL struct {
	Resource struct {
		Type        string `yaml:"type"`
		Name        string `yaml:"name"`
		PatternType string `yaml:"patternType"`
	} `yaml:"resource"`
	Operations []string `yaml:"operations"`
	Host       string   `yaml:"host"`
}

// decodeKafkaUsers decodes every document of a kafka-users.yaml strictly.
func decodeKafkaUsers(t *testing.T, data []byte) []kafkaUser {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var out []kafkaUser
	for {
		var u kafkaUser
		err := dec.Decode(&u)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("kafka-users.yaml: %v\n%s", err, data)
		}
		out = append(out, u)
	}
}

// checkKafkaUsers checks a kafka-users.yaml against the script's ACLs:
// one KafkaUser per node that uses Kafka, named by its principal, with
// SCRAM-SHA-512 and simple authorization, and the same rules as acls.sh.
func checkKafkaUsers(t *testing.T, yamlSrc, script []byte, nodes []string) {
	t.Helper()
	users := decodeKafkaUsers(t, yamlSrc)
	if len(users) != len(nodes) {
		t.Fatalf("%d KafkaUsers, want one per node that uses Kafka %v", len(users), nodes)
	}
	for i, u := range users {
		if u.APIVersion != "kafka.strimzi.io/v1beta2" || u.Kind != "KafkaUser" || u.Metadata.Labels["strimzi.io/cluster"] != "kafka" ||
			u.Spec.Authentication.Type != "scram-sha-512" || u.Spec.Authorization.Type != "simple" {
			t.Errorf("KafkaUser %d: %+v", i, u)
		}
		if u.Metadata.Labels["app.kubernetes.io/component"] != nodes[i] || !strings.HasSuffix(u.Metadata.Name, "-"+nodes[i]) {
			t.Errorf("KafkaUser %q for node %s: labels %v", u.Metadata.Name, nodes[i], u.Metadata.Labels)
		}
		// The same rules as the script, which names them for kafka-acls.sh.
		var got []string
		for _, a := range u.Spec.Authorization.ACLs {
			if a.Host != "*" || len(a.Operations) == 0 {
				t.Errorf("KafkaUser %s: %+v", u.Metadata.Name, a)
			}
			r := "--cluster"
			if a.Resource.Type != "cluster" {
				pattern := map[string]string{"literal": "literal", "prefix": "prefixed"}[a.Resource.PatternType]
				r = "--" + a.Resource.Type + " '" + a.Resource.Name + "' --resource-pattern-type " + pattern
			}
			got = append(got, "add --allow-principal 'User:"+u.Metadata.Name+"' "+r+" --operation "+strings.Join(a.Operations, " --operation "))
		}
		var want []string
		for _, l := range strings.Split(string(script), "\n") {
			if strings.HasPrefix(l, "add --allow-principal 'User:"+u.Metadata.Name+"' ") {
				want = append(want, strings.TrimSpace(l[:strings.LastIndex(l, " # ")]))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("KafkaUser %s has the rules\n%s\nbut acls.sh\n%s", u.Metadata.Name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// bashSyntax checks a script with bash -n.
func bashSyntax(t *testing.T, script []byte) {
	t.Helper()
	cmd := exec.Command("bash", "-n")
	cmd.Stdin = bytes.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("bash -n: %v\n%s", err, out)
	}
}

// TestACLsForTheBlog: molgen acls prints, for the blog under each committed
// placement, a bash script for kafka-acls.sh and Strimzi KafkaUsers with the
// same rules, as recorded in testdata/acls (rerun with
// go test ./cmd/molgen -run TestACLsForTheBlog -update after checking the
// change). internal/acl's tests assert each rule; here the files are checked
// as files: bash -n, strict YAML, one user per node that uses Kafka.
func TestACLsForTheBlog(t *testing.T) {
	short.Skip(t, "loads the blog example once per placement")
	inBlog(t)
	golden := func(t *testing.T, name string, got []byte) {
		t.Helper()
		file := filepath.Join("..", "..", "cmd", "molgen", "testdata", "acls", name)
		if *updateGolden {
			if err := os.WriteFile(file, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("output differs from testdata/acls/%s (rerun with -update after checking it):\n%s", name, got)
		}
	}
	for _, tc := range []struct {
		placement string
		nodes     []string // the nodes that use Kafka
	}{
		{"microservices", []string{"users", "posts", "gateway", "demo"}},
		{"mixed", []string{"content", "edge"}},
		{"all-remote", []string{"content", "edge"}},
		{"monolith", nil},
	} {
		t.Run(tc.placement, func(t *testing.T) {
			file := "placements/" + tc.placement + ".yaml"
			status, script, stderr := molgen("acls", "-placement", file, "./...")
			if status != 0 || stderr != "" {
				t.Fatalf("acls: %d %s", status, stderr)
			}
			golden(t, tc.placement+".sh", []byte(script))
			bashSyntax(t, []byte(script))
			status, users, stderr := molgen("acls", "-placement", file, "-format", "strimzi", "./...")
			if status != 0 || stderr != "" {
				t.Fatalf("acls -format strimzi: %d %s", status, stderr)
			}
			golden(t, tc.placement+".yaml", []byte(users))
			checkKafkaUsers(t, []byte(users), []byte(script), tc.nodes)
		})
	}
}

// TestACLsCommandLine: -placement is required, -format is script or
// strimzi, and -principal names the principals (one that leaves {node} out
// is refused: nodes would share it).
func TestACLsCommandLine(t *testing.T) {
	short.Skip(t, "loads the blog example")
	for _, args := range [][]string{{"acls"}, {"acls", "-placement", "p.yaml", "-format", "json"}} {
		if status, _, stderr := molgen(args...); status != 2 || stderr == "" {
			t.Errorf("molgen %v: status %d, stderr %q; want 2 with a message", args, status, stderr)
		}
	}
	inBlog(t)
	status, out, stderr := molgen("acls", "-placement", "placements/mixed.yaml", "-principal", "User:{app}.{node}", "./...")
	if status != 0 || !strings.Contains(out, "add --allow-principal 'User:blog.edge' --topic 'molgen.blog.req.posts'") {
		t.Errorf("acls -principal: %d %s\n%s", status, stderr, out)
	}
	if status, _, stderr := molgen("acls", "-placement", "placements/mixed.yaml", "-principal", "User:{app}", "./..."); status != 1 || !strings.Contains(stderr, "every node would share one principal") {
		t.Errorf("acls -principal User:{app}: %d %s", status, stderr)
	}
	if status, _, stderr := molgen("acls", "-placement", "placements/mixed.yaml", "-principal", "User:{app}_{node}", "-format", "strimzi", "./..."); status != 1 || !strings.Contains(stderr, "cannot name a Strimzi KafkaUser") {
		t.Errorf("acls -format strimzi with User:blog_edge: %d %s", status, stderr)
	}
}
