package testsvc

import (
	"testing"

	"github.com/molgen/molgen/runtime"
)

// BenchmarkCodec measures the generated codec on one message: the bytes a
// request takes and the time to encode it and to decode it. "kinds" is the
// request of Codec.Kinds with every serializable kind (a dozen structs
// nested in it); "tree" is a request of three small structs (Codec.Tree), where
// per-struct framing costs the most relative to the payload.
//
//	go test ./internal/testsvc -run '^$' -bench Codec -count 5
func BenchmarkCodec(b *testing.B) {
	cases := []struct {
		name string
		msg  runtime.Message
		out  func() runtime.Message
	}{
		{"kinds", &molgenRequest_Codec_Kinds{A0: fullKinds()}, func() runtime.Message { return &molgenRequest_Codec_Kinds{} }},
		{"tree", &molgenRequest_Codec_Tree{A0: &Tree{Label: "root", Children: []Tree{{Label: "a"}, {Label: "b"}}}}, func() runtime.Message { return &molgenRequest_Codec_Tree{} }},
	}
	for _, c := range cases {
		e := runtime.NewEncoder(nil)
		c.msg.MolgenEncode(e)
		data := append([]byte(nil), e.Data()...)
		b.Run(c.name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			b.ReportMetric(float64(len(data)), "bytes/msg")
			e := runtime.NewEncoder(make([]byte, 0, 4096))
			for i := 0; i < b.N; i++ {
				e.Reset()
				c.msg.MolgenEncode(e)
			}
		})
		b.Run(c.name+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			b.ReportMetric(float64(len(data)), "bytes/msg")
			for i := 0; i < b.N; i++ {
				d := runtime.NewDecoder(data)
				c.out().MolgenDecode(d)
				if err := d.Finish(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
