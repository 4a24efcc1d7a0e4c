package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/molgen/molgen/internal/short"
)

// TestInitDeployFilesWithSigningKeys: with security.signing, molgen init
// -deploy makes the app's keys (fresh, 32 random bytes each): a Secret
// for Kubernetes, signing.env for compose and systemd, a file per key
// read from a file, all readable by their owner only and listed in a
// .gitignore. Each node gets the keys it needs, and only those: the app's
// key, and a service's own key where it hosts or calls the service over
// Kafka. Running init again keeps the keys.
func TestInitDeployFilesWithSigningKeys(t *testing.T) {
	short.Skip(t, "loads the blog example")
	inBlog(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "signed.yaml")
	src := `app: blog
kafka:
  brokers: [kafka.example.com:9092]
security:
  signing:
    key_env: BLOG_SIGNING_KEY
    services:
      posts: {key_file: /etc/molgen/posts.key}
nodes:
  users: [users]
  posts: [posts]
  front: [gateway, demo]
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "deploy")
	if status, _, stderr := molgen("init", "-placement", file, "-deploy", out, "./..."); status != 0 {
		t.Fatalf("init: %d %s", status, stderr)
	}
	var secret struct {
		APIVersion string            `yaml:"apiVersion"`
		Kind       string            `yaml:"kind"`
		Metadata   k8sMeta           `yaml:"metadata"`
		Type       string            `yaml:"type"`
		StringData map[string]string `yaml:"stringData"`
	}
	secretFile := filepath.Join(out, "kubernetes", "signing-secret.yaml")
	decodeStrict(t, secretFile, &secret)
	if secret.Kind != "Secret" || secret.Metadata.Name != "blog-signing" || len(secret.StringData) != 2 {
		t.Fatalf("signing-secret.yaml: %+v", secret)
	}
	for name, v := range secret.StringData {
		if b, err := base64.StdEncoding.DecodeString(v); err != nil || len(b) != 32 {
			t.Errorf("key %s is not 32 bytes of base64: %q", name, v)
		}
	}
	if secret.StringData["app"] == secret.StringData["service-posts"] {
		t.Error("the app key and the users key are the same")
	}
	for _, f := range []string{secretFile, filepath.Join(out, "signing.env"), filepath.Join(out, "keys", "service-posts.key")} {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, fi)
		}
	}
	env, _ := os.ReadFile(filepath.Join(out, "signing.env"))
	if !strings.Contains(string(env), "BLOG_SIGNING_KEY="+secret.StringData["app"]+"\n") {
		t.Errorf("signing.env does not hold the app key:\n%s", env)
	}
	ignore, _ := os.ReadFile(filepath.Join(out, ".gitignore"))
	for _, want := range []string{"kubernetes/signing-secret.yaml", "signing.env", "keys/"} {
		if !strings.Contains(string(ignore), want+"\n") {
			t.Errorf(".gitignore lacks %s:\n%s", want, ignore)
		}
	}
	// Who gets which key: posts hosts posts, the mains on front call it
	// over Kafka, users calls nothing: it gets the app key only.
	for node, wantPosts := range map[string]bool{"posts": true, "front": true, "users": false} {
		data, err := os.ReadFile(filepath.Join(out, "kubernetes", node+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		if err := yaml.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s.yaml: %v", node, err)
		}
		text := string(data)
		if !strings.Contains(text, "name: BLOG_SIGNING_KEY") || !strings.Contains(text, "name: blog-signing\n                  key: app") {
			t.Errorf("node %s does not read the app key from the Secret:\n%s", node, text)
		}
		if got := strings.Contains(text, "mountPath: /etc/molgen/posts.key"); got != wantPosts {
			t.Errorf("node %s mounts the posts key: %t, want %t", node, got, wantPosts)
		}
		unit, _ := os.ReadFile(filepath.Join(out, "systemd", node+"@.service"))
		if !strings.Contains(string(unit), "EnvironmentFile=/etc/molgen/blog-signing.env") {
			t.Errorf("the systemd unit of %s does not load the keys:\n%s", node, unit)
		}
	}
	var c composeFile
	decodeStrict(t, filepath.Join(out, "compose.yaml"), &c)
	if s := c.Services["front"]; s.EnvFile != "signing.env" || !strings.Contains(strings.Join(s.Volumes, " "), "./keys/service-posts.key:/etc/molgen/posts.key:ro") {
		t.Errorf("compose front: env_file %q, volumes %v", s.EnvFile, s.Volumes)
	}
	if s := c.Services["users"]; strings.Contains(strings.Join(s.Volumes, " "), "posts.key") {
		t.Errorf("compose users mounts the posts key: %v", s.Volumes)
	}
	// Again, with -f: the keys stay.
	if status, stdout, stderr := molgen("init", "-f", "-placement", file, "-deploy", out, "./..."); status != 0 || !strings.Contains(stdout, "kept") {
		t.Fatalf("init again: %d %s %s", status, stdout, stderr)
	}
	again, _ := os.ReadFile(filepath.Join(out, "signing.env"))
	if string(again) != string(env) {
		t.Error("a second init changed the keys")
	}
}
