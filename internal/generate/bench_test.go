package generate_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/molgen/molgen/internal/generate"
	"github.com/molgen/molgen/internal/load"
	"github.com/molgen/molgen/internal/testmod"
)

// BenchmarkGenerate measures 'molgen generate' (load, check, emit, format)
// on a synthetic package of 50 services with 10 methods each.
//
//	go test ./internal/generate -run '^$' -bench Generate -benchtime 5x
func BenchmarkGenerate(b *testing.B) {
	dir := testmod.New(b, "big", "")
	var src strings.Builder
	src.WriteString("package big\n\nimport (\n\t\"context\"\n\t\"time\"\n)\n\n")
	for s := 0; s < 50; s++ {
		fmt.Fprintf(&src, "type Rec%d struct {\n\tID int64\n\tName string\n\tTags []string\n\tAt time.Time\n\tNext *Rec%d\n\tAttrs map[string]float64\n}\n\n", s, s)
		fmt.Fprintf(&src, "//molgen:service\ntype Svc%d interface {\n", s)
		for m := 0; m < 10; m++ {
			fmt.Fprintf(&src, "\tM%d(ctx context.Context, id int64, r Rec%d, names []string) (Rec%d, map[string]int, error)\n", m, s, s)
		}
		src.WriteString("}\n\n")
	}
	testmod.WriteFile(b, filepath.Join(dir, "big.go"), []byte(src.String()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		results, _, err := generate.Generate(load.Config{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if len(results) != 1 || len(results[0].Content) < 100000 {
			b.Fatalf("unexpected output: %d files", len(results))
		}
		b.ReportMetric(float64(len(results[0].Content)), "bytes/file")
	}
}
