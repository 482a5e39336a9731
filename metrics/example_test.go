package metrics_test

import (
	"fmt"
	"os"
	"time"

	"github.com/wirecat-dev/wirecat/metrics"
)

// Two shards' figures merge into the fleet's, and thresholds are checked
// on the whole.
func ExampleMerge() {
	shard := func(name string, failed int64, rtts ...time.Duration) metrics.Summary {
		s := metrics.NewSet()
		s.Counter("connect.attempts").Add(100)
		s.Counter("connect.failed").Add(failed)
		s.Counter("errors")
		for _, d := range rtts {
			s.Histogram("rtt").Observe(d)
		}
		sum := s.Summary()
		sum.Shard = name
		return sum
	}
	fleet, err := metrics.Merge(
		shard("0/2", 0, 10*time.Millisecond, 20*time.Millisecond),
		shard("1/2", 1, 30*time.Millisecond, 90*time.Millisecond))
	if err != nil {
		panic(err)
	}
	ts, err := metrics.ParseThresholds([]string{"rtt.max < 50ms", "connect.failed < 1%", "errors == 0"})
	if err != nil {
		panic(err)
	}
	err = metrics.CheckAll(os.Stdout, fleet, ts)
	fmt.Println(err)
	// Output:
	// threshold rtt.max < 50ms: NOT met (90.0ms)
	// threshold connect.failed < 1%: met (0.5% (1 of 200 connect.attempts))
	// threshold errors == 0: met (0)
	// 1 of 3 thresholds not met
}

func ExampleParseThreshold() {
	for _, expr := range []string{"rtt.p99 < 50ms", "rtt.p99 < 50", "errors = 0"} {
		t, err := metrics.ParseThreshold(expr)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s %s %v\n", t.Metric, t.Op, time.Duration(t.Value))
	}
	// Output:
	// rtt.p99 < 50ms
	// threshold "rtt.p99 < 50": column 11: rtt.p99 is a timing: give the value a unit, e.g. 50ms
	// threshold "errors = 0": column 8: '=' is not an operator: write == to compare
}
