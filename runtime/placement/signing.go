package placement

import (
	"encoding/base64"
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Signing is the security.signing section of a placement: the keys that
// sign every request and reply, so that a node drops what anyone else
// wrote to the app's topics. Key material is never in the placement: each
// key comes from an environment variable or a file, as base64, one key
// per line (the first signs; every one verifies, for rotation).
//
//	security:
//	  signing:
//	    key_env: MOLGEN_SIGNING_KEY            # the app's key; or key_file: /run/secrets/molgen-signing-key
//	    services:                              # optional: a key of its own for a service's requests and replies
//	      payments: {key_file: /run/secrets/molgen-key-payments}
//
// A service with a key of its own takes requests signed by it and signs
// its replies with it: only the nodes that have the key (those that call
// or host the service) can write either.
type Signing struct {
	// App is the app's key: it signs the messages of every service
	// without a key of its own. Unset: only services with their own keys
	// are signed.
	App *KeySource
	// Services maps a service name to its own key.
	Services map[string]*KeySource
	// Line and Col locate the section, for messages; ServicePos each
	// service name.
	Line, Col  int
	ServicePos map[string]Position
}

// Security is the security section of a placement.
type Security struct {
	// Signing, when set, signs every request and reply (security.signing).
	Signing *Signing
}

// KeySource says where a signing key ring comes from: the environment
// variable Env names, or the file File names, holding one base64 key per
// line. Keys, when set, are the keys themselves (library users) and win.
type KeySource struct {
	Env, File string
	Keys      [][]byte
}

// DefaultSigningKeyEnv is the variable a node reads the app's key from
// when the placement names neither key_env nor key_file.
const DefaultSigningKeyEnv = "MOLGEN_SIGNING_KEY"

// Resolve reads the key ring.
func (k *KeySource) Resolve() ([][]byte, error) {
	if len(k.Keys) > 0 {
		return k.Keys, nil
	}
	var text, from string
	switch {
	case k.File != "":
		b, err := os.ReadFile(k.File)
		if err != nil {
			return nil, fmt.Errorf("reading the signing key file: %w", err)
		}
		text, from = string(b), "file "+k.File
	default:
		env := k.Env
		if env == "" {
			env = DefaultSigningKeyEnv
		}
		text, from = os.Getenv(env), "environment variable "+env
		if text == "" {
			return nil, fmt.Errorf("no signing key: %s is unset or empty", from)
		}
	}
	return ParseKeys(text, from)
}

// ParseKeys reads a key ring: one base64 key (standard or URL alphabet,
// padded or not) per line; blank lines are skipped.
func ParseKeys(text, from string) ([][]byte, error) {
	var keys [][]byte
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, err := decodeKey(line)
		if err != nil {
			return nil, fmt.Errorf("%s, line %d: a signing key is base64 (make one with: head -c 32 /dev/urandom | base64)", from, i+1)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no signing key", from)
	}
	return keys, nil
}

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

func (k *KeySource) String() string {
	switch {
	case len(k.Keys) > 0:
		return "keys given directly"
	case k.File != "":
		return "file " + k.File
	case k.Env != "":
		return "environment variable " + k.Env
	}
	return "environment variable " + DefaultSigningKeyEnv
}

// ServiceNames lists the services with keys of their own, sorted.
func (s *Signing) ServiceNames() []string {
	out := make([]string, 0, len(s.Services))
	for name := range s.Services {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func parseSecurity(v *yaml.Node, p *Placement, perr *Error) {
	if v.Kind != yaml.MappingNode {
		perr.add(v.Line, v.Column, "security must be a mapping with signing")
		return
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		switch k.Value {
		case "signing":
			parseSigning(val, p, perr)
		default:
			perr.add(k.Line, k.Column, "unknown key security.%s (want signing)", k.Value)
		}
	}
}

func parseSigning(v *yaml.Node, p *Placement, perr *Error) {
	if v.Kind != yaml.MappingNode {
		perr.add(v.Line, v.Column, "security.signing must be a mapping with key_env or key_file, and services")
		return
	}
	s := &Signing{Line: v.Line, Col: v.Column}
	app := parseKeySource(v, "security.signing", map[string]bool{"services": true}, perr)
	if app.Env != "" || app.File != "" {
		s.App = app
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		if k.Value != "services" {
			continue
		}
		if val.Kind != yaml.MappingNode {
			perr.add(val.Line, val.Column, "security.signing.services must map service names to {key_env: …} or {key_file: …}")
			continue
		}
		s.Services = map[string]*KeySource{}
		s.ServicePos = map[string]Position{}
		for j := 0; j+1 < len(val.Content); j += 2 {
			name, src := val.Content[j], val.Content[j+1]
			if !placementNameRE.MatchString(name.Value) {
				perr.add(name.Line, name.Column, "security.signing.services: %q is not a service name", name.Value)
				continue
			}
			what := "security.signing.services." + name.Value
			if src.Kind != yaml.MappingNode {
				perr.add(src.Line, src.Column, "%s must be {key_env: VAR} or {key_file: PATH}", what)
				continue
			}
			ks := parseKeySource(src, what, nil, perr)
			if ks.Env == "" && ks.File == "" {
				perr.add(src.Line, src.Column, "%s: give key_env or key_file", what)
				continue
			}
			s.Services[name.Value] = ks
			s.ServicePos[name.Value] = Position{name.Line, name.Column}
		}
	}
	if s.App == nil && len(s.Services) == 0 {
		perr.add(v.Line, v.Column, "security.signing: give the app's key (key_env or key_file) or services with keys of their own")
	}
	p.Security.Signing = s
}

// parseKeySource reads key_env and key_file from a mapping; other keys
// than those and the ones in also are errors.
func parseKeySource(v *yaml.Node, what string, also map[string]bool, perr *Error) *KeySource {
	ks := &KeySource{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		switch k.Value {
		case "key_env", "key_file":
			if val.Kind != yaml.ScalarNode || val.Value == "" {
				perr.add(val.Line, val.Column, "%s.%s must be a non-empty string", what, k.Value)
				continue
			}
			if k.Value == "key_env" {
				ks.Env = val.Value
			} else {
				ks.File = val.Value
			}
		case "key", "keys", "secret":
			perr.add(k.Line, k.Column, "%s.%s: keys are never written in the placement; name an environment variable (key_env) or a file (key_file) that holds it", what, k.Value)
		default:
			if !also[k.Value] {
				perr.add(k.Line, k.Column, "unknown key %s.%s (want key_env or key_file)", what, k.Value)
			}
		}
	}
	if ks.Env != "" && ks.File != "" {
		perr.add(v.Line, v.Column, "%s: give key_env or key_file, not both", what)
	}
	return ks
}
