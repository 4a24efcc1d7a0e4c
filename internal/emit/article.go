package emit

import (
	"strings"
	"unicode"
)

// withArticle returns word, a Go identifier, after "a" or "an" as it is
// read aloud: "an Inventory", "a User", "an HTTPServer" (an initialism is
// read letter by letter), "a UUID".
func withArticle(word string) string {
	return article(word) + " " + word
}

func article(word string) string {
	if word == "" {
		return "a"
	}
	runes := []rune(word)
	first := unicode.ToLower(runes[0])
	if len(runes) > 1 && unicode.IsUpper(runes[0]) && unicode.IsUpper(runes[1]) {
		// An initialism: the name of its first letter decides.
		if strings.ContainsRune("aefhilmnorsx", first) {
			return "an"
		}
		return "a"
	}
	lower := strings.ToLower(word)
	switch {
	case strings.HasPrefix(lower, "one") || strings.HasPrefix(lower, "once"):
		return "a" // "a OneShot": a "w" sound
	case strings.ContainsRune("aio", first):
		return "an"
	case first == 'e':
		if strings.HasPrefix(lower, "eu") || strings.HasPrefix(lower, "ewe") {
			return "a" // "a Euro": a "you" sound
		}
		return "an"
	case first == 'u':
		for _, p := range []string{"uni", "use", "usa", "usu", "uti", "ura", "ure", "uri", "uro", "ubi", "uku"} {
			if strings.HasPrefix(lower, p) && !strings.HasPrefix(lower, "unin") && !strings.HasPrefix(lower, "unim") {
				return "a" // "a User", "a Unit": a "you" sound
			}
		}
		return "an"
	case strings.HasPrefix(lower, "hour") || strings.HasPrefix(lower, "honest") || strings.HasPrefix(lower, "honor") || strings.HasPrefix(lower, "heir"):
		return "an"
	}
	return "a"
}
