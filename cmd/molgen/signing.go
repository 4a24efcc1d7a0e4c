package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/molgen/molgen/internal/app"
	"github.com/molgen/molgen/runtime/placement"
	"github.com/molgen/molgen/templates"
)

// signingKeys returns, per node of l, the signing keys it needs
// (placement security.signing): the app's key, and the key of each
// service with one of its own that the node hosts or calls over Kafka (a
// direct call needs none). Nil without security.signing.
func signingKeys(l *app.Layout, pl *placement.Placement) map[string][]templates.Key {
	s := pl.Security.Signing
	if s == nil {
		return nil
	}
	key := func(name string, src *placement.KeySource) templates.Key {
		k := templates.Key{Name: name, File: src.File, Env: src.Env}
		if k.File == "" && k.Env == "" {
			k.Env = placement.DefaultSigningKeyEnv
		}
		return k
	}
	out := map[string][]templates.Key{}
	for _, n := range l.Nodes {
		var keys []templates.Key
		if s.App != nil {
			keys = append(keys, key("app", s.App))
		}
		needs := map[string]bool{}
		for _, svc := range n.Services {
			needs[svc] = true
		}
		for _, c := range l.Calls() {
			if c.Node == n.Name && !c.Local {
				needs[c.To] = true
			}
		}
		for _, svc := range s.ServiceNames() {
			if needs[svc] {
				keys = append(keys, key("service-"+svc, s.Services[svc]))
			}
		}
		out[n.Name] = keys
	}
	return out
}

// writeSigningKeys writes, when the placement signs, the app's keys made
// fresh: kubernetes/signing-secret.yaml (a Secret), signing.env (for
// compose and systemd) and keys/<name>.key for keys read from files, with
// a .gitignore that keeps them out of version control. An existing file
// is never rewritten, even with -f: new keys would lock running nodes
// out of each other.
func writeSigningKeys(dir string, pl *placement.Placement, file string, byNode map[string][]templates.Key, stdout io.Writer) error {
	var all []templates.Key
	for _, keys := range byNode {
		for _, k := range keys {
			if !slices.Contains(all, k) {
				all = append(all, k)
			}
		}
	}
	if len(all) == 0 {
		return nil
	}
	slices.SortFunc(all, func(a, b templates.Key) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	data := templates.Signing{App: pl.App, Placement: file}
	for _, k := range all {
		v, err := newKey()
		if err != nil {
			return err
		}
		data.Keys = append(data.Keys, templates.SigningKey{Key: k, Value: v})
	}
	secrets := []string{"kubernetes/signing-secret.yaml", "signing.env", "keys/"}
	for _, f := range []struct{ path, tmpl string }{
		{filepath.Join(dir, "kubernetes", "signing-secret.yaml"), "signing-secret.yaml.tmpl"},
		{filepath.Join(dir, "signing.env"), "signing.env.tmpl"},
	} {
		src, err := templates.Render(f.tmpl, data)
		if err != nil {
			return err
		}
		if err := writeSecret(f.path, src, stdout); err != nil {
			return err
		}
	}
	for _, k := range data.Keys {
		if k.File != "" {
			if err := writeSecret(filepath.Join(dir, "keys", k.Name+".key"), []byte(k.Value+"\n"), stdout); err != nil {
				return err
			}
		}
	}
	return ignoreSecrets(filepath.Join(dir, ".gitignore"), secrets, stdout)
}

// ignoreSecrets adds the lines of secrets that the .gitignore at path
// lacks (it is made when missing).
func ignoreSecrets(path string, secrets []string, stdout io.Writer) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(old), "\n") {
		have[strings.TrimSpace(l)] = true
	}
	add := ""
	for _, s := range secrets {
		if !have[s] {
			add += s + "\n"
		}
	}
	if add == "" {
		return nil
	}
	if len(old) == 0 {
		add = "# Signing keys made by 'molgen init': never commit them.\n" + add
	} else if !strings.HasSuffix(string(old), "\n") {
		add = "\n" + add
	}
	if err := os.WriteFile(path, append(old, add...), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", path)
	return nil
}

// newKey returns 32 random bytes in base64: a signing key.
func newKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// writeSecret writes a file that holds key material, readable by its
// owner only, unless it exists.
func writeSecret(path string, content []byte, stdout io.Writer) error {
	if _, err := os.Stat(path); err == nil {
		fmt.Fprintf(stdout, "kept %s (signing keys are never rewritten)\n", path)
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(path, content, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", path)
	return nil
}
