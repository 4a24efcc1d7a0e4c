package emit

import "testing"

func TestWithArticle(t *testing.T) {
	for word, want := range map[string]string{
		"Inventory":   "an Inventory",
		"Accounts":    "an Accounts",
		"Orders":      "an Orders",
		"Echo":        "an Echo",
		"Users":       "a Users",
		"Unit":        "a Unit",
		"Updater":     "an Updater",
		"Uninstaller": "an Uninstaller",
		"Euro":        "a Euro",
		"Hour":        "an Hour",
		"Hello":       "a Hello",
		"OneShot":     "a OneShot",
		"HTTPServer":  "an HTTPServer",
		"UUIDs":       "a UUIDs",
		"SMS":         "an SMS",
		"KV":          "a KV",
		"Posts":       "a Posts",
		"Calc":        "a Calc",
		"Kinds":       "a Kinds",
	} {
		if got := withArticle(word); got != want {
			t.Errorf("withArticle(%q) = %q, want %q", word, got, want)
		}
	}
}
